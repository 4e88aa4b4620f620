#pragma once

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "byte_queue.h"

namespace grelay::bench {

class EchoWorker;

struct SessionDeleter {
  void operator()(nghttp2_session* session) const noexcept { nghttp2_session_del(session); }
};
using SessionPtr = std::unique_ptr<nghttp2_session, SessionDeleter>;

// One accepted h2c connection that answers every stream as a gRPC echo: response
// headers as soon as the request headers arrive, each request DATA byte echoed as
// response DATA, and `grpc-status: 0` trailers after the request ends.
//
// Flow control is end to end: automatic window updates are off and received bytes are
// consumed only when their echo has been copied to the socket's output buffer. A stream
// therefore buffers at most its receive window (1 MiB) and a connection at most its
// connection window, whatever the client does.
//
// The object owns its socket and nghttp2 session and is deleted from the socket's close
// callback; after close() it may be freed on the next loop turn.
class EchoConnection {
 public:
  // Accepts one pending connection from |listener| and starts serving it. On failure the
  // connection is dropped; the listener keeps running.
  static void accept(EchoWorker& worker, uv_stream_t* listener) noexcept;

  // Starts closing the socket; the object is freed in the close callback.
  void close() noexcept;

  EchoConnection(const EchoConnection&) = delete;
  EchoConnection& operator=(const EchoConnection&) = delete;
  ~EchoConnection();

 private:
  struct Stream {
    int32_t id = 0;
    ByteQueue pending;  // Received request bytes not yet echoed.
    bool request_ended = false;
    bool deferred = false;  // The data provider returned NGHTTP2_ERR_DEFERRED.
  };

  explicit EchoConnection(EchoWorker& worker) noexcept;

  bool start() noexcept;
  Stream* find_stream(int32_t stream_id) noexcept;
  void resume(Stream& stream) noexcept;
  void apply_consumed() noexcept;
  void flush() noexcept;
  void fail() noexcept;
  uv_stream_t* socket() noexcept { return reinterpret_cast<uv_stream_t*>(&tcp_); }

  static const nghttp2_session_callbacks* callbacks() noexcept;

  static void on_alloc_cb(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;
  static void on_read_cb(uv_stream_t* socket, ssize_t nread, const uv_buf_t* buf) noexcept;
  void on_read(ssize_t nread, const uv_buf_t* buf) noexcept;
  static void on_write_cb(uv_write_t* req, int status) noexcept;
  void on_write(int status) noexcept;
  static void on_close_cb(uv_handle_t* handle) noexcept;

  static int on_begin_headers_cb(nghttp2_session* session, const nghttp2_frame* frame,
                                 void* user_data) noexcept;
  int on_begin_headers(const nghttp2_frame& frame) noexcept;
  static int on_frame_recv_cb(nghttp2_session* session, const nghttp2_frame* frame,
                              void* user_data) noexcept;
  int on_frame_recv(const nghttp2_frame& frame) noexcept;
  static int on_data_chunk_recv_cb(nghttp2_session* session, uint8_t flags, int32_t stream_id,
                                   const uint8_t* data, size_t length, void* user_data) noexcept;
  int on_data_chunk_recv(int32_t stream_id, const uint8_t* data, size_t length) noexcept;
  static int on_stream_close_cb(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                                void* user_data) noexcept;
  int on_stream_close(int32_t stream_id) noexcept;
  static ssize_t read_body_cb(nghttp2_session* session, int32_t stream_id, uint8_t* buf,
                              size_t length, uint32_t* data_flags, nghttp2_data_source* source,
                              void* user_data) noexcept;
  ssize_t read_body(Stream& stream, size_t length, uint32_t* data_flags) noexcept;
  static int send_data_cb(nghttp2_session* session, nghttp2_frame* frame, const uint8_t* framehd,
                          size_t length, nghttp2_data_source* source, void* user_data) noexcept;
  int send_data(const uint8_t* frame_header, size_t length, Stream& stream) noexcept;

  EchoWorker& worker_;
  uv_tcp_t tcp_{};
  uv_write_t write_req_{};
  // Every Stream this connection made; nghttp2's stream user data points into it, and
  // closed ones wait in |spare_| for the next request (a deque never moves its elements).
  // Declared before the session so the session is deleted first.
  std::deque<Stream> streams_;
  std::vector<Stream*> spare_;
  SessionPtr session_;
  // Bytes to hand to nghttp2_session_consume once the current nghttp2 call returns;
  // stream id 0 stands for connection-level only.
  std::vector<std::pair<int32_t, size_t>> consumed_;
  std::string out_;      // Serialized frames not yet given to the socket.
  std::string writing_;  // The buffer of the uv_write in flight.
  bool write_in_flight_ = false;
  bool closing_ = false;
};

}  // namespace grelay::bench
