#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/intrusive_list.h"
#include "grelay/config.h"
#include "h2/closed_streams.h"
#include "h2/downstream.h"
#include "h2/h2_session.h"
#include "h2/request_check.h"
#include "net/listener.h"

namespace grelay {

// What one read of a client connection takes at most (see ServerSession::read_size()).
inline constexpr size_t client_read_size = 64 * 1024;

class ServerSession;

// Creates the handler of each new stream; told when a session is gone.
class ServerSessionOwner {
 public:
  virtual ServerStreamHandler* on_new_stream(ServerSession& session,
                                             int32_t stream_id) noexcept = 0;
  virtual void on_session_gone(ServerSession& session) noexcept = 0;
  // The client of |session| speaks HTTP/1.1 (listeners with web calls only): the owner moves
  // the connection to a session that serves it (Connection::hand_over()), which parses
  // |input|, the bytes the client sent so far, first. |session| closes when this returns,
  // whatever the owner did.
  virtual void on_http1(ServerSession& session, std::string_view input) noexcept = 0;

 protected:
  ~ServerSessionOwner() = default;
};

// A client connection of a listener: HTTP/2 from a client (h2c, or h2 over TLS on a TLS
// listener). On a listener with web calls the client may speak HTTP/1.1 instead: the session
// then waits for the client's first bytes (h2c) or its ALPN choice (TLS) before it sends its
// SETTINGS, and hands an HTTP/1.1 client to its owner (on_http1()).
class ServerSession final : public H2Session, public Downstream {
 public:
  ServerSession(uv_loop_t* loop, ChunkPool& pool, FlushQueue& flush_queue, nghttp2_mem* mem,
                ServerSessionOwner& owner) noexcept;

  // Creates the nghttp2 session and queues SETTINGS (with web calls: once the client is known
  // to speak HTTP/2). Returns false on failure. The listener's limits are copied: a reload
  // does not change them for this connection.
  bool start(std::shared_ptr<const Config> config, size_t listener_index) noexcept;
  // The config the connection was accepted under (its listener is Downstream::listener()).
  const std::shared_ptr<const Config>& config() const noexcept { return config_; }
  // Gives up the count hold_count() took (for the session the connection moves to).
  std::shared_ptr<ConnectionGauge> release_count() noexcept { return std::move(gauge_); }
  // The worker asked this connection to drain before it knew the client's protocol.
  bool drain_requested() const noexcept { return drain_requested_; }
  // A TLS client must finish its handshake within |ms| or the connection closes (set before
  // start()).
  void set_handshake_timeout(uint64_t ms) noexcept;
  // Takes over one count the caller added to |gauge| for this connection; it is given back
  // when the connection is gone.
  void hold_count(std::shared_ptr<ConnectionGauge> gauge) noexcept { gauge_ = std::move(gauge); }

  // Downstream.
  int send_response(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen,
                    ServerStreamHandler* body) noexcept override;
  int send_trailers(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen) noexcept override;
  void resume(int32_t stream_id) noexcept override;
  void give_credit(int32_t stream_id, size_t n, bool peer_ended) noexcept override {
    consume(stream_id, n, peer_ended);
  }
  void give_stream_credit(int32_t stream_id, size_t n) noexcept override {
    consume_stream(stream_id, n);
  }
  const PeerIdentity* peer_identity() const noexcept override {
    return conn_.tls() ? conn_.tls()->peer() : nullptr;
  }
  bool rebind(int32_t stream_id, ServerStreamHandler& from,
              ServerStreamHandler& to) noexcept override;
  void drain() noexcept override { shutdown(); }
  void expire(const char* why) noexcept override;
  void close_now() noexcept override { close(); }

  void reset(int32_t stream_id, uint32_t error_code) noexcept;
  // Graceful shutdown in two steps, so no stream the client is sending meanwhile is lost:
  // GOAWAY with the largest stream id and a PING; once the PING is acknowledged (or after a
  // short wait) GOAWAY with the last stream id seen. The connection closes when its open
  // streams end.
  void shutdown() noexcept;
  size_t stream_count() const noexcept { return streams_.size(); }

  void write_body(nghttp2_data_source* source, ChunkChain& out, size_t length) noexcept override;
  // Hands an HTTP/1.1 client to the owner, on the flush turn after it was recognised.
  void flush_now() noexcept override;

 private:
  friend struct ServerSessionCallbacks;
  friend struct ServerSessionInput;

  // Client input goes to nghttp2 through closed_streams_.
  ssize_t receive(const uint8_t* data, size_t len) noexcept override;
  // With web calls, the client's first bytes say which protocol it speaks.
  bool on_read(const uint8_t* data, size_t len) noexcept override;
  // A client's reads stay at 64 KiB: larger ones let the kernel grow the socket's receive
  // buffer, and a client flooding requests whose answers it never reads got further before
  // the relay stopped reading it (RSS +6.3 MiB against +4.3 MiB, test_adversarial's request
  // flood). Backend connections, whose answers fan out to many clients, read 256 KiB.
  size_t read_size() const noexcept override { return client_read_size; }
  // Reads the client's first bytes: true once they are the HTTP/2 preface (the nghttp2
  // session has started and has been given the part of the preface read before), false while
  // they may still be, or once they are not (the connection goes to HTTP/1.1).
  bool greet(const uint8_t* data, size_t len) noexcept;
  // Starts the nghttp2 session once the client is known to speak HTTP/2.
  bool start_h2() noexcept;
  // The client speaks HTTP/1.1: the connection goes to the owner on the next flush turn.
  void to_http1() noexcept;
  void on_teardown() noexcept override;
  PeerSide side() const noexcept override { return PeerSide::client; }
  // Ends a malformed request: RST_STREAM(PROTOCOL_ERROR), and the handler is told at once.
  void reject_malformed(int32_t stream_id, ServerStreamHandler& handler) noexcept;
  void on_handshake_done() noexcept override;
  // The handshake, preface, header block, idle, age and GOAWAY deadlines share the
  // connection's timer.
  void on_session_timer() noexcept override;
  // Notes a received frame against the client's budgets and deadlines. Returns 0, or the
  // value that stops nghttp2 (H2Session::abuse()).
  int on_frame_received(const nghttp2_frame& frame) noexcept;
  void on_ping_ack(const uint8_t* opaque) noexcept;
  void on_stream_count_changed() noexcept;
  void send_final_goaway() noexcept;
  // Arms the connection timer for the earliest of the handshake, preface, header block, idle,
  // age and GOAWAY deadlines.
  void rearm_timer() noexcept;

  enum class Goaway { none, notice_sent, final_sent };
  // What the client speaks, on a listener with web calls: not known yet (its first bytes, or
  // the TLS handshake, will say), HTTP/1.1 (the connection goes to the owner), HTTP/2.
  enum class Greeting : uint8_t { waiting, http1, h2 };

  ServerSessionOwner& owner_;
  // The config the connection was accepted under: a reload does not change its limits (its
  // listener, Downstream::listener()).
  std::shared_ptr<const Config> config_;
  std::shared_ptr<ConnectionGauge> gauge_;
  Goaway goaway_ = Goaway::none;
  Greeting greeting_ = Greeting::h2;
  // Bytes of the HTTP/2 preface the client sent so far (while waiting).
  uint8_t preface_matched_ = 0;
  bool drain_requested_ = false;
  // An HTTP/1.1 client's bytes, kept for the session it goes to.
  std::string http1_input_;
  // Loop times (ms): when the connection started, when it last had no stream open, when
  // the first GOAWAY went out, and when open streams are cut after the age grace (0: never).
  uint64_t started_ms_ = 0;
  uint64_t idle_since_ms_ = 0;
  uint64_t notice_ms_ = 0;
  uint64_t expire_ms_ = 0;
  uint64_t handshake_deadline_ms_ = 0;
  // The client's preface (its first SETTINGS) must arrive by then; 0 once it did.
  uint64_t preface_deadline_ms_ = 0;
  // A header block the client has begun and not finished: its stream, and when the
  // request_headers_timeout ends it.
  int32_t headers_stream_ = 0;
  uint64_t headers_deadline_ms_ = 0;
  // Streams the client reset, and streams the client made the relay reset (MadeYouReset):
  // 1000 at once and 33 a second more each, as libnghttp2 budgets client resets.
  TokenBucket<1000, 33> client_resets_;
  TokenBucket<1000, 33> made_resets_;
  IntrusiveList<ServerStreamHandler> streams_;
  // RFC 9113 §5.1 for frames on streams nghttp2 has forgotten.
  ClosedStreams closed_streams_;
};

}  // namespace grelay
