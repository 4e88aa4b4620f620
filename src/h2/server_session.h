#pragma once

#include <memory>

#include "core/intrusive_list.h"
#include "grelay/config.h"
#include "h2/closed_streams.h"
#include "h2/h2_session.h"
#include "h2/request_check.h"
#include "net/listener.h"

namespace grelay {

// What a server session tells the owner of one of its streams.
class ServerStreamHandler : public ListHook<ServerStreamHandler> {
 public:
  // One field of the request HEADERS block, checked; |n| and |v| view |name| and |value|, and
  // |f| is classify_field(|n|).
  virtual void on_request_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value, FieldName f,
                                 std::string_view n, std::string_view v) noexcept = 0;
  // The request HEADERS block is complete.
  virtual void on_request_headers_end() noexcept = 0;
  virtual void on_request_data(const uint8_t* data, size_t len) noexcept = 0;
  // The client half-closed the stream.
  virtual void on_request_end() noexcept = 0;
  // The stream closed (|error_code| is the HTTP/2 code, NO_ERROR after a clean end), or the
  // connection went away (CANCEL). The session forgets the handler before this call, so the
  // handler may delete itself in it.
  virtual void on_downstream_close(uint32_t error_code) noexcept = 0;

  // Response body, pulled by the session: return how many bytes (<= |length|) to send next
  // with NO_COPY, or NGHTTP2_ERR_DEFERRED; set NGHTTP2_DATA_FLAG_EOF in |data_flags| at the end.
  virtual ssize_t read_response_body(size_t length, uint32_t* data_flags) noexcept = 0;
  // Appends |length| bytes of the response body to |out| and drops them from the handler.
  virtual void write_response_body(ChunkChain& out, size_t length) noexcept = 0;

  // The response HEADERS (or trailers) the handler submitted could not be sent (nghttp2 said
  // |lib_error|): the session resets the stream with INTERNAL_ERROR right after.
  virtual void on_response_not_sent(int lib_error) noexcept = 0;

  // The connection is closing with the stream still open (drain timeout, connection age
  // grace): end it now, saying |why|. The handler may delete itself in it.
  virtual void on_expire(const char* why) noexcept = 0;

 protected:
  ~ServerStreamHandler() = default;

 private:
  friend struct ServerSessionCallbacks;

  // The session's HTTP/2 message checks of this request; the handler sees only what passes.
  RequestCheck request_check_;
};

class ServerSession;

// Creates the handler of each new stream; told when a session is gone.
class ServerSessionOwner {
 public:
  virtual ServerStreamHandler* on_new_stream(ServerSession& session,
                                             int32_t stream_id) noexcept = 0;
  virtual void on_session_gone(ServerSession& session) noexcept = 0;

 protected:
  ~ServerSessionOwner() = default;
};

// The downstream side: an HTTP/2 connection from a client (h2c, or h2 over TLS on a TLS
// listener).
class ServerSession final : public H2Session, public ListHook<ServerSession> {
 public:
  ServerSession(uv_loop_t* loop, ChunkPool& pool, FlushQueue& flush_queue, nghttp2_mem* mem,
                ServerSessionOwner& owner) noexcept;

  // Creates the nghttp2 session and queues SETTINGS. Returns false on failure. The
  // listener's limits are copied: a reload does not change them for this connection.
  bool start(std::shared_ptr<const Config> config, size_t listener_index) noexcept;
  const ListenerConfig& listener() const noexcept { return *listener_; }
  // A TLS client must finish its handshake within |ms| or the connection closes (set before
  // start()).
  void set_handshake_timeout(uint64_t ms) noexcept;
  // Takes over one count the caller added to |gauge| for this connection; it is given back
  // when the connection is gone.
  void hold_count(std::shared_ptr<ConnectionGauge> gauge) noexcept { gauge_ = std::move(gauge); }

  // Response HEADERS; with |body| the stream stays open for DATA and trailers pulled from it,
  // without it the HEADERS end the stream (Trailers-Only).
  int submit_response(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen,
                      ServerStreamHandler* body) noexcept;
  // Trailers; call only from read_response_body (after the last DATA).
  int submit_trailer(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen) noexcept;
  void resume(int32_t stream_id) noexcept;
  void reset(int32_t stream_id, uint32_t error_code) noexcept;
  // Graceful shutdown in two steps, so no stream the client is sending meanwhile is lost:
  // GOAWAY with the largest stream id and a PING; once the PING is acknowledged (or after a
  // short wait) GOAWAY with the last stream id seen. The connection closes when its open
  // streams end.
  void shutdown() noexcept;
  // Ends every open stream now (on_expire(|why|)) and shuts down.
  void expire(const char* why) noexcept;
  size_t stream_count() const noexcept { return streams_.size(); }
  // The owner's own data about this connection.
  void* tag() const noexcept { return tag_; }
  void set_tag(void* tag) noexcept { tag_ = tag; }
  // The client's verified certificate (TLS with client certificates), or nullptr.
  const PeerIdentity* peer_identity() const noexcept {
    return conn_.tls() ? conn_.tls()->peer() : nullptr;
  }

  void write_body(nghttp2_data_source* source, ChunkChain& out, size_t length) noexcept override;

 private:
  friend struct ServerSessionCallbacks;
  friend struct ServerSessionInput;

  // Client input goes to nghttp2 through closed_streams_.
  ssize_t receive(const uint8_t* data, size_t len) noexcept override;
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

  ServerSessionOwner& owner_;
  void* tag_ = nullptr;
  // The config the connection was accepted under (a reload does not change its limits) and
  // its listener in it.
  std::shared_ptr<const Config> config_;
  const ListenerConfig* listener_ = nullptr;
  std::shared_ptr<ConnectionGauge> gauge_;
  Goaway goaway_ = Goaway::none;
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
