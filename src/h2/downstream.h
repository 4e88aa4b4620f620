#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/chunk.h"
#include "core/intrusive_list.h"
#include "h2/field_name.h"
#include "h2/request_check.h"

namespace grelay {

struct ListenerConfig;
struct PeerIdentity;

// What a stream's response has next for its client, when its downstream pulls it.
struct ResponsePull {
  enum class Kind : uint8_t {
    // |length| bytes (maybe none) to take with write_response_body(); with |end| the response
    // ends after them, and with |trailers| the handler sent its trailers (send_trailers()).
    data,
    // Nothing yet: the handler calls Downstream::resume() when it has more.
    wait,
    // The response cannot end cleanly (a message would be cut): the stream is reset.
    cut,
  };
  size_t length = 0;
  Kind kind = Kind::data;
  bool end = false;
  bool trailers = false;
};

// What an nghttp2 data source read callback returns for |pull|: the byte count (setting EOF
// and NO_END_STREAM in |data_flags| as |pull| says), NGHTTP2_ERR_DEFERRED to wait, or
// NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE to reset the stream.
inline ssize_t data_source_result(const ResponsePull& pull, uint32_t* data_flags) noexcept {
  switch (pull.kind) {
    case ResponsePull::Kind::wait:
      return NGHTTP2_ERR_DEFERRED;
    case ResponsePull::Kind::cut:
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    case ResponsePull::Kind::data:
      break;
  }
  if (pull.end) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  if (pull.trailers) *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
  return static_cast<ssize_t>(pull.length);
}

// The owner of one client stream, whatever protocol the client speaks: it is told what the
// client sends and pulls the response from it. A Call is the one kind there is.
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
  // connection went away (CANCEL). The downstream forgets the handler before this call, so the
  // handler may delete itself in it.
  virtual void on_downstream_close(uint32_t error_code) noexcept = 0;

  // Response body: what to send next, at most |length| bytes.
  virtual ResponsePull pull_response(size_t length) noexcept = 0;
  // Appends |length| bytes of the response body to |out| and drops them from the handler.
  virtual void write_response_body(ChunkChain& out, size_t length) noexcept = 0;

  // The response HEADERS (or trailers) the handler sent could not be (the HTTP/2 library said
  // |lib_error|): the downstream resets the stream with INTERNAL_ERROR right after.
  virtual void on_response_not_sent(int lib_error) noexcept = 0;

  // The connection is closing with the stream still open (drain timeout, connection age
  // grace): end it now, saying |why|. The handler may delete itself in it.
  virtual void on_expire(const char* why) noexcept = 0;

  // The downstream's HTTP/2 message checks of this request; the handler sees only what passes.
  RequestCheck& request_check() noexcept { return request_check_; }

 protected:
  ~ServerStreamHandler() = default;

 private:
  RequestCheck request_check_;
};

// The protocol a client's call came in on, as metrics and the access log name it.
enum class CallProtocol : uint8_t { grpc, grpc_web, grpc_web_text, connect };
constexpr size_t call_protocol_count = 4;
constexpr const char* call_protocol_name(CallProtocol p) noexcept {
  switch (p) {
    case CallProtocol::grpc_web:
      return "grpc-web";
    case CallProtocol::grpc_web_text:
      return "grpc-web-text";
    case CallProtocol::connect:
      return "connect";
    case CallProtocol::grpc:
      break;
  }
  return "grpc";
}

// The client side of calls: a client connection of a listener, or a host application's own
// HTTP/2 session that hands the relay some of its streams. Calls answer through it by stream id.
// Fields are nghttp2_nv arrays whatever the protocol, referred to (not copied) until sent.
class Downstream : public ListHook<Downstream> {
 public:
  // Response HEADERS: with |body| the stream stays open for the body and trailers pulled from
  // it (pull_response()); without, they end the stream (Trailers-Only). Returns 0 or an
  // nghttp2 error code.
  virtual int send_response(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen,
                            ServerStreamHandler* body) noexcept = 0;
  // Trailers: only from pull_response(), with the response's last bytes.
  virtual int send_trailers(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen) noexcept = 0;
  // The stream's handler has more to pull.
  virtual void resume(int32_t stream_id) noexcept = 0;
  // The handler is done with |n| request bytes: the client may send as many more (|peer_ended|:
  // the request is complete, so only the connection needs the credit).
  virtual void give_credit(int32_t stream_id, size_t n, bool peer_ended) noexcept = 0;
  // Stream credit alone, for |n| request bytes the handler holds whole before it can pass them
  // on: the client may send the rest of the stream while the connection's window still bounds
  // what all its streams hold. give_credit(stream_id, n, true) gives the connection's part
  // later. Where there is no connection window (one stream at a time), it is give_credit().
  virtual void give_stream_credit(int32_t stream_id, size_t n) noexcept {
    give_credit(stream_id, n, false);
  }
  // The client's verified certificate, or nullptr.
  virtual const PeerIdentity* peer_identity() const noexcept = 0;
  // Hands stream |stream_id| from |from|, its handler, to |to|, which takes it over as it is
  // (|from| replays to |to| what it was told of the request). Returns false when this
  // downstream's streams cannot carry what |to| speaks (plain gRPC, on HTTP/1.1).
  virtual bool rebind(int32_t stream_id, ServerStreamHandler& from,
                      ServerStreamHandler& to) noexcept {
    (void)stream_id, (void)from, (void)to;
    return false;
  }
  // The protocol the client's calls speak.
  virtual CallProtocol protocol() const noexcept { return CallProtocol::grpc; }

  // From the relay's worker. Graceful shutdown: no new stream; the open ones run to their end.
  virtual void drain() noexcept = 0;
  // Ends every open stream now (on_expire(|why|)) and drains.
  virtual void expire(const char* why) noexcept = 0;
  // Ends every open stream now, as if the client had gone (CANCEL).
  virtual void close_now() noexcept = 0;

  // The limits that apply to the streams: those of the listener the client came in on.
  const ListenerConfig& listener() const noexcept { return *listener_; }
  // The worker's own data about this downstream.
  void* tag() const noexcept { return tag_; }
  void set_tag(void* tag) noexcept { tag_ = tag; }

 protected:
  ~Downstream() = default;

  const ListenerConfig* listener_ = nullptr;

 private:
  void* tag_ = nullptr;
};

}  // namespace grelay
