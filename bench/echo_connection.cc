#include "echo_connection.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <new>
#include <string_view>

#include "echo_worker.h"

namespace grelay::bench {

namespace {

// Windows are generous so that a single large message is not throttled by the backend.
constexpr int32_t stream_window = 1 << 20;
constexpr int32_t connection_window = 16 << 20;
constexpr uint32_t max_concurrent_streams = 4096;
// Stop serializing frames while this much output is waiting for the socket.
constexpr size_t output_high_water = 256 * 1024;
constexpr size_t frame_header_length = 9;

nghttp2_nv make_nv(std::string_view name, std::string_view value) noexcept {
  // nghttp2 only reads through these pointers; NO_COPY keeps it from duplicating them.
  return {const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
          const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())), name.size(),
          value.size(), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
}

const nghttp2_nv response_headers[] = {make_nv(":status", "200"),
                                       make_nv("content-type", "application/grpc")};
const nghttp2_nv response_trailers[] = {make_nv("grpc-status", "0")};

struct CallbacksDeleter {
  void operator()(nghttp2_session_callbacks* callbacks) const noexcept {
    nghttp2_session_callbacks_del(callbacks);
  }
};
using CallbacksPtr = std::unique_ptr<nghttp2_session_callbacks, CallbacksDeleter>;

struct OptionDeleter {
  void operator()(nghttp2_option* option) const noexcept { nghttp2_option_del(option); }
};
using OptionPtr = std::unique_ptr<nghttp2_option, OptionDeleter>;

const nghttp2_option* session_option() noexcept {
  static const OptionPtr option = [] {
    nghttp2_option* raw = nullptr;
    if (nghttp2_option_new(&raw) != 0) return OptionPtr();
    OptionPtr owned(raw);
    // Window updates follow the echo: bytes are consumed once their echo is queued.
    nghttp2_option_set_no_auto_window_update(raw, 1);
    // A benchmark fixture, not a server to expose: the requests come from h2load or from a
    // proxy that checked them, so nghttp2's HTTP message checks (a tenth of the backend's
    // CPU per call) are skipped; the backend then measures less of itself.
    nghttp2_option_set_no_http_messaging(raw, 1);
#ifdef ECHO_HAVE_STREAM_RESET_RATE_LIMIT
    // No limit on the RST_STREAM frames a client sends (nghttp2's default: 1,000, then 33
    // a second, and GOAWAY beyond). The clients are relays, which multiplex everyone's
    // calls on one connection; under the underattack workload every relay passes cancels
    // on, and the backend closing the shared connection would measure the backend's
    // defence instead of the relay's. What reaches the backend is counted instead.
    nghttp2_option_set_stream_reset_rate_limit(raw, UINT64_MAX, UINT64_MAX);
#endif
    return owned;
  }();
  return option.get();
}

}  // namespace

EchoConnection::EchoConnection(EchoWorker& worker) noexcept : worker_(worker) {}

EchoConnection::~EchoConnection() = default;

void EchoConnection::accept(EchoWorker& worker, uv_stream_t* listener) noexcept {
  std::unique_ptr<EchoConnection> owned(new (std::nothrow) EchoConnection(worker));
  if (!owned || uv_tcp_init(worker.loop(), &owned->tcp_) != 0) return;
  owned->tcp_.data = owned.get();
  // From here on the close callback frees the connection.
  EchoConnection* connection = owned.release();
  if (uv_accept(listener, connection->socket()) != 0 || !connection->start()) connection->close();
}

bool EchoConnection::start() noexcept {
  nghttp2_session* session = nullptr;
  if (session_option() == nullptr || callbacks() == nullptr ||
      nghttp2_session_server_new3(&session, callbacks(), this, session_option(), worker_.mem()) !=
          0) {
    return false;
  }
  session_.reset(session);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, stream_window},
  };
  if (nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings, std::size(settings)) != 0 ||
      nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0, connection_window) !=
          0) {
    return false;
  }
  uv_tcp_nodelay(&tcp_, 1);
  if (uv_read_start(socket(), on_alloc_cb, on_read_cb) != 0) return false;
  flush();
  return true;
}

void EchoConnection::close() noexcept {
  if (closing_) return;
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close_cb);
}

void EchoConnection::on_close_cb(uv_handle_t* handle) noexcept {
  delete static_cast<EchoConnection*>(handle->data);
}

// A protocol error from the client: send whatever nghttp2 queued (GOAWAY), then close.
void EchoConnection::fail() noexcept {
  uv_read_stop(socket());
  nghttp2_session_terminate_session(session_.get(), NGHTTP2_PROTOCOL_ERROR);
  flush();
}

EchoConnection::Stream* EchoConnection::find_stream(int32_t stream_id) noexcept {
  return static_cast<Stream*>(nghttp2_session_get_stream_user_data(session_.get(), stream_id));
}

void EchoConnection::resume(Stream& stream) noexcept {
  if (!stream.deferred) return;
  stream.deferred = false;
  nghttp2_session_resume_data(session_.get(), stream.id);
}

void EchoConnection::apply_consumed() noexcept {
  for (const auto& [stream_id, length] : consumed_) {
    if (stream_id == 0) {
      nghttp2_session_consume_connection(session_.get(), length);
    } else {
      // For a stream already closed this credits the connection window only.
      nghttp2_session_consume(session_.get(), stream_id, length);
    }
  }
  consumed_.clear();
}

// Serializes pending frames and writes them: uv_try_write first, and a uv_write for the
// rest when the socket is full. Only one uv_write is in flight; its callback resumes.
void EchoConnection::flush() noexcept {
  if (closing_ || write_in_flight_) return;
  nghttp2_session* session = session_.get();
  for (;;) {
    while (out_.size() < output_high_water) {
      const uint8_t* data = nullptr;
      ssize_t length = nghttp2_session_mem_send(session, &data);
      if (length < 0) {
        close();
        return;
      }
      if (length > 0) out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(length));
      // DATA went out through send_data(); consuming it may queue WINDOW_UPDATE frames,
      // so ask nghttp2 again.
      if (!consumed_.empty()) {
        apply_consumed();
        continue;
      }
      if (length == 0) break;
    }
    if (out_.empty()) break;
    uv_buf_t buf = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
    int written = uv_try_write(socket(), &buf, 1);
    if (written == UV_EAGAIN) written = 0;
    if (written < 0) {
      close();
      return;
    }
    out_.erase(0, static_cast<size_t>(written));
    if (out_.empty()) continue;
    // The socket is full: hand the rest to libuv and wait for its callback.
    writing_.swap(out_);
    uv_buf_t rest = uv_buf_init(writing_.data(), static_cast<unsigned>(writing_.size()));
    if (uv_write(&write_req_, socket(), &rest, 1, on_write_cb) != 0) {
      close();
      return;
    }
    write_in_flight_ = true;
    return;
  }
  if (!nghttp2_session_want_read(session) && !nghttp2_session_want_write(session)) close();
}

void EchoConnection::on_alloc_cb(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept {
  *buf = static_cast<EchoConnection*>(handle->data)->worker_.read_buffer();
}

void EchoConnection::on_read_cb(uv_stream_t* socket, ssize_t nread, const uv_buf_t* buf) noexcept {
  static_cast<EchoConnection*>(socket->data)->on_read(nread, buf);
}

void EchoConnection::on_read(ssize_t nread, const uv_buf_t* buf) noexcept {
  if (closing_) return;
  if (nread < 0) {
    close();  // EOF or a socket error.
    return;
  }
  if (nread == 0) return;
  ssize_t rv = nghttp2_session_mem_recv(session_.get(), reinterpret_cast<const uint8_t*>(buf->base),
                                        static_cast<size_t>(nread));
  apply_consumed();
  if (rv < 0) {
    fail();
    return;
  }
  flush();
}

void EchoConnection::on_write_cb(uv_write_t* req, int status) noexcept {
  static_cast<EchoConnection*>(req->handle->data)->on_write(status);
}

void EchoConnection::on_write(int status) noexcept {
  write_in_flight_ = false;
  writing_.clear();
  if (status < 0) {
    close();  // Also reached with UV_ECANCELED when close() cancelled the write.
    return;
  }
  flush();
}

const nghttp2_session_callbacks* EchoConnection::callbacks() noexcept {
  static const CallbacksPtr table = [] {
    nghttp2_session_callbacks* raw = nullptr;
    if (nghttp2_session_callbacks_new(&raw) != 0) return CallbacksPtr();
    CallbacksPtr owned(raw);
    nghttp2_session_callbacks_set_on_begin_headers_callback(raw, on_begin_headers_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(raw, on_frame_recv_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(raw, on_data_chunk_recv_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(raw, on_stream_close_cb);
    nghttp2_session_callbacks_set_send_data_callback(raw, send_data_cb);
    return owned;
  }();
  return table.get();
}

int EchoConnection::on_begin_headers_cb(nghttp2_session*, const nghttp2_frame* frame,
                                        void* user_data) noexcept {
  return static_cast<EchoConnection*>(user_data)->on_begin_headers(*frame);
}

int EchoConnection::on_begin_headers(const nghttp2_frame& frame) noexcept {
  if (frame.hd.type != NGHTTP2_HEADERS || frame.headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  worker_.count_stream();
  Stream* stream = nullptr;
  if (!spare_.empty()) {
    stream = spare_.back();
    spare_.pop_back();
  } else {
    try {
      spare_.reserve(streams_.size() + 1);  // So that on_stream_close never allocates.
      stream = &streams_.emplace_back();
    } catch (const std::bad_alloc&) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // Resets this stream only.
    }
  }
  stream->id = frame.hd.stream_id;
  nghttp2_session_set_stream_user_data(session_.get(), stream->id, stream);
  return 0;
}

int EchoConnection::on_frame_recv_cb(nghttp2_session*, const nghttp2_frame* frame,
                                     void* user_data) noexcept {
  return static_cast<EchoConnection*>(user_data)->on_frame_recv(*frame);
}

int EchoConnection::on_frame_recv(const nghttp2_frame& frame) noexcept {
  if (frame.hd.type == NGHTTP2_RST_STREAM) worker_.count_reset();
  if (frame.hd.type == NGHTTP2_DATA) worker_.count_data_in(frame.hd.length);
  if (frame.hd.type != NGHTTP2_HEADERS && frame.hd.type != NGHTTP2_DATA) return 0;
  Stream* stream = find_stream(frame.hd.stream_id);
  if (stream == nullptr) return 0;
  if (frame.hd.type == NGHTTP2_HEADERS && frame.headers.cat == NGHTTP2_HCAT_REQUEST) {
    nghttp2_data_provider provider{};
    provider.source.ptr = stream;
    provider.read_callback = read_body_cb;
    if (nghttp2_submit_response(session_.get(), stream->id, response_headers,
                                std::size(response_headers), &provider) != 0) {
      nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, stream->id,
                                NGHTTP2_INTERNAL_ERROR);
      return 0;
    }
  }
  if (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) {
    stream->request_ended = true;
    resume(*stream);
  }
  return 0;
}

int EchoConnection::on_data_chunk_recv_cb(nghttp2_session*, uint8_t, int32_t stream_id,
                                          const uint8_t* data, size_t length,
                                          void* user_data) noexcept {
  return static_cast<EchoConnection*>(user_data)->on_data_chunk_recv(stream_id, data, length);
}

int EchoConnection::on_data_chunk_recv(int32_t stream_id, const uint8_t* data,
                                       size_t length) noexcept {
  Stream* stream = find_stream(stream_id);
  try {
    if (stream == nullptr) {
      // Not ours to echo; give the window back so the connection does not stall.
      consumed_.emplace_back(stream_id, length);
      return 0;
    }
    stream->pending.append(data, length);
  } catch (const std::bad_alloc&) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  resume(*stream);
  return 0;
}

int EchoConnection::on_stream_close_cb(nghttp2_session*, int32_t stream_id, uint32_t,
                                       void* user_data) noexcept {
  return static_cast<EchoConnection*>(user_data)->on_stream_close(stream_id);
}

int EchoConnection::on_stream_close(int32_t stream_id) noexcept {
  Stream* stream = find_stream(stream_id);
  if (stream == nullptr) return 0;
  // Bytes that will never be echoed still occupy the connection window.
  if (size_t unsent = stream->pending.size(); unsent != 0) {
    try {
      consumed_.emplace_back(0, unsent);
    } catch (const std::bad_alloc&) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    stream->pending.consume(unsent);
  }
  nghttp2_session_set_stream_user_data(session_.get(), stream_id, nullptr);
  stream->id = 0;
  stream->request_ended = false;
  stream->deferred = false;
  spare_.push_back(stream);  // Reserved in on_begin_headers.
  return 0;
}

ssize_t EchoConnection::read_body_cb(nghttp2_session*, int32_t, uint8_t*, size_t length,
                                     uint32_t* data_flags, nghttp2_data_source* source,
                                     void* user_data) noexcept {
  return static_cast<EchoConnection*>(user_data)->read_body(*static_cast<Stream*>(source->ptr),
                                                            length, data_flags);
}

ssize_t EchoConnection::read_body(Stream& stream, size_t length, uint32_t* data_flags) noexcept {
  size_t n = std::min(length, stream.pending.size());
  if (n == 0 && !stream.request_ended) {
    stream.deferred = true;  // on_data_chunk_recv or END_STREAM resumes it.
    return NGHTTP2_ERR_DEFERRED;
  }
  // The payload is copied straight from |pending| in send_data(). An empty last frame is
  // made by nghttp2 itself, so it is counted here.
  if (n != 0) {
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  } else {
    worker_.count_data_out(0);
  }
  if (stream.request_ended && n == stream.pending.size()) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    if (nghttp2_submit_trailer(session_.get(), stream.id, response_trailers,
                               std::size(response_trailers)) != 0) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
  }
  return static_cast<ssize_t>(n);
}

int EchoConnection::send_data_cb(nghttp2_session*, nghttp2_frame*, const uint8_t* framehd,
                                 size_t length, nghttp2_data_source* source,
                                 void* user_data) noexcept {
  return static_cast<EchoConnection*>(user_data)->send_data(framehd, length,
                                                            *static_cast<Stream*>(source->ptr));
}

// No padding callback is installed, so a DATA frame is its header plus |length| bytes.
int EchoConnection::send_data(const uint8_t* frame_header, size_t length, Stream& stream) noexcept {
  try {
    out_.append(reinterpret_cast<const char*>(frame_header), frame_header_length);
    out_.append(reinterpret_cast<const char*>(stream.pending.data()), length);
    consumed_.emplace_back(stream.id, length);
  } catch (const std::bad_alloc&) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  stream.pending.consume(length);
  worker_.count_data_out(length);
  // Make nghttp2_session_mem_send() return so flush() can write before queuing more.
  return out_.size() >= output_high_water ? NGHTTP2_ERR_PAUSE : 0;
}

}  // namespace grelay::bench
