#include "admin/admin_h2_session.h"

#include <cstring>

#include "core/percent.h"

namespace grelay {
namespace {

// Requests per connection kept at once; an admin client needs few.
constexpr uint32_t max_streams = 16;
// The largest gRPC request body kept: a HealthCheckRequest is its service name and 7 bytes.
constexpr size_t max_grpc_request = 4096;
constexpr std::string_view health_prefix = "/grpc.health.v1.Health/";

nghttp2_nv make_nv(std::string_view name, std::string_view value) noexcept {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

AdminH2Session::AdminH2Session(Handler handler, HealthSource health)
    : handler_(std::move(handler)), health_(std::move(health)) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
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
  if (n == "content-type") it->second.content_type = v;
  return 0;
}

int AdminH2Session::on_data_chunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                                  size_t len, void* user) noexcept {
  auto* self = static_cast<AdminH2Session*>(user);
  auto it = self->streams_.find(stream_id);
  if (it == self->streams_.end()) return 0;
  Stream& stream = it->second;
  // Only a gRPC call's body is read; other admin requests have none worth keeping.
  if (!std::string_view(stream.path).starts_with(health_prefix)) return 0;
  if (stream.request.size() + len > max_grpc_request) {
    stream.request_too_large = true;
    return 0;
  }
  stream.request.append(reinterpret_cast<const char*>(data), len);
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
  std::string_view path_view(stream.path);
  if (path_view.starts_with(health_prefix) && stream.method == "POST" &&
      std::string_view(stream.content_type).starts_with("application/grpc")) {
    answer_health(stream_id, stream, path_view.substr(health_prefix.size()));
    return;
  }
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

void AdminH2Session::answer_grpc_error(int32_t stream_id, int status,
                                       std::string_view message) noexcept {
  std::string code = std::to_string(status);
  std::string text = percent_encode_grpc_message(message);
  nghttp2_nv headers[] = {make_nv(":status", "200"), make_nv("content-type", "application/grpc"),
                          make_nv("grpc-status", code), make_nv("grpc-message", text)};
  nghttp2_submit_response(session_, stream_id, headers, 4, nullptr);
}

void AdminH2Session::answer_health(int32_t stream_id, Stream& stream,
                                   std::string_view method) noexcept {
  // gRPC status codes used here.
  constexpr int unimplemented = 12, internal = 13, not_found = 5, resource_exhausted = 8;
  bool watch = method == "Watch";
  if (!watch && method != "Check") {
    answer_grpc_error(stream_id, unimplemented, "grpc.health.v1.Health has Check and Watch");
    return;
  }
  if (stream.request_too_large) {
    answer_grpc_error(stream_id, resource_exhausted, "health request too large");
    return;
  }
  std::string_view message;
  std::string service;
  if (!take_single_grpc_message(stream.request, message)) {
    answer_grpc_error(stream_id, internal, "expected one uncompressed HealthCheckRequest");
    return;
  }
  if (!parse_health_check_request(message, service)) {
    answer_grpc_error(stream_id, internal, "malformed HealthCheckRequest");
    return;
  }
  ServingStatus status = health_of(service, health_());
  if (!watch && status == ServingStatus::service_unknown) {
    answer_grpc_error(stream_id, not_found, "unknown service '" + service + "'");
    return;
  }
  // Check answers once; Watch sends the status now and again at each change (an unknown
  // service stays SERVICE_UNKNOWN), until the client cancels or the process exits.
  stream.grpc = true;
  stream.watching = watch;
  stream.service = std::move(service);
  stream.watched = status;
  stream.response.body = health_check_response_frame(stream.watched);
  nghttp2_nv headers[] = {make_nv(":status", "200"), make_nv("content-type", "application/grpc")};
  nghttp2_data_provider body;
  body.source.ptr = &stream;
  body.read_callback = read_body;
  nghttp2_submit_response(session_, stream_id, headers, 2, &body);
}

void AdminH2Session::health_changed() noexcept {
  for (auto& [id, stream] : streams_) {
    if (!stream.watching) continue;
    ServingStatus now = health_of(stream.service, health_());
    if (now == stream.watched) continue;
    stream.watched = now;
    stream.response.body += health_check_response_frame(now);
    if (stream.deferred) {
      stream.deferred = false;
      nghttp2_session_resume_data(session_, id);
    }
  }
  drain_output();
}

ssize_t AdminH2Session::read_body(nghttp2_session* session, int32_t stream_id, uint8_t* buf,
                                  size_t length, uint32_t* data_flags, nghttp2_data_source* source,
                                  void*) noexcept {
  auto* stream = static_cast<Stream*>(source->ptr);
  const std::string& body = stream->response.body;
  size_t n = std::min(length, body.size() - stream->sent);
  std::memcpy(buf, body.data() + stream->sent, n);
  stream->sent += n;
  if (stream->sent < body.size()) return static_cast<ssize_t>(n);
  if (stream->watching) {
    if (n > 0) return static_cast<ssize_t>(n);
    stream->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  if (stream->grpc) {
    // The status goes in trailers, which end the stream.
    *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    nghttp2_nv trailers[] = {make_nv("grpc-status", stream->grpc_status)};
    nghttp2_submit_trailer(session, stream_id, trailers, 1);
  }
  return static_cast<ssize_t>(n);
}

}  // namespace grelay
