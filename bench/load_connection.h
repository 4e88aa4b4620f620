#pragma once

#include <netinet/in.h>

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "byte_queue.h"

namespace grelay::bench {

class LoadConnection;

// What a LoadConnection tells its owner. One object (a load_client mode) serves every
// connection; the callbacks run on the loop thread.
class LoadEvents {
 public:
  // SETTINGS were exchanged both ways: the connection is established end to end.
  virtual void on_ready(LoadConnection& connection) noexcept = 0;
  // |length| response DATA bytes arrived on |stream_id|.
  virtual void on_stream_data(LoadConnection& connection, int32_t stream_id,
                              size_t length) noexcept = 0;
  // |stream_id| closed; |ok| when it ended cleanly with `grpc-status: 0`.
  virtual void on_stream_close(LoadConnection& connection, int32_t stream_id, bool ok) noexcept = 0;
  // The connection is gone; |why| says why. The object is freed when this returns.
  virtual void on_closed(LoadConnection& connection, std::string_view why) noexcept = 0;

 protected:
  ~LoadEvents() = default;
};

// DATA frames and their payload bytes over every connection of the process: received from
// the server, and sent to it. Plain integers: load_client runs one loop on one thread.
struct DataFrameCounts {
  uint64_t frames_in = 0;
  uint64_t bytes_in = 0;
  uint64_t frames_out = 0;
  uint64_t bytes_out = 0;
};

struct LoadSettings {
  std::string authority;  // :authority of every request.
  // Receive windows announced to the server. An idle connection sends its SETTINGS and
  // nothing else, so it skips the connection WINDOW_UPDATE.
  int32_t stream_window = 1 << 20;
  int32_t connection_window = 16 << 20;
  bool idle = false;
};

// One h2c client connection driven by nghttp2 on a uv loop. Request bodies are queued per
// stream with send() and go out as flow control allows; a stream stays open until send()
// is given |end|. Frames are written at the end of each read callback and on flush().
//
// The object owns its socket and session and is freed from the socket's close callback,
// after LoadEvents::on_closed.
class LoadConnection {
 public:
  // Starts connecting to |address|. Returns nullptr if the connect cannot even start.
  static LoadConnection* connect(uv_loop_t* loop, const sockaddr_in& address,
                                 const LoadSettings& settings, LoadEvents& events) noexcept;

  // Opens a gRPC call to |path|: HEADERS without END_STREAM. Returns the stream id, or a
  // negative nghttp2 error code.
  int32_t open_stream(std::string_view path) noexcept;
  // Queues |length| bytes of request body on |stream_id|; |end| ends the request after
  // them. Returns false if the stream is unknown or memory ran out.
  bool send(int32_t stream_id, const uint8_t* data, size_t length, bool end) noexcept;
  // Writes whatever nghttp2 has queued.
  void flush() noexcept;
  // Starts closing the socket; on_closed follows from the close callback.
  void close(std::string_view why) noexcept;

  size_t open_streams() const noexcept { return streams_.size(); }
  // What every connection of this process has received and sent so far.
  static const DataFrameCounts& data_counts() noexcept;
  // Free for the owner: which slot of its table this connection fills.
  size_t tag() const noexcept { return tag_; }
  void set_tag(size_t tag) noexcept { tag_ = tag; }

  LoadConnection(const LoadConnection&) = delete;
  LoadConnection& operator=(const LoadConnection&) = delete;
  ~LoadConnection();

 private:
  struct Stream {
    int32_t id = 0;
    ByteQueue pending;  // Request body not yet handed to nghttp2.
    bool end = false;
    bool deferred = false;
    bool grpc_ok = false;  // Trailers carried grpc-status 0.
  };

  struct SessionDeleter {
    void operator()(nghttp2_session* session) const noexcept { nghttp2_session_del(session); }
  };

  LoadConnection(const LoadSettings& settings, LoadEvents& events) noexcept;

  bool start_session() noexcept;
  uv_stream_t* socket() noexcept { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  static const nghttp2_session_callbacks* callbacks() noexcept;

  static void on_connect_cb(uv_connect_t* req, int status) noexcept;
  void on_connect(int status) noexcept;
  static void on_alloc_cb(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;
  static void on_read_cb(uv_stream_t* socket, ssize_t nread, const uv_buf_t* buf) noexcept;
  void on_read(ssize_t nread, const uv_buf_t* buf) noexcept;
  static void on_write_cb(uv_write_t* req, int status) noexcept;
  void on_write(int status) noexcept;
  static void on_close_cb(uv_handle_t* handle) noexcept;

  static int on_frame_recv_cb(nghttp2_session* session, const nghttp2_frame* frame,
                              void* user_data) noexcept;
  void on_frame_recv(const nghttp2_frame& frame) noexcept;
  static int on_header_cb(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                          size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                          void* user_data) noexcept;
  static int on_data_chunk_recv_cb(nghttp2_session* session, uint8_t flags, int32_t stream_id,
                                   const uint8_t* data, size_t length, void* user_data) noexcept;
  static int on_stream_close_cb(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                                void* user_data) noexcept;
  int on_stream_close(int32_t stream_id, uint32_t error_code) noexcept;
  static ssize_t read_body_cb(nghttp2_session* session, int32_t stream_id, uint8_t* buf,
                              size_t length, uint32_t* data_flags, nghttp2_data_source* source,
                              void* user_data) noexcept;

  LoadSettings settings_;
  LoadEvents& events_;
  uv_tcp_t tcp_{};
  uv_connect_t connect_req_{};
  uv_write_t write_req_{};
  // Streams are declared before the session so the session is deleted first.
  std::unordered_map<int32_t, Stream> streams_;
  std::unique_ptr<nghttp2_session, SessionDeleter> session_;
  std::string out_;      // Serialized frames not yet given to the socket.
  std::string writing_;  // The buffer of the uv_write in flight.
  std::string close_reason_;
  size_t tag_ = 0;
  bool write_in_flight_ = false;
  bool closing_ = false;
  bool remote_settings_ = false;
  bool settings_acked_ = false;
  bool ready_reported_ = false;
};

}  // namespace grelay::bench
