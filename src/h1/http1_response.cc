#include "h1/http1_session.h"

#include <algorithm>
#include <charconv>

#include "h1/framing.h"
#include "h2/h2_session.h"

// Http1Session's response side: the head written from the handler's fields, the body pulled
// from it and framed (content-length, chunked or until the connection closes), its trailers.

namespace grelay {
namespace {

int status_of(const nghttp2_nv& nv) noexcept {
  int status = 0;
  const auto* p = reinterpret_cast<const char*>(nv.value);
  if (nv.valuelen != 3 || std::from_chars(p, p + 3, status).ec != std::errc()) return 0;
  return status;
}

std::string_view name_of(const nghttp2_nv& nv) noexcept {
  return {reinterpret_cast<const char*>(nv.name), nv.namelen};
}

std::string_view value_of(const nghttp2_nv& nv) noexcept {
  return {reinterpret_cast<const char*>(nv.value), nv.valuelen};
}

}  // namespace

// --- the response --------------------------------------------------------------------------

int Http1Session::send_response(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen,
                                ServerStreamHandler* body) noexcept {
  if (stream_id != stream_id_ || !handler_ || response_ != Response::none || not_sent_ != 0 ||
      closing()) {
    return NGHTTP2_ERR_INVALID_STATE;
  }
  int status = 0;
  bool safe = true;
  for (size_t i = 0; i < nvlen; ++i) {
    if (name_of(nva[i]) == ":status") status = status_of(nva[i]);
    safe = safe && safe_field_bytes(name_of(nva[i])) && safe_field_bytes(value_of(nva[i]));
  }
  // Interim (1xx) answers have no place in the Downstream contract; a field that would end
  // its line early is never written. Either way the handler hears of it as from HTTP/2, once
  // its call has returned.
  if (status < 200 || !safe) {
    not_sent_ = NGHTTP2_ERR_INVALID_HEADER_BLOCK;
    flush_queue_.add(*this);
    return 0;
  }
  write_head(status, nva, nvlen, body != nullptr);
  body_ = body;
  flush_queue_.add(*this);
  return 0;
}

void Http1Session::write_head(int status, const nghttp2_nv* nva, size_t nvlen, bool body) noexcept {
  ChunkChain& out = conn_.output();
  const bool bodiless = status == 204 || status == 304 || head_request_;
  std::string_view content_length;
  append_status_line(out, status);
  for (size_t i = 0; i < nvlen; ++i) {
    const std::string_view name = name_of(nva[i]);
    if (name.empty() || name[0] == ':') continue;
    const FieldName f = classify_field(name);
    // Framing and connection fields are the session's to write.
    if (is_hop_by_hop(f)) continue;
    if (f == FieldName::content_length) {
      content_length = value_of(nva[i]);
      continue;
    }
    append_field(out, name, value_of(nva[i]));
  }
  uint64_t length = 0;
  const bool has_length =
      !content_length.empty() &&
      std::from_chars(content_length.data(), content_length.data() + content_length.size(), length)
              .ptr == content_length.data() + content_length.size();
  framing_ = Framing::none;
  if (bodiless) {
    // A HEAD answer states the length its GET would have; 204 and 304 state none.
    if (head_request_ && has_length) append_field(out, "content-length", content_length);
  } else if (!body) {
    append_field(out, "content-length", "0");
  } else if (has_length) {
    append_field(out, "content-length", content_length);
    framing_ = Framing::length;
    remaining_ = length;
  } else if (http10_) {
    // HTTP/1.0 has no chunked coding: the body ends with the connection (and trailers are
    // lost).
    framing_ = Framing::until_close;
    close_after_ = true;
  } else {
    append_field(out, "transfer-encoding", "chunked");
    framing_ = Framing::chunked;
  }
  if (draining_) close_after_ = true;
  if (close_after_) {
    append_field(out, "connection", "close");
  } else if (http10_) {
    append_field(out, "connection", "keep-alive");
  }
  out.append("\r\n", 2);
  response_ = framing_ == Framing::none ? Response::done : Response::body;
}

int Http1Session::send_trailers(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen) noexcept {
  if (stream_id != stream_id_ || response_ != Response::body) return NGHTTP2_ERR_INVALID_STATE;
  // Written after the last chunk (pull_response()); the handler's array lives only as long as
  // this call.
  for (size_t i = 0; i < nvlen; ++i) {
    const std::string_view name = name_of(nva[i]);
    const std::string_view value = value_of(nva[i]);
    if (name.empty() || name[0] == ':' || !safe_field_bytes(name) || !safe_field_bytes(value)) {
      continue;
    }
    trailers_.append(name).append(": ").append(value).append("\r\n");
  }
  return 0;
}

void Http1Session::resume(int32_t stream_id) noexcept {
  if (stream_id != stream_id_ || closing()) return;
  // Pulled on the flush turn, never from inside the handler's own call.
  waiting_ = false;
  flush_queue_.add(*this);
}

bool Http1Session::pull_response() noexcept {
  ChunkChain& out = conn_.output();
  const size_t before = out.size();
  // Only while the socket keeps up: a client that does not read holds at most
  // output_high_water (and one pull) of its response in the relay.
  while (response_ == Response::body && !waiting_ && body_ && out.size() < output_high_water) {
    if (framing_ == Framing::length && remaining_ == 0) {
      // Its content-length is out: nothing more can go on this response.
      response_ = Response::done;
      break;
    }
    size_t max = output_high_water - out.size();
    if (framing_ == Framing::length) max = static_cast<size_t>(std::min<uint64_t>(max, remaining_));
    const ResponsePull pull = body_->pull_response(max);
    if (pull.kind == ResponsePull::Kind::wait) {
      waiting_ = true;
      break;
    }
    if (pull.kind == ResponsePull::Kind::cut) {
      abort_exchange(NGHTTP2_INTERNAL_ERROR);
      return true;
    }
    const size_t length = std::min(pull.length, max);
    if (length > 0) {
      if (framing_ == Framing::chunked) append_chunk_size(out, length);
      body_->write_response_body(out, length);
      if (framing_ == Framing::chunked) out.append("\r\n", 2);
      remaining_ -= std::min<uint64_t>(remaining_, length);
    }
    if (pull.end) {
      if (framing_ == Framing::chunked) {
        out.append("0\r\n", 3);
        out.append(trailers_.data(), trailers_.size());
        out.append("\r\n", 2);
      } else if (framing_ == Framing::length && remaining_ != 0) {
        // Shorter than its content-length: the client could only wait for the rest.
        abort_exchange(NGHTTP2_INTERNAL_ERROR);
        return true;
      }
      response_ = Response::done;
      break;
    }
    // Nothing, and not the end: as good as "wait" (the handler resumes when it has more),
    // rather than asking again in a loop.
    if (length == 0) {
      waiting_ = true;
      break;
    }
  }
  return out.size() != before;
}

}  // namespace grelay
