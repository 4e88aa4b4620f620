#include "upstream/health_check.h"

#include <uv.h>

#include "upstream/backend_session.h"
#include "upstream/endpoint.h"

namespace grelay {
namespace {

constexpr std::string_view health_path = "/grpc.health.v1.Health/Check";
// A HealthCheckResponse is a few bytes; anything far larger is not one.
constexpr size_t max_response_body = 4096;
constexpr uint64_t serving = 1;

std::string_view view(nghttp2_rcbuf* buf) noexcept {
  nghttp2_vec v = nghttp2_rcbuf_get_buf(buf);
  return {reinterpret_cast<const char*>(v.base), v.len};
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

bool get_varint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    auto byte = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return true;
  }
  return false;
}

}  // namespace

std::string encode_health_request(std::string_view service) {
  std::string message;
  if (!service.empty()) {
    message += '\x0a';  // field 1, length-delimited
    put_varint(message, service.size());
    message += service;
  }
  std::string framed(5, '\0');
  uint32_t n = static_cast<uint32_t>(message.size());
  framed[1] = static_cast<char>(n >> 24);
  framed[2] = static_cast<char>(n >> 16);
  framed[3] = static_cast<char>(n >> 8);
  framed[4] = static_cast<char>(n);
  return framed + message;
}

std::optional<uint64_t> decode_health_response(std::string_view in) {
  // A missing field is its default: UNKNOWN (0).
  uint64_t status = 0;
  while (!in.empty()) {
    uint64_t key = 0;
    if (!get_varint(in, key)) return std::nullopt;
    uint64_t field = key >> 3;
    uint64_t v = 0;
    switch (key & 7) {
      case 0:
        if (!get_varint(in, v)) return std::nullopt;
        if (field == 1) status = v;
        break;
      case 1:
        if (in.size() < 8) return std::nullopt;
        in.remove_prefix(8);
        break;
      case 2:
        if (!get_varint(in, v) || v > in.size()) return std::nullopt;
        in.remove_prefix(v);
        break;
      case 5:
        if (in.size() < 4) return std::nullopt;
        in.remove_prefix(4);
        break;
      default:
        return std::nullopt;
    }
    if (field == 0) return std::nullopt;
  }
  return status;
}

HealthVerdict judge_health_answer(const HealthAnswer& answer) {
  if (answer.error_code != NGHTTP2_NO_ERROR) {
    if (answer.error_code == h2_connection_lost) return {false, "health check: connection lost"};
    if (answer.error_code == h2_malformed_answer) {
      return {false, "health check answer is malformed (RFC 9113 section 8)"};
    }
    return {false,
            std::string("health check stream reset: ") + nghttp2_http2_strerror(answer.error_code)};
  }
  if (answer.grpc_status != "0") {
    std::string why =
        "health check answered grpc-status " +
        (answer.grpc_status.empty() ? "(none), HTTP " + answer.http_status : answer.grpc_status);
    if (!answer.grpc_message.empty()) why += " (" + answer.grpc_message + ")";
    return {false, why};
  }
  std::optional<uint64_t> status;
  if (answer.body.size() >= 5 && answer.body[0] == 0) {
    std::string_view message(answer.body);
    message.remove_prefix(5);
    status = decode_health_response(message);
  }
  if (!status) return {false, "health check answer is not a HealthCheckResponse"};
  if (*status != serving) {
    const char* names[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
    return {false, std::string("health check status ") +
                       (*status < 4 ? names[*status] : std::to_string(*status).c_str())};
  }
  return {true, "SERVING"};
}

bool HealthCheckState::finish(bool ok, bool healthy, uint64_t now_ms) noexcept {
  running_ = false;
  next_at_ms_ = now_ms + static_cast<uint64_t>(config_.interval.count());
  if (ok) {
    failures_ = 0;
    return ++successes_ >= config_.healthy_threshold || healthy;
  }
  successes_ = 0;
  return ++failures_ >= config_.unhealthy_threshold || !healthy;
}

HealthCheck::HealthCheck(Endpoint& endpoint, const HealthCheckConfig& config) noexcept
    : endpoint_(endpoint),
      config_(config),
      state_(config),
      request_(encode_health_request(config.service)) {}

HealthCheck::~HealthCheck() {
  abandon();
}

void HealthCheck::abandon() noexcept {
  cancel_wait();
  if (session_) {
    BackendSession* session = session_;
    session_ = nullptr;
    session->reset(stream_id_, *this, NGHTTP2_CANCEL);
  }
  state_.abandon();
}

void HealthCheck::maintain(uint64_t now) noexcept {
  if (state_.timed_out(now)) {
    abandon();
    finish(false,
           "health check timed out after " + std::to_string(config_.timeout.count()) + " ms");
    return;
  }
  if (!state_.due(now)) return;
  state_.start(now);
  sent_ = 0;
  answer_ = HealthAnswer{};
  endpoint_.open_stream(*this);
}

void HealthCheck::finish(bool ok, const std::string& why) noexcept {
  // Every probe counts in grelay_health_checks_total, whether or not it changes anything.
  endpoint_.count_health_check(ok);
  if (state_.finish(ok, endpoint_.healthy(), uv_now(endpoint_.context().loop))) {
    endpoint_.on_health_result(ok, why);
  }
}

void HealthCheck::on_upstream_ready(BackendSession& session) noexcept {
  session_ = &session;
  stream_id_ = 0;
  session.queue_request(*this);
}

void HealthCheck::on_submit(ClientSession& session) noexcept {
  std::string authority = endpoint_.name();
  nghttp2_nv nva[] = {
      {(uint8_t*)":method", (uint8_t*)"POST", 7, 4, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)":scheme", (uint8_t*)"http", 7, 4, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)":path", (uint8_t*)health_path.data(), 5, health_path.size(),
       NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)":authority", (uint8_t*)authority.data(), 10, authority.size(),
       NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)"content-type", (uint8_t*)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)"te", (uint8_t*)"trailers", 2, 8, NGHTTP2_NV_FLAG_NONE},
  };
  int32_t id = session.submit_request(nva, std::size(nva), this);
  if (id < 0) {
    session_ = nullptr;
    finish(false, std::string("cannot open a health check stream: ") + nghttp2_strerror(id));
    return;
  }
  stream_id_ = id;
}

void HealthCheck::on_upstream_failed(StatusCode, const std::string& why) noexcept {
  finish(false, why);
}

void HealthCheck::on_response_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value, FieldName,
                                     bool) noexcept {
  std::string_view n = view(name);
  if (n == ":status") {
    answer_.http_status = view(value);
  } else if (n == "grpc-status") {
    answer_.grpc_status = view(value);
  } else if (n == "grpc-message") {
    answer_.grpc_message = std::string(view(value).substr(0, 200));
  }
}

void HealthCheck::on_response_headers_end(bool) noexcept {}

void HealthCheck::on_response_data(const uint8_t* data, size_t len) noexcept {
  if (answer_.body.size() + len <= max_response_body)
    answer_.body.append(reinterpret_cast<const char*>(data), len);
  if (session_) session_->consume(stream_id_, len);
}

void HealthCheck::on_response_end() noexcept {}

void HealthCheck::on_upstream_close(uint32_t error_code) noexcept {
  session_ = nullptr;
  if (!state_.running()) return;
  answer_.error_code = error_code;
  HealthVerdict verdict = judge_health_answer(answer_);
  finish(verdict.serving, verdict.why);
}

ssize_t HealthCheck::read_request_body(size_t length, uint32_t* data_flags) noexcept {
  size_t left = request_.size() - sent_;
  if (left == 0) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return 0;
  }
  *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  size_t n = std::min(length, left);
  if (n == left) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

void HealthCheck::write_request_body(ChunkChain& out, size_t length) noexcept {
  out.append(reinterpret_cast<const uint8_t*>(request_.data()) + sent_, length);
  sent_ += length;
}

}  // namespace grelay
