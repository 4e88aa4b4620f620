#include "web/web_stream.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/block_cache.h"
#include "core/grpc_frame.h"
#include "core/log.h"
#include "core/percent.h"
#include "core/small_vector.h"

namespace grelay {

namespace {

// Request fields the web protocols use themselves: a preflight may always ask for them.
constexpr std::string_view protocol_request_fields[] = {"content-type",
                                                        "x-grpc-web",
                                                        "x-user-agent",
                                                        "grpc-timeout",
                                                        "connect-protocol-version",
                                                        "connect-timeout-ms",
                                                        "connect-content-encoding",
                                                        "connect-accept-encoding",
                                                        "content-encoding",
                                                        "accept-encoding"};

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool starts_with_grpc(std::string_view ct) noexcept {
  constexpr std::string_view grpc = "application/grpc";
  return ct.size() >= grpc.size() && iequals(ct.substr(0, grpc.size()), grpc);
}

std::string_view view(const nghttp2_nv& nv, bool name) noexcept {
  return name ? std::string_view(reinterpret_cast<const char*>(nv.name), nv.namelen)
              : std::string_view(reinterpret_cast<const char*>(nv.value), nv.valuelen);
}

void append_prefix(ChunkChain& out, uint8_t flags, size_t length) {
  uint8_t p[5] = {flags, static_cast<uint8_t>(length >> 24), static_cast<uint8_t>(length >> 16),
                  static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length)};
  out.append(p, sizeof(p));
}

using WebStreamBlocks = BlockCache<sizeof(WebStream), 1024>;

}  // namespace

// WebStream is final, so every one is exactly sizeof(WebStream) bytes.
void* WebStream::operator new(size_t) {
  return WebStreamBlocks::take();
}

void WebStream::operator delete(void* p) noexcept {
  WebStreamBlocks::give(p);
}

WebStream::WebStream(WebHost& host, Downstream& outer, int32_t stream_id) noexcept
    : host_(host),
      outer_(outer),
      id_(stream_id),
      decoded_(host.pool()),
      held_request_(host.pool()),
      out_(host.pool()),
      unary_answer_(host.pool()) {
  listener_ = &outer.listener();
  set_tag(outer.tag());
}

WebStream::~WebStream() {
  host_.flush_queue().remove(*this);
}

CallProtocol WebStream::protocol() const noexcept {
  switch (protocol_) {
    case WebProtocol::grpc_web:
      return CallProtocol::grpc_web;
    case WebProtocol::grpc_web_text:
      return CallProtocol::grpc_web_text;
    case WebProtocol::connect_unary:
    case WebProtocol::connect_stream:
      break;
  }
  return CallProtocol::connect;
}

std::string_view WebStream::lasting(const nghttp2_nv& nv, bool name) {
  // A field the Call keeps (NvArray::add_kept) lives until the Call ends, which is after this
  // stream is done with it; a relay-made one lives for the send_*() call only.
  const uint8_t kept = name ? NGHTTP2_NV_FLAG_NO_COPY_NAME : NGHTTP2_NV_FLAG_NO_COPY_VALUE;
  if (nv.flags & kept) return view(nv, name);
  return keep(view(nv, name));
}

const std::string& WebStream::keep(std::string_view s) {
  return kept_.emplace_front(s);
}

// --- the request ----------------------------------------------------------------------------

void WebStream::on_request_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value, FieldName f,
                                  std::string_view n, std::string_view v) noexcept {
  // Kept as the Call would keep them: past the listener's metadata limit only the size is
  // counted, and the Call the fields are replayed to refuses the request as it would have.
  header_bytes_ += n.size() + v.size() + 32;
  if (header_bytes_ > listener().max_request_metadata + n.size() + v.size() + 32) return;
  fields_.add(name, value, n, v);
  switch (f) {
    case FieldName::method:
      method_ = v;
      break;
    case FieldName::path:
      path_ = v;
      break;
    case FieldName::authority:
      authority_ = v;
      break;
    case FieldName::host:
      if (authority_.empty()) authority_ = v;
      break;
    case FieldName::content_type:
      content_type_ = v;
      break;
    default:
      if (n == "origin") origin_ = v;
      break;
  }
}

void WebStream::on_request_headers_end() noexcept {
  if (mode_ == Mode::reading) dispatch();
}

std::optional<WebContentType> web_call_kind(std::string_view method,
                                            std::string_view content_type) noexcept {
  if (method != "POST") return std::nullopt;
  std::optional<WebContentType> web = parse_web_content_type(content_type);
  // A Connect unary call names its codec alone (application/proto), so only the protocol's
  // codecs count: a form or text/plain POST, which a page on any origin may send without a
  // preflight, is never taken for a call.
  if (web && web->protocol == WebProtocol::connect_unary && web->codec != "proto" &&
      web->codec != "json") {
    return std::nullopt;
  }
  return web;
}

void WebStream::dispatch() noexcept {
  const std::optional<WebContentType> web = web_call_kind(method_, content_type_);
  if (!origin_.empty()) {
    cors_ = host_.cors_for(listener(), path_, authority_, outer_.peer_identity());
    if (cors_) {
      for (const std::string& pattern : cors_->allow_origins) {
        if (cors_origin_matches(pattern, origin_)) {
          origin_allowed_ = true;
          break;
        }
      }
    }
  }
  if (method_ == "OPTIONS" && !origin_.empty() && fields_.has("access-control-request-method")) {
    answer_preflight(origin_);
    return;
  }
  if (web_call_kind(method_, content_type_)) {
    protocol_ = web->protocol;
    codec_ = web->codec;
    start_web_call();
    return;
  }
  // What is no web call is not this listener's to serve over HTTP/1.1 (WebFront hands it to a
  // Call on HTTP/2).
  if (starts_with_grpc(content_type_)) {
    answer_text("505",
                "gRPC needs HTTP/2; over HTTP/1.1 this listener serves gRPC-Web and "
                "Connect calls");
  } else if (method_ != "POST") {
    answer_text("405", "web calls are POST requests");
  } else {
    answer_text("415", "not a gRPC-Web or Connect content-type");
  }
}

void WebStream::start_web_call() noexcept {
  mode_ = Mode::web;
  call_ = host_.new_grpc_call(*this, id_);
  grpc_content_type_ = "application/grpc+";
  grpc_content_type_.append(codec_);
  const bool connect =
      protocol_ == WebProtocol::connect_unary || protocol_ == WebProtocol::connect_stream;
  bool bad_timeout = false;
  for (const HeaderList::Field& f : fields_.fields()) {
    std::string_view n = f.name;
    std::string_view v = f.value;
    const FieldName kind = classify_field(n);
    if (kind == FieldName::content_type) {
      call_->on_request_header(nullptr, nullptr, kind, n, grpc_content_type_);
      continue;
    }
    if (n == "content-length") {
      // The body the Call gets is not the one the client sent (prefix, base64). A Connect
      // unary body that says its length is framed as it streams; its length must fit the
      // prefix's 32 bits.
      const bool digits =
          !v.empty() && v.size() <= 10 &&
          std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
      content_length_ = -1;
      if (digits) {
        int64_t length = 0;
        for (char c : v)
          length = length * 10 + (c - '0');
        if (length <= int64_t{UINT32_MAX}) content_length_ = length;
      }
      continue;
    }
    if (n == "x-grpc-web" || n == "connect-protocol-version") continue;
    if (connect) {
      if (n == "connect-timeout-ms") {
        // The first one counts: the Call keeps a view of grpc_timeout_.
        if (!grpc_timeout_.empty() || bad_timeout) continue;
        std::optional<std::string> t = connect_timeout_to_grpc_timeout(v);
        if (!t) {
          bad_timeout = true;
          continue;
        }
        grpc_timeout_ = std::move(*t);
        call_->on_request_header(nullptr, nullptr, FieldName::grpc_timeout, "grpc-timeout",
                                 grpc_timeout_);
        continue;
      }
      if (n == "grpc-timeout") continue;
      const bool unary = protocol_ == WebProtocol::connect_unary;
      if ((unary && n == "content-encoding") || (!unary && n == "connect-content-encoding")) {
        if (v != "identity") {
          request_encoding_ = v;
          call_->on_request_header(nullptr, nullptr, FieldName::other, "grpc-encoding", v);
        }
        continue;
      }
      if ((unary && n == "accept-encoding") || (!unary && n == "connect-accept-encoding")) {
        call_->on_request_header(nullptr, nullptr, FieldName::other, "grpc-accept-encoding", v);
        continue;
      }
    } else if (n == "accept-encoding") {
      // Asks for an HTTP content-coding of the response, which the relay does not apply.
      continue;
    }
    call_->on_request_header(f.name_buf, f.value_buf, kind, n, v);
  }
  ServerStreamHandler* call = call_;
  if (bad_timeout) {
    fail(StatusCode::invalid_argument, "invalid connect-timeout-ms");
    return;
  }
  call->on_request_headers_end();
}

void WebStream::on_request_data(const uint8_t* data, size_t len) noexcept {
  if (mode_ != Mode::web || !call_) {
    // The answer does not depend on a body: the client may send the rest.
    outer_.give_credit(id_, len, false);
    return;
  }
  switch (protocol_) {
    case WebProtocol::grpc_web:
    case WebProtocol::connect_stream:
      request_frames_.advance(data, len);
      if (request_frames_.reserved_flags()) {
        outer_.give_credit(id_, len, false);
        fail(StatusCode::invalid_argument, "request message with reserved flags set");
        return;
      }
      call_->on_request_data(data, len);
      return;
    case WebProtocol::grpc_web_text: {
      encoded_owed_ += len;
      if (!decoder_.decode(data, len, decoded_)) {
        fail(StatusCode::internal, "malformed grpc-web-text request body (base64)");
        return;
      }
      decoded_owed_ += decoded_.size();
      forward_chain(decoded_);
      return;
    }
    case WebProtocol::connect_unary:
      if (content_length_ >= 0) {
        if (!prefix_sent_) send_prefix(static_cast<size_t>(content_length_));
        if (call_) call_->on_request_data(data, len);
        return;
      }
      if (held_request_.size() + len > listener().max_web_unary_body) {
        outer_.give_credit(id_, len, false);
        fail(StatusCode::resource_exhausted,
             "request message over the listener's max_web_unary_body (" +
                 std::to_string(listener().max_web_unary_body) + " bytes)");
        return;
      }
      held_request_.append(data, len);
      // Held whole until it ends: the client gets the stream's window for all of it, while the
      // connection's window (given back once the Call takes the bytes) bounds what all its
      // streams hold.
      stream_credited_ += len;
      outer_.give_stream_credit(id_, len);
      return;
  }
}

void WebStream::send_prefix(size_t length) noexcept {
  prefix_sent_ = true;
  // An empty message is never compressed.
  const uint8_t flags = request_encoding_.empty() || length == 0 ? 0 : 1;
  const uint8_t p[5] = {flags, static_cast<uint8_t>(length >> 24),
                        static_cast<uint8_t>(length >> 16), static_cast<uint8_t>(length >> 8),
                        static_cast<uint8_t>(length)};
  synthetic_credit_ += sizeof(p);
  call_->on_request_data(p, sizeof(p));
}

void WebStream::forward_chain(ChunkChain& chain) noexcept {
  iovec iov[16];
  while (!chain.empty() && call_) {
    const int n = chain.peek(iov, 16);
    size_t taken = 0;
    for (int i = 0; i < n && call_; ++i) {
      const auto* bytes = static_cast<const uint8_t*>(iov[i].iov_base);
      // Decoded grpc-web-text is framed; a Connect unary body is one message's bytes.
      if (protocol_ == WebProtocol::grpc_web_text) {
        request_frames_.advance(bytes, iov[i].iov_len);
        if (request_frames_.reserved_flags()) {
          chain.clear();
          fail(StatusCode::invalid_argument, "request message with reserved flags set");
          return;
        }
      }
      call_->on_request_data(bytes, iov[i].iov_len);
      taken += iov[i].iov_len;
    }
    chain.drain(taken);
  }
  chain.clear();
}

void WebStream::on_request_end() noexcept {
  if (mode_ != Mode::web || !call_) return;
  if (protocol_ == WebProtocol::grpc_web_text && !decoder_.at_group_boundary()) {
    fail(StatusCode::internal, "grpc-web-text request body ends inside a base64 group");
    return;
  }
  if (protocol_ == WebProtocol::connect_unary && !prefix_sent_) {
    send_prefix(held_request_.size());
    forward_chain(held_request_);
    if (!call_) return;
  }
  call_->on_request_end();
}

void WebStream::give_credit(int32_t, size_t n, bool peer_ended) noexcept {
  if (protocol_ == WebProtocol::grpc_web_text) {
    if (n == 0) return;
    // Decoded bytes stand for about 4/3 as many sent; the last credit settles the rest.
    size_t encoded = n >= decoded_owed_
                         ? encoded_owed_
                         : static_cast<size_t>(static_cast<unsigned __int128>(encoded_owed_) * n /
                                               decoded_owed_);
    decoded_owed_ -= std::min(n, decoded_owed_);
    encoded_owed_ -= encoded;
    outer_.give_credit(id_, encoded, peer_ended);
    return;
  }
  const size_t synthetic = std::min(n, synthetic_credit_);
  synthetic_credit_ -= synthetic;
  n -= synthetic;
  // A held Connect unary body had its stream window already: the connection's is left.
  const size_t held = std::min(n, stream_credited_);
  stream_credited_ -= held;
  n -= held;
  if (held > 0) outer_.give_credit(id_, held, true);
  if (n > 0) outer_.give_credit(id_, n, peer_ended);
}

void WebStream::release_request_credit() noexcept {
  // Client bytes this stream holds or dropped, which no Call will credit: a held Connect unary
  // body (its stream window was given already) and grpc-web-text not decoded or not taken.
  if (stream_credited_ > 0) {
    held_request_.clear();
    outer_.give_credit(id_, stream_credited_, true);
    stream_credited_ = 0;
  }
  if (encoded_owed_ > 0) {
    decoded_.clear();
    outer_.give_credit(id_, encoded_owed_, false);
    encoded_owed_ = 0;
    decoded_owed_ = 0;
  }
}

// --- answers made here ------------------------------------------------------------------------

void WebStream::answer_preflight(std::string_view origin) noexcept {
  mode_ = Mode::own;
  host_.count_preflight(outer_);
  if (!origin_allowed_) {
    answer_text("403", "origin not allowed by this listener's or route's cors");
    return;
  }
  std::string_view method = fields_.get("access-control-request-method");
  if (method != "POST") {
    answer_text("403", "cors preflight: only POST is allowed");
    return;
  }
  // Every field the page asks to send must be one the protocols use or one configured.
  std::string_view asked = fields_.get("access-control-request-headers");
  const bool any_field = std::find(cors_->allow_headers.begin(), cors_->allow_headers.end(), "*") !=
                         cors_->allow_headers.end();
  while (!asked.empty() && !any_field) {
    size_t comma = asked.find(',');
    std::string_view one = trim(asked.substr(0, comma));
    asked = comma == std::string_view::npos ? std::string_view() : asked.substr(comma + 1);
    if (one.empty()) continue;
    bool ok = false;
    for (std::string_view known : protocol_request_fields)
      ok = ok || iequals(one, known);
    for (const std::string& allowed : cors_->allow_headers)
      ok = ok || iequals(one, allowed);
    if (!ok) {
      answer_text("403", "cors preflight: request header '" + std::string(one) +
                             "' is not in allow_headers");
      return;
    }
  }
  NvArray nva;
  nva.add(":status", "204");
  const bool star = !cors_->allow_credentials &&
                    std::find(cors_->allow_origins.begin(), cors_->allow_origins.end(), "*") !=
                        cors_->allow_origins.end();
  nva.add("access-control-allow-origin", star ? std::string_view("*") : origin);
  nva.add("vary",
          star ? "access-control-request-headers" : "origin, access-control-request-headers");
  nva.add("access-control-allow-methods", "POST");
  std::string_view requested = fields_.get("access-control-request-headers");
  if (!requested.empty()) nva.add("access-control-allow-headers", requested);
  const std::string& age = keep(std::to_string(cors_->max_age.count() / 1000));
  nva.add("access-control-max-age", age);
  if (cors_->allow_credentials) nva.add("access-control-allow-credentials", "true");
  answer_ = Answer::done;
  outer_.send_response(id_, nva.data(), nva.size(), nullptr);
}

void WebStream::answer_text(const char* status, std::string_view reason) noexcept {
  mode_ = Mode::own;
  out_.clear();
  out_.append(reason.data(), reason.size());
  out_.append("\n", 1);
  call_ended_ = true;
  NvArray nva;
  nva.add(":status", status);
  nva.add("content-type", "text/plain; charset=utf-8");
  const std::string& length = keep(std::to_string(out_.size()));
  nva.add("content-length", length);
  add_cors(nva);
  answer_ = Answer::streaming;
  outer_.send_response(id_, nva.data(), nva.size(), this);
}

void WebStream::fail(StatusCode status, std::string_view message) noexcept {
  // The call is over for the relay: its backend stream is cancelled and it is forgotten.
  if (ServerStreamHandler* call = call_) {
    call_ = nullptr;
    call->on_downstream_close(NGHTTP2_CANCEL);
  }
  release_request_credit();
  mode_ = Mode::own;
  if (answer_ != Answer::none) {
    // Headers went out: the client's stream can only be cut.
    cut_ = true;
    outer_.resume(id_);
    return;
  }
  const std::string encoded = percent_encode_grpc_message(message);
  char code[4];
  std::snprintf(code, sizeof(code), "%d", static_cast<int>(status));
  if (protocol_ == WebProtocol::connect_unary) {
    std::string json;
    append_connect_error_json(json, status, message);
    out_.clear();
    out_.append(json.data(), json.size());
    call_ended_ = true;
    char http[4];
    std::snprintf(http, sizeof(http), "%d", connect_http_status(status));
    NvArray nva;
    nva.add("content-type", "application/json");
    const std::string& length = keep(std::to_string(out_.size()));
    nva.add("content-length", length);
    send_headers(keep(http).c_str(), nva, true);
    return;
  }
  if (protocol_ == WebProtocol::connect_stream) {
    // A Connect stream's status is in its end-of-stream message, after HTTP 200.
    std::string json;
    append_connect_end_stream_json(json, status, message, nullptr, 0);
    append_prefix(out_, 0x02, json.size());
    out_.append(json.data(), json.size());
    call_ended_ = true;
    NvArray nva;
    nva.add("content-type", keep(web_response_content_type(protocol_, codec_)));
    send_headers("200", nva, true);
    return;
  }
  // gRPC-Web: Trailers-Only, as headers.
  NvArray nva;
  nva.add("content-type", keep(web_response_content_type(protocol_, codec_)));
  nva.add("grpc-status", keep(code));
  if (!encoded.empty()) nva.add("grpc-message", keep(encoded));
  send_headers("200", nva, false);
}

void WebStream::add_cors(NvArray& nva) noexcept {
  if (!origin_allowed_) {
    // The answer depends on the origin all the same: a cache must not hand it to another.
    if (cors_) nva.add_kept("vary", "origin");
    return;
  }
  const bool star = !cors_->allow_credentials &&
                    std::find(cors_->allow_origins.begin(), cors_->allow_origins.end(), "*") !=
                        cors_->allow_origins.end();
  nva.add_kept("access-control-allow-origin", star ? std::string_view("*") : origin_);
  if (!star) nva.add_kept("vary", "origin");
  if (cors_->allow_credentials) nva.add_kept("access-control-allow-credentials", "true");
  std::string expose = "grpc-status, grpc-message, grpc-status-details-bin";
  for (const std::string& h : cors_->expose_headers) {
    expose += ", ";
    expose += h;
    // A Connect unary answer carries trailers as trailer- fields.
    if (protocol_ == WebProtocol::connect_unary) {
      expose += ", trailer-";
      expose += h;
    }
  }
  nva.add_kept("access-control-expose-headers", keep(expose));
}

void WebStream::send_headers(const char* status, NvArray& fields, bool body) noexcept {
  NvArray nva;
  nva.add(":status", status);
  for (size_t i = 0; i < fields.size(); ++i) {
    const nghttp2_nv& nv = fields.data()[i];
    nva.add_kept(view(nv, true), view(nv, false));
  }
  add_cors(nva);
  answer_ = body ? Answer::streaming : Answer::done;
  outer_.send_response(id_, nva.data(), nva.size(), body ? this : nullptr);
}

// --- the Call's answer ------------------------------------------------------------------------

int WebStream::send_response(int32_t, const nghttp2_nv* nva, size_t nvlen,
                             ServerStreamHandler* body) noexcept {
  // The Call's fields are its own until it ends, but a relay-made answer's are not: copy.
  for (size_t i = 0; i < nvlen; ++i) {
    response_headers_.add(nullptr, nullptr, lasting(nva[i], true), lasting(nva[i], false));
  }
  trailers_only_ = body == nullptr;
  if (protocol_ == WebProtocol::connect_unary) {
    // The status decides the HTTP status and the body: collect the whole answer first.
    if (trailers_only_) {
      call_ended_ = true;
      finish_connect_unary();
    } else {
      host_.flush_queue().add(*this);
    }
    return 0;
  }
  NvArray out;
  for (const HeaderList::Field& f : response_headers_.fields()) {
    if (f.name == ":status") continue;
    if (f.name == "content-type") {
      out.add_kept("content-type", keep(web_response_content_type(protocol_, codec_)));
      continue;
    }
    if (protocol_ == WebProtocol::connect_stream) {
      // Trailers-Only: the status goes in the end-of-stream message, the rest as headers.
      if (f.name == "grpc-status" || f.name == "grpc-message" ||
          f.name == "grpc-status-details-bin")
        continue;
      if (f.name == "grpc-encoding") {
        out.add_kept("connect-content-encoding", f.value);
        continue;
      }
      if (f.name == "grpc-accept-encoding") {
        out.add_kept("connect-accept-encoding", f.value);
        continue;
      }
    }
    out.add_kept(f.name, f.value);
  }
  std::string_view status = response_headers_.get(":status");
  if (protocol_ == WebProtocol::connect_stream) {
    if (trailers_only_) {
      // A Trailers-Only answer's fields are trailers: they go in the end-of-stream message.
      call_ended_ = true;
      append_end(response_headers_);
      NvArray head;
      head.add_kept("content-type", keep(web_response_content_type(protocol_, codec_)));
      send_headers("200", head, true);
      return 0;
    }
    send_headers("200", out, true);
    return 0;
  }
  send_headers(keep(status.empty() ? "200" : status).c_str(), out, !trailers_only_);
  return 0;
}

int WebStream::send_trailers(int32_t, const nghttp2_nv* nva, size_t nvlen) noexcept {
  for (size_t i = 0; i < nvlen; ++i) {
    response_trailers_.add(nullptr, nullptr, lasting(nva[i], true), lasting(nva[i], false));
  }
  return 0;
}

void WebStream::resume(int32_t) noexcept {
  call_waiting_ = false;
  if (protocol_ == WebProtocol::connect_unary) {
    host_.flush_queue().add(*this);
    return;
  }
  if (answer_ == Answer::streaming) outer_.resume(id_);
}

void WebStream::flush_now() noexcept {
  // Connect unary: the Call's whole answer, as it arrives.
  while (call_ && !call_ended_ && !call_waiting_) {
    const size_t before = unary_answer_.size();
    pull_from_call(64 * 1024);
    if (cut_) {
      cut_ = false;
      fail(StatusCode::internal, response_frames_.reserved_flags()
                                     ? "the backend's answer has a message with reserved flags"
                                     : "the backend's answer ended inside a message");
      return;
    }
    if (unary_answer_.size() > listener().max_web_unary_body + 5u) {
      fail(StatusCode::resource_exhausted,
           "response message over the listener's max_web_unary_body (" +
               std::to_string(listener().max_web_unary_body) + " bytes)");
      return;
    }
    if (unary_answer_.size() == before && !call_ended_) break;
  }
  if (call_ended_ && answer_ == Answer::none) finish_connect_unary();
}

void WebStream::pull_from_call(size_t length) noexcept {
  ResponsePull pull = call_->pull_response(length);
  switch (pull.kind) {
    case ResponsePull::Kind::wait:
      call_waiting_ = true;
      return;
    case ResponsePull::Kind::cut:
      cut_ = true;
      return;
    case ResponsePull::Kind::data:
      break;
  }
  if (pull.length > 0) {
    ChunkChain& sink = protocol_ == WebProtocol::connect_unary ? unary_answer_ : out_;
    ChunkChain raw(host_.pool());
    call_->write_response_body(raw, pull.length);
    iovec iov[16];
    while (!raw.empty()) {
      const int n = raw.peek(iov, 16);
      size_t taken = 0;
      for (int i = 0; i < n; ++i) {
        const auto* bytes = static_cast<const uint8_t*>(iov[i].iov_base);
        response_frames_.advance(bytes, iov[i].iov_len);
        if (protocol_ == WebProtocol::grpc_web_text) encoder_.encode(bytes, iov[i].iov_len, sink);
        taken += iov[i].iov_len;
      }
      if (protocol_ == WebProtocol::grpc_web_text) {
        raw.drain(taken);
      } else {
        raw.move_to(sink, taken);
      }
    }
    // A backend frame with a flag the web protocols give the server's last frame would end
    // the client's stream with fields of the backend's making: the answer is cut instead.
    if (response_frames_.reserved_flags()) {
      GRELAY_LOG_DEBUG("stream %d: backend message with reserved flags; cutting the answer", id_);
      cut_ = true;
      return;
    }
  }
  // Each pull's text is a base64 piece of its own: a streamed message reaches the client
  // whole, not held back by a group that the next message would complete.
  if (protocol_ == WebProtocol::grpc_web_text) encoder_.flush(out_);
  if (!pull.end) return;
  call_ended_ = true;
  if (protocol_ == WebProtocol::connect_unary) return;
  append_end(response_trailers_);
}

void WebStream::append_end(const HeaderList& trailers) noexcept {
  SmallVector<WebField, 16> fields;
  std::string_view status_text, message, details;
  for (const HeaderList::Field& f : trailers.fields()) {
    if (f.name.empty() || f.name[0] == ':') continue;
    if (f.name == "content-type") continue;
    if (protocol_ == WebProtocol::connect_stream) {
      if (f.name == "grpc-status") {
        status_text = f.value;
        continue;
      }
      if (f.name == "grpc-message") {
        message = f.value;
        continue;
      }
      if (f.name == "grpc-status-details-bin") {
        details = f.value;
        continue;
      }
    }
    fields.push_back({f.name, f.value});
  }
  if (protocol_ == WebProtocol::connect_stream) {
    // No grpc-status at all reads as UNKNOWN, as gRPC clients read it.
    const StatusCode status = status_from_grpc_status(status_text);
    std::string json;
    append_connect_end_stream_json(json, status, percent_decode_grpc_message(message),
                                   fields.data(), fields.size(), details);
    append_prefix(out_, 0x02, json.size());
    out_.append(json.data(), json.size());
    return;
  }
  if (protocol_ == WebProtocol::grpc_web_text) {
    ChunkChain frame(host_.pool());
    append_grpc_web_trailers(frame, fields.data(), fields.size());
    iovec iov[16];
    const int n = frame.peek(iov, 16);
    for (int i = 0; i < n; ++i)
      encoder_.encode(static_cast<const uint8_t*>(iov[i].iov_base), iov[i].iov_len, out_);
    encoder_.flush(out_);
    return;
  }
  append_grpc_web_trailers(out_, fields.data(), fields.size());
}

void WebStream::finish_connect_unary() noexcept {
  host_.flush_queue().remove(*this);
  const HeaderList& trailers = trailers_only_ ? response_headers_ : response_trailers_;
  StatusCode status = status_from_grpc_status(trailers.get("grpc-status"));
  std::string message = percent_decode_grpc_message(trailers.get("grpc-message"));
  // The one message of the answer, without its prefix.
  uint8_t prefix[5] = {};
  size_t length = 0;
  if (status == StatusCode::ok) {
    if (unary_answer_.size() < 5 || unary_answer_.copy_out(prefix, 5) != 5 ||
        (length = (size_t{prefix[1]} << 24) | (size_t{prefix[2]} << 16) | (size_t{prefix[3]} << 8) |
                  prefix[4],
         unary_answer_.size() != 5 + length)) {
      status = StatusCode::internal;
      message = unary_answer_.empty() ? "the backend answered no message"
                                      : "the backend answered other than one message";
    }
  }
  NvArray nva;
  for (const HeaderList::Field& f : response_headers_.fields()) {
    if (f.name[0] == ':' || f.name == "content-type" || f.name == "grpc-status" ||
        f.name == "grpc-message" || f.name == "grpc-status-details-bin" ||
        f.name == "grpc-encoding" || f.name == "content-length")
      continue;
    if (f.name == "grpc-accept-encoding") {
      nva.add_kept("accept-encoding", f.value);
      continue;
    }
    nva.add_kept(f.name, f.value);
  }
  if (!trailers_only_) {
    for (const HeaderList::Field& f : response_trailers_.fields()) {
      if (f.name == "grpc-status" || f.name == "grpc-message" ||
          f.name == "grpc-status-details-bin")
        continue;
      nva.add_kept(keep("trailer-" + std::string(f.name)), f.value);
    }
  }
  out_.clear();
  if (status == StatusCode::ok) {
    unary_answer_.drain(5);
    if (prefix[0] & 1) {
      std::string_view encoding = response_headers_.get("grpc-encoding");
      nva.add_kept("content-encoding", encoding.empty() ? std::string_view("identity") : encoding);
    }
    out_ = std::move(unary_answer_);
    unary_answer_ = ChunkChain(host_.pool());
    nva.add_kept("content-type", keep(web_response_content_type(protocol_, codec_)));
    nva.add_kept("content-length", keep(std::to_string(out_.size())));
    call_ended_ = true;
    send_headers("200", nva, true);
    return;
  }
  unary_answer_.clear();
  std::string json;
  append_connect_error_json(json, status, message, trailers.get("grpc-status-details-bin"));
  out_.append(json.data(), json.size());
  char http[4];
  std::snprintf(http, sizeof(http), "%d", connect_http_status(status));
  nva.add_kept("content-type", "application/json");
  nva.add_kept("content-length", keep(std::to_string(out_.size())));
  call_ended_ = true;
  send_headers(keep(http).c_str(), nva, true);
}

// --- the client pulls the answer --------------------------------------------------------------

ResponsePull WebStream::pull_response(size_t length) noexcept {
  ResponsePull pull;
  if (cut_) {
    pull.kind = ResponsePull::Kind::cut;
    return pull;
  }
  if (out_.empty() && call_ && !call_ended_ && protocol_ != WebProtocol::connect_unary) {
    // Base64 grows the bytes by 4/3: ask the Call for what fits.
    pull_from_call(protocol_ == WebProtocol::grpc_web_text ? std::max<size_t>(length / 4 * 3, 3)
                                                           : length);
    if (cut_) {
      pull.kind = ResponsePull::Kind::cut;
      return pull;
    }
  }
  if (out_.empty() && !call_ended_) {
    pull.kind = ResponsePull::Kind::wait;
    return pull;
  }
  pull.length = std::min(length, out_.size());
  pull.end = call_ended_ && pull.length == out_.size();
  return pull;
}

void WebStream::write_response_body(ChunkChain& out, size_t length) noexcept {
  out_.move_to(out, length);
  if (call_ended_ && out_.empty()) answer_ = Answer::done;
}

void WebStream::on_response_not_sent(int lib_error) noexcept {
  if (call_) call_->on_response_not_sent(lib_error);
}

void WebStream::on_expire(const char* why) noexcept {
  if (call_) {
    call_->on_expire(why);
    return;
  }
  // An answer of the relay's own, or a request still arriving: the stream ends now.
  if (answer_ == Answer::streaming) {
    cut_ = true;
    outer_.resume(id_);
  }
}

void WebStream::close_now() noexcept {
  if (ServerStreamHandler* call = call_) {
    call_ = nullptr;
    call->on_downstream_close(NGHTTP2_CANCEL);
  }
  release_request_credit();
  mode_ = Mode::own;
  cut_ = true;
  if (answer_ == Answer::streaming) outer_.resume(id_);
}

void WebStream::on_downstream_close(uint32_t error_code) noexcept {
  if (ServerStreamHandler* call = call_) {
    call_ = nullptr;
    call->on_downstream_close(error_code);
  }
  release_request_credit();
  delete this;
}

// --- WebFront ------------------------------------------------------------------------------

namespace {
using WebFrontBlocks = BlockCache<sizeof(WebFront), 1024>;
}  // namespace

void* WebFront::operator new(size_t) {
  return WebFrontBlocks::take();
}

void WebFront::operator delete(void* p) noexcept {
  WebFrontBlocks::give(p);
}

WebFront::WebFront(WebHost& host, Downstream& outer, int32_t stream_id) noexcept
    : host_(host), outer_(outer), id_(stream_id) {}

void WebFront::on_request_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value, FieldName f,
                                 std::string_view n, std::string_view v) noexcept {
  // Past the listener's metadata limit the fields are not kept, as the Call would not keep
  // them; the handler they are replayed to refuses the request as it would have.
  header_bytes_ += n.size() + v.size() + 32;
  if (header_bytes_ > outer_.listener().max_request_metadata + n.size() + v.size() + 32) return;
  fields_.add(name, value, n, v);
  switch (f) {
    case FieldName::method:
      method_ = v;
      break;
    case FieldName::content_type:
      content_type_ = v;
      break;
    default:
      if (n == "access-control-request-method") preflight_ = true;
      break;
  }
}

void WebFront::on_request_headers_end() noexcept {
  // A web call or a CORS preflight is the translator's; everything else a Call's, as on a
  // listener without web protocols.
  const bool web = preflight_ || web_call_kind(method_, content_type_).has_value();
  ServerStreamHandler* next =
      web ? new WebStream(host_, outer_, id_) : host_.new_grpc_call(outer_, id_);
  outer_.rebind(id_, *this, *next);
  for (const HeaderList::Field& f : fields_.fields()) {
    next->on_request_header(f.name_buf, f.value_buf, classify_field(f.name), f.name, f.value);
  }
  delete this;
  next->on_request_headers_end();
}

void WebFront::on_downstream_close(uint32_t) noexcept {
  delete this;
}

ResponsePull WebFront::pull_response(size_t) noexcept {
  // Nothing is answered before the header block ends, when the stream changes hands.
  ResponsePull pull;
  pull.kind = ResponsePull::Kind::wait;
  return pull;
}

}  // namespace grelay
