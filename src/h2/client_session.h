#pragma once

#include <string_view>

#include "core/intrusive_list.h"
#include "h2/h2_session.h"
#include "h2/request_check.h"

namespace grelay {

class ClientSession;

// The error codes on_upstream_close() reports that are not HTTP/2 codes: the whole connection
// was lost, or the relay reset the stream (PROTOCOL_ERROR) because the backend's answer broke
// HTTP/2's message rules (ResponseCheck).
inline constexpr uint32_t h2_connection_lost = 0xffffffffu;
inline constexpr uint32_t h2_malformed_answer = 0xfffffffeu;

// What a client session tells the owner of one of its streams.
class ClientStreamHandler : public ListHook<ClientStreamHandler> {
 public:
  // A header of the first HEADERS block (|later_block| false) or of a later one (true):
  // trailers, or the final response after an informational 1xx one. Only fields that pass
  // the session's ResponseCheck come here; |f| is classify_field() of |name|.
  virtual void on_response_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value, FieldName f,
                                  bool later_block) noexcept = 0;
  // A HEADERS block is complete: a response (1xx included) or trailers.
  virtual void on_response_headers_end(bool end_stream) noexcept = 0;
  virtual void on_response_data(const uint8_t* data, size_t len) noexcept = 0;
  // The backend half-closed the stream (after DATA or trailers).
  virtual void on_response_end() noexcept = 0;
  // The stream closed with |error_code|, or the connection went away. The session forgets
  // the handler before this call. A malformed answer (ResponseCheck) closes it with
  // PROTOCOL_ERROR, the stream being reset.
  virtual void on_upstream_close(uint32_t error_code) noexcept = 0;

  // The session is about to write: the handler, queued by ClientSession::queue_request(),
  // opens its stream now with |session|.submit_request() (or gives up).
  virtual void on_submit(ClientSession& session) noexcept = 0;

  // Request body, pulled by the session: return how many bytes (<= |length|) to send next
  // with NO_COPY, or NGHTTP2_ERR_DEFERRED; set NGHTTP2_DATA_FLAG_EOF in |data_flags| at the end.
  virtual ssize_t read_request_body(size_t length, uint32_t* data_flags) noexcept = 0;
  virtual void write_request_body(ChunkChain& out, size_t length) noexcept = 0;

 protected:
  ~ClientStreamHandler() = default;

 private:
  friend class ClientSession;
  friend struct ClientSessionCallbacks;

  // The session's HTTP/2 message checks of the answer on the handler's current stream; the
  // handler sees only what passes.
  ResponseCheck response_check_;
};

// The upstream side: an HTTP/2 connection to a backend (h2c, or h2 over TLS).
class ClientSession : public H2Session {
 public:
  ClientSession(uv_loop_t* loop, ChunkPool& pool, FlushQueue& flush_queue,
                nghttp2_mem* mem) noexcept;

  // Creates the nghttp2 session and queues SETTINGS. Returns false on failure.
  bool start() noexcept;

  // Opens a stream; returns its id, or a negative nghttp2 error.
  int32_t submit_request(const nghttp2_nv* nva, size_t nvlen,
                         ClientStreamHandler* handler) noexcept;
  // Queues |handler| to open its stream when the session next writes, at the end of this
  // loop turn (handler.on_submit()). Until then the stream has id 0 and costs nghttp2
  // nothing: a call cancelled in the turn it started (a reset right behind its HEADERS)
  // never reaches the backend, and its cancel is O(1). Cancelling a request nghttp2 holds
  // unsent walks nghttp2's queue of unsent requests, so k such cancels in one turn would
  // cost O(k^2).
  void queue_request(ClientStreamHandler& handler) noexcept;
  void resume(int32_t stream_id) noexcept;
  // Resets |stream_id| and forgets |handler|, its handler: no callback reaches it after.
  // With |stream_id| 0 the handler is still queued: it is only dropped from the queue.
  void reset(int32_t stream_id, ClientStreamHandler& handler, uint32_t error_code) noexcept;

  // Streams opened plus those queued to open.
  size_t stream_count() const noexcept { return streams_.size() + unsubmitted_.size(); }
  // Streams submitted or queued over the connection's life.
  uint64_t streams_submitted() const noexcept { return streams_submitted_; }
  // Sends a PING; on_ping_ack() reports its answer.
  void ping() noexcept;
  // The backend's SETTINGS_MAX_CONCURRENT_STREAMS (100 until its SETTINGS arrive). Read from
  // nghttp2 when a SETTINGS frame arrives: the pool asks at every change of stream_count().
  uint32_t max_concurrent_streams() const noexcept { return max_concurrent_streams_; }

  void write_body(nghttp2_data_source* source, ChunkChain& out, size_t length) noexcept override;

 protected:
  // The backend sent GOAWAY: take no new streams. Streams above its last-stream-id are
  // closed by nghttp2 with REFUSED_STREAM. |debug| is the frame's opaque data.
  virtual void on_goaway(uint32_t error_code, std::string_view debug) noexcept = 0;
  virtual void on_ping_ack() noexcept {}
  // A stream closed (after its handler, if any, was told).
  virtual void on_stream_closed() noexcept {}
  // stream_count() changed. Called before the handler concerned hears of it (a stream that
  // closes), so that counts kept from stream_count() are true in its callbacks; a handler that
  // gives up in on_submit() still counts until on_submit() returns.
  virtual void on_stream_count_changed() noexcept {}
  // A SETTINGS frame of the backend arrived (the first says it speaks HTTP/2);
  // max_concurrent_streams() is up to date.
  virtual void on_remote_settings() noexcept = 0;

  PeerSide side() const noexcept override { return PeerSide::backend; }

  // Fails every stream with |error_code| (the connection is gone); queued ones, never sent,
  // with REFUSED_STREAM so that they may be replayed.
  void fail_all_streams(uint32_t error_code) noexcept;

  // Opens the queued streams (H2Session::flush_now(), before nghttp2 writes).
  void before_send() noexcept override;

 private:
  // The backend's answer on |stream_id| broke HTTP/2's message rules: resets the stream with
  // PROTOCOL_ERROR, as nghttp2's own checks would, and tells |handler| so.
  void reject_malformed(int32_t stream_id, ClientStreamHandler& handler) noexcept;

  friend struct ClientSessionCallbacks;

  IntrusiveList<ClientStreamHandler> streams_;
  // Handlers waiting for the next write to open their stream; a handler is in this list or
  // in |streams_|, never both (they share one hook).
  IntrusiveList<ClientStreamHandler> unsubmitted_;
  uint64_t streams_submitted_ = 0;
  // max_concurrent_streams(), as nghttp2 last said it.
  uint32_t max_concurrent_streams_ = 100;
};

}  // namespace grelay
