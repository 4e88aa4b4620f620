#pragma once

#include "core/intrusive_list.h"
#include "grelay/config.h"
#include "h2/h2_session.h"
#include "h2/request_check.h"

namespace grelay {

// What a server session tells the owner of one of its streams.
class ServerStreamHandler : public ListHook<ServerStreamHandler> {
 public:
  virtual void on_request_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value) noexcept = 0;
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

// The downstream side: an h2c connection from a client.
class ServerSession final : public H2Session, public ListHook<ServerSession> {
 public:
  ServerSession(uv_loop_t* loop, ChunkPool& pool, FlushQueue& flush_queue, nghttp2_mem* mem,
                ServerSessionOwner& owner) noexcept;

  // Creates the nghttp2 session and queues SETTINGS. Returns false on failure.
  bool start(const ListenerConfig& listener) noexcept;

  // Response HEADERS; with |body| the stream stays open for DATA and trailers pulled from it,
  // without it the HEADERS end the stream (Trailers-Only).
  int submit_response(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen,
                      ServerStreamHandler* body) noexcept;
  // Trailers; call only from read_response_body (after the last DATA).
  int submit_trailer(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen) noexcept;
  void resume(int32_t stream_id) noexcept;
  void reset(int32_t stream_id, uint32_t error_code) noexcept;
  // Graceful shutdown: GOAWAY with the last stream seen; the connection closes when idle.
  void shutdown() noexcept;
  size_t stream_count() const noexcept { return streams_.size(); }
  // The client's verified certificate (TLS with client certificates), or nullptr.
  const PeerIdentity* peer_identity() const noexcept {
    return conn_.tls() ? conn_.tls()->peer() : nullptr;
  }

  void write_body(nghttp2_data_source* source, ChunkChain& out, size_t length) noexcept override;

 private:
  friend struct ServerSessionCallbacks;

  void on_teardown() noexcept override;
  // Ends a malformed request: RST_STREAM(PROTOCOL_ERROR), and the handler is told at once.
  void reject_malformed(int32_t stream_id, ServerStreamHandler& handler) noexcept;
  void on_handshake_done() noexcept override;
  // The TLS handshake timeout (the only use of the timer here).
  void on_timer() noexcept override;

  ServerSessionOwner& owner_;
  IntrusiveList<ServerStreamHandler> streams_;
};

}  // namespace grelay
