#include "load_connection.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <new>
#include <string>

namespace grelay::bench {

namespace {

// Stop serializing frames while this much output is waiting for the socket.
constexpr size_t output_high_water = 256 * 1024;
constexpr size_t read_buffer_size = 64 * 1024;

// load_client runs one loop on one thread, and each read is fully processed before its
// callback returns, so every connection can read into the same buffer.
char read_buffer[read_buffer_size];

DataFrameCounts data_frame_counts;

nghttp2_nv make_nv(std::string_view name, std::string_view value) noexcept {
  // nghttp2 copies names and values on submit; it only reads through these pointers.
  return {const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
          const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())), name.size(),
          value.size(), NGHTTP2_NV_FLAG_NONE};
}

struct CallbacksDeleter {
  void operator()(nghttp2_session_callbacks* callbacks) const noexcept {
    nghttp2_session_callbacks_del(callbacks);
  }
};

}  // namespace

const DataFrameCounts& LoadConnection::data_counts() noexcept {
  return data_frame_counts;
}

LoadConnection::LoadConnection(const LoadSettings& settings, LoadEvents& events) noexcept
    : settings_(settings), events_(events) {}

LoadConnection::~LoadConnection() = default;

LoadConnection* LoadConnection::connect(uv_loop_t* loop, const sockaddr_in& address,
                                        const LoadSettings& settings, LoadEvents& events) noexcept {
  std::unique_ptr<LoadConnection> owned(new (std::nothrow) LoadConnection(settings, events));
  if (!owned || uv_tcp_init(loop, &owned->tcp_) != 0) return nullptr;
  owned->tcp_.data = owned.get();
  // From here on the close callback frees the connection.
  LoadConnection* connection = owned.release();
  int rc = uv_tcp_connect(&connection->connect_req_, &connection->tcp_,
                          reinterpret_cast<const sockaddr*>(&address), on_connect_cb);
  if (rc != 0) {
    connection->close(std::string("connect: ") + uv_strerror(rc));
  }
  return connection;
}

void LoadConnection::on_connect_cb(uv_connect_t* req, int status) noexcept {
  static_cast<LoadConnection*>(req->handle->data)->on_connect(status);
}

void LoadConnection::on_connect(int status) noexcept {
  if (closing_) return;
  if (status != 0) {
    close(std::string("connect: ") + uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(&tcp_, 1);
  if (!start_session()) {
    close("cannot start the HTTP/2 session");
    return;
  }
  if (int rc = uv_read_start(socket(), on_alloc_cb, on_read_cb); rc != 0) {
    close(std::string("read: ") + uv_strerror(rc));
    return;
  }
  flush();
}

bool LoadConnection::start_session() noexcept {
  nghttp2_session* session = nullptr;
  if (callbacks() == nullptr || nghttp2_session_client_new(&session, callbacks(), this) != 0) {
    return false;
  }
  session_.reset(session);
  const nghttp2_settings_entry entries[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(settings_.stream_window)},
  };
  if (nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, entries, std::size(entries)) != 0) {
    return false;
  }
  if (settings_.idle) return true;
  return nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0,
                                               settings_.connection_window) == 0;
}

int32_t LoadConnection::open_stream(std::string_view path) noexcept {
  if (closing_ || !session_) return NGHTTP2_ERR_INVALID_STATE;
  const nghttp2_nv headers[] = {
      make_nv(":method", "POST"),
      make_nv(":scheme", "http"),
      make_nv(":path", path),
      make_nv(":authority", settings_.authority),
      make_nv("content-type", "application/grpc"),
      make_nv("te", "trailers"),
  };
  // The body is looked up by stream id in read_body_cb, so the provider needs no pointer.
  nghttp2_data_provider provider{};
  provider.read_callback = read_body_cb;
  int32_t id = nghttp2_submit_request(session_.get(), nullptr, headers, std::size(headers),
                                      &provider, nullptr);
  if (id < 0) return id;
  try {
    streams_[id].id = id;
  } catch (const std::bad_alloc&) {
    nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
    return NGHTTP2_ERR_NOMEM;
  }
  return id;
}

bool LoadConnection::send(int32_t stream_id, const uint8_t* data, size_t length,
                          bool end) noexcept {
  auto it = streams_.find(stream_id);
  if (it == streams_.end() || it->second.end) return false;
  Stream& stream = it->second;
  try {
    stream.pending.append(data, length);
  } catch (const std::bad_alloc&) {
    return false;
  }
  stream.end = end;
  if (stream.deferred) {
    stream.deferred = false;
    nghttp2_session_resume_data(session_.get(), stream_id);
  }
  return true;
}

void LoadConnection::close(std::string_view why) noexcept {
  if (closing_) return;
  closing_ = true;
  try {
    close_reason_ = why;
  } catch (const std::bad_alloc&) {
    close_reason_.clear();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close_cb);
}

void LoadConnection::on_close_cb(uv_handle_t* handle) noexcept {
  auto* connection = static_cast<LoadConnection*>(handle->data);
  connection->events_.on_closed(*connection, connection->close_reason_);
  delete connection;
}

// Serializes pending frames and writes them: uv_try_write first, and a uv_write for the
// rest when the socket is full. Only one uv_write is in flight; its callback resumes.
void LoadConnection::flush() noexcept {
  if (closing_ || write_in_flight_ || !session_) return;
  nghttp2_session* session = session_.get();
  for (;;) {
    while (out_.size() < output_high_water) {
      const uint8_t* data = nullptr;
      ssize_t length = nghttp2_session_mem_send(session, &data);
      if (length < 0) {
        close(std::string("nghttp2: ") + nghttp2_strerror(static_cast<int>(length)));
        return;
      }
      if (length == 0) break;
      try {
        out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(length));
      } catch (const std::bad_alloc&) {
        close("out of memory");
        return;
      }
    }
    if (out_.empty()) break;
    uv_buf_t buf = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
    int written = uv_try_write(socket(), &buf, 1);
    if (written == UV_EAGAIN) written = 0;
    if (written < 0) {
      close(std::string("write: ") + uv_strerror(written));
      return;
    }
    out_.erase(0, static_cast<size_t>(written));
    if (out_.empty()) continue;
    // The socket is full: hand the rest to libuv and wait for its callback.
    writing_.swap(out_);
    uv_buf_t rest = uv_buf_init(writing_.data(), static_cast<unsigned>(writing_.size()));
    if (int rc = uv_write(&write_req_, socket(), &rest, 1, on_write_cb); rc != 0) {
      close(std::string("write: ") + uv_strerror(rc));
      return;
    }
    write_in_flight_ = true;
    return;
  }
  if (!nghttp2_session_want_read(session) && !nghttp2_session_want_write(session)) {
    close("the session ended (GOAWAY)");
  }
}

void LoadConnection::on_alloc_cb(uv_handle_t*, size_t, uv_buf_t* buf) noexcept {
  *buf = uv_buf_init(read_buffer, read_buffer_size);
}

void LoadConnection::on_read_cb(uv_stream_t* socket, ssize_t nread, const uv_buf_t* buf) noexcept {
  static_cast<LoadConnection*>(socket->data)->on_read(nread, buf);
}

void LoadConnection::on_read(ssize_t nread, const uv_buf_t* buf) noexcept {
  if (closing_) return;
  if (nread < 0) {
    close(nread == UV_EOF ? "the server closed the connection"
                          : std::string("read: ") + uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (nread == 0) return;
  ssize_t rv = nghttp2_session_mem_recv(session_.get(), reinterpret_cast<const uint8_t*>(buf->base),
                                        static_cast<size_t>(nread));
  if (rv < 0) {
    close(std::string("nghttp2: ") + nghttp2_strerror(static_cast<int>(rv)));
    return;
  }
  flush();
}

void LoadConnection::on_write_cb(uv_write_t* req, int status) noexcept {
  static_cast<LoadConnection*>(req->handle->data)->on_write(status);
}

void LoadConnection::on_write(int status) noexcept {
  write_in_flight_ = false;
  writing_.clear();
  if (status < 0) {
    close(std::string("write: ") + uv_strerror(status));
    return;
  }
  flush();
}

const nghttp2_session_callbacks* LoadConnection::callbacks() noexcept {
  static const std::unique_ptr<nghttp2_session_callbacks, CallbacksDeleter> table = [] {
    nghttp2_session_callbacks* raw = nullptr;
    if (nghttp2_session_callbacks_new(&raw) != 0) {
      return std::unique_ptr<nghttp2_session_callbacks, CallbacksDeleter>();
    }
    std::unique_ptr<nghttp2_session_callbacks, CallbacksDeleter> owned(raw);
    nghttp2_session_callbacks_set_on_frame_recv_callback(raw, on_frame_recv_cb);
    nghttp2_session_callbacks_set_on_header_callback(raw, on_header_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(raw, on_data_chunk_recv_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(raw, on_stream_close_cb);
    return owned;
  }();
  return table.get();
}

int LoadConnection::on_frame_recv_cb(nghttp2_session*, const nghttp2_frame* frame,
                                     void* user_data) noexcept {
  static_cast<LoadConnection*>(user_data)->on_frame_recv(*frame);
  return 0;
}

void LoadConnection::on_frame_recv(const nghttp2_frame& frame) noexcept {
  if (frame.hd.type == NGHTTP2_DATA) {
    ++data_frame_counts.frames_in;
    data_frame_counts.bytes_in += frame.hd.length;
    return;
  }
  if (frame.hd.type != NGHTTP2_SETTINGS) return;
  if (frame.hd.flags & NGHTTP2_FLAG_ACK) {
    settings_acked_ = true;
  } else {
    remote_settings_ = true;
  }
  if (remote_settings_ && settings_acked_ && !ready_reported_) {
    ready_reported_ = true;
    events_.on_ready(*this);
  }
}

int LoadConnection::on_header_cb(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                                 size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                                 void* user_data) noexcept {
  auto* self = static_cast<LoadConnection*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  std::string_view key(reinterpret_cast<const char*>(name), namelen);
  if (key != "grpc-status") return 0;
  auto it = self->streams_.find(frame->hd.stream_id);
  if (it != self->streams_.end()) {
    it->second.grpc_ok = std::string_view(reinterpret_cast<const char*>(value), valuelen) == "0";
  }
  return 0;
}

int LoadConnection::on_data_chunk_recv_cb(nghttp2_session*, uint8_t, int32_t stream_id,
                                          const uint8_t*, size_t length, void* user_data) noexcept {
  auto* self = static_cast<LoadConnection*>(user_data);
  self->events_.on_stream_data(*self, stream_id, length);
  return 0;
}

int LoadConnection::on_stream_close_cb(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                                       void* user_data) noexcept {
  return static_cast<LoadConnection*>(user_data)->on_stream_close(stream_id, error_code);
}

int LoadConnection::on_stream_close(int32_t stream_id, uint32_t error_code) noexcept {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return 0;
  bool ok = error_code == NGHTTP2_NO_ERROR && it->second.grpc_ok;
  streams_.erase(it);
  events_.on_stream_close(*this, stream_id, ok);
  return 0;
}

ssize_t LoadConnection::read_body_cb(nghttp2_session*, int32_t stream_id, uint8_t* buf,
                                     size_t length, uint32_t* data_flags, nghttp2_data_source*,
                                     void* user_data) noexcept {
  auto* self = static_cast<LoadConnection*>(user_data);
  auto it = self->streams_.find(stream_id);
  if (it == self->streams_.end()) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  Stream& stream = it->second;
  size_t n = std::min(length, stream.pending.size());
  if (n == 0 && !stream.end) {
    stream.deferred = true;  // send() resumes it.
    return NGHTTP2_ERR_DEFERRED;
  }
  std::memcpy(buf, stream.pending.data(), n);
  stream.pending.consume(n);
  // Each call that returns a length makes one DATA frame, an empty last one included.
  ++data_frame_counts.frames_out;
  data_frame_counts.bytes_out += n;
  if (stream.end && stream.pending.empty()) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

}  // namespace grelay::bench
