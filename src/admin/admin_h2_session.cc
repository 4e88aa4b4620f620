#include "admin/admin_h2_session.h"

#include <cstring>

namespace grelay {
namespace {

// Requests per connection kept at once; an admin client needs few.
constexpr uint32_t max_streams = 16;

}  // namespace

AdminH2Session::AdminH2Session(Handler handler) : handler_(std::move(handler)) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  nghttp2_session_server_new(&session_, cbs, this);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 1);
}

AdminH2Session::~AdminH2Session() {
  nghttp2_session_del(session_);
}

bool AdminH2Session::receive(const uint8_t* data, size_t len) noexcept {
  ssize_t rc = nghttp2_session_mem_recv(session_, data, len);
  drain_output();
  return rc >= 0;
}

void AdminH2Session::drain_output() noexcept {
  for (;;) {
    const uint8_t* out = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &out);
    if (n <= 0) return;
    output_.append(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  }
}

std::string AdminH2Session::take_output() noexcept {
  drain_output();
  return std::move(output_);
}

bool AdminH2Session::finished() const noexcept {
  return !nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_);
}

int AdminH2Session::on_begin_headers(nghttp2_session*, const nghttp2_frame* frame,
                                     void* user) noexcept {
  auto* self = static_cast<AdminH2Session*>(user);
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    self->streams_[frame->hd.stream_id];
  }
  return 0;
}

int AdminH2Session::on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                              size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                              void* user) noexcept {
  auto* self = static_cast<AdminH2Session*>(user);
  auto it = self->streams_.find(frame->hd.stream_id);
  if (it == self->streams_.end()) return 0;
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":method") it->second.method = v;
  if (n == ":path") it->second.path = v;
  return 0;
}

int AdminH2Session::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame,
                                  void* user) noexcept {
  auto* self = static_cast<AdminH2Session*>(user);
  bool request_end = (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
                     (frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
  if (request_end) self->answer(frame->hd.stream_id);
  return 0;
}

int AdminH2Session::on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t,
                                    void* user) noexcept {
  static_cast<AdminH2Session*>(user)->streams_.erase(stream_id);
  return 0;
}

void AdminH2Session::answer(int32_t stream_id) noexcept {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  Stream& stream = it->second;
  std::string path = stream.path.substr(0, stream.path.find('?'));
  stream.response = handler_(stream.method, path);
  std::string status = std::to_string(stream.response.status);
  std::string length = std::to_string(stream.response.body.size());
  auto nv = [](const char* name, const std::string& value) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())),
                      std::strlen(name), value.size(), NGHTTP2_NV_FLAG_NONE};
  };
  nghttp2_nv headers[] = {nv(":status", status), nv("content-type", stream.response.content_type),
                          nv("content-length", length)};
  nghttp2_data_provider body;
  body.source.ptr = &stream;
  body.read_callback = read_body;
  nghttp2_submit_response(session_, stream_id, headers, 3, &body);
}

ssize_t AdminH2Session::read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                  uint32_t* data_flags, nghttp2_data_source* source,
                                  void*) noexcept {
  auto* stream = static_cast<Stream*>(source->ptr);
  const std::string& body = stream->response.body;
  size_t n = std::min(length, body.size() - stream->sent);
  std::memcpy(buf, body.data() + stream->sent, n);
  stream->sent += n;
  if (stream->sent == body.size()) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

}  // namespace grelay
