// Differential fuzzing of the request checks: one request goes to grelay's RequestCheck,
// driven as ServerSession drives it, and, as HTTP/2 frames, to an nghttp2 server session with
// nghttp2's own HTTP messaging checks on (no nghttp2_option_set_no_http_messaging). The run
// fails when one rejects the request and the other does not, or when they reject it at
// different frames or fields, unless the difference is one of the intended ones of README.md.
//
// Input layout:
//   byte 0    flags
//     bit 0     the request HEADERS carries END_STREAM: no DATA and no trailers follow
//     bit 1     a trailers HEADERS block follows the DATA frames
//     bit 2     the trailers carry END_STREAM (without it the request is malformed)
//     bit 3     without trailers: the last DATA frame carries END_STREAM (with no DATA
//               frame, an empty one is sent for it); without this bit the stream stays open
//     bits 4-5  the number of DATA frames, 0-3
//   then two bytes (big-endian, modulo 16385) for each DATA frame: its payload length
//   then the fields: a name length byte, the name, a value length byte, the value. A name
//   length byte of 0xff puts the fields after it in the trailers; a second one ends the input.

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "h2/field_name.h"
#include "h2/h2_session.h"
#include "h2/request_check.h"
#include "h2_frames.h"

namespace {

using fuzz_h2::append_frame_header;
using fuzz_h2::describe;
using fuzz_h2::Field;
using fuzz_h2::harness_error;
using fuzz_h2::max_frame_payload;
using fuzz_h2::NgDeflaterPtr;

struct Request {
  bool headers_end_stream = false;
  bool trailers = false;
  bool trailers_end_stream = false;
  bool data_end_stream = false;
  std::vector<size_t> data;
  std::vector<Field> headers;
  std::vector<Field> trailer_fields;
};

// Inputs are cut here, so that no header block needs more CONTINUATION frames than nghttp2
// allows (8) before it closes the connection.
constexpr size_t max_input = 64 * 1024;

Request parse_input(const uint8_t* data, size_t size) {
  size = std::min(size, max_input);
  Request r;
  size_t pos = 0;
  auto byte = [&]() -> int { return pos < size ? data[pos++] : -1; };
  const int flags = byte();
  if (flags < 0) return r;
  r.headers_end_stream = flags & 0x01;
  r.trailers = !r.headers_end_stream && (flags & 0x02);
  r.trailers_end_stream = flags & 0x04;
  r.data_end_stream = !r.headers_end_stream && !r.trailers && (flags & 0x08);
  const int data_frames = r.headers_end_stream ? 0 : (flags >> 4) & 0x03;
  for (int i = 0; i < data_frames; ++i) {
    const int hi = byte();
    const int lo = byte();
    if (lo < 0) break;
    r.data.push_back(static_cast<size_t>(hi << 8 | lo) % (max_frame_payload + 1));
  }
  auto take = [&](size_t n) {
    n = std::min(n, size - pos);
    std::string_view s(reinterpret_cast<const char*>(data) + pos, n);
    pos += n;
    return s;
  };
  bool in_trailers = false;
  while (pos < size) {
    const int name_length = byte();
    if (name_length == 0xff) {
      if (in_trailers) break;
      in_trailers = true;
      continue;
    }
    Field f;
    f.name = take(static_cast<size_t>(name_length));
    const int value_length = byte();
    if (value_length > 0) f.value = take(static_cast<size_t>(value_length));
    (in_trailers ? r.trailer_fields : r.headers).push_back(f);
  }
  return r;
}

// Where a side rejected the request: the frame (-1: never), the field of that frame's header
// block (-1: the frame as a whole, e.g. a missing field or a body length), and why.
struct Verdict {
  int frame = -1;
  int field = -1;
  std::string why;

  bool rejected() const { return frame >= 0; }
  void reject(int at_frame, int at_field, std::string reason) {
    if (frame >= 0) return;
    frame = at_frame;
    field = at_field;
    why = std::move(reason);
  }
  bool operator==(const Verdict& o) const { return frame == o.frame && field == o.field; }
};

// grelay's verdict: RequestCheck called as ServerSessionCallbacks calls it, including the
// session's own rule that trailers must end the stream (RFC 9113 §8.1).
Verdict grelay_verdict(const Request& r) {
  grelay::RequestCheck check;
  Verdict v;
  for (size_t i = 0; i < r.headers.size(); ++i) {
    const Field& f = r.headers[i];
    if (!check.on_field(grelay::classify_field(f.name), f.name, f.value, false)) {
      v.reject(0, static_cast<int>(i), "on_field " + describe(f));
      return v;
    }
  }
  if (!check.on_headers_end()) {
    v.reject(0, -1, "on_headers_end");
    return v;
  }
  if (r.headers_end_stream) {
    if (!check.on_end()) v.reject(0, -1, "on_end");
    return v;
  }
  int frame = 1;
  for (size_t i = 0; i < r.data.size(); ++i, ++frame) {
    // nghttp2 reports no chunk for an empty DATA frame, so on_data never sees 0.
    if (r.data[i] > 0 && !check.on_data(r.data[i])) {
      v.reject(frame, -1, "on_data " + std::to_string(r.data[i]));
      return v;
    }
    if (r.data_end_stream && i + 1 == r.data.size() && !check.on_end()) {
      v.reject(frame, -1, "on_end");
      return v;
    }
  }
  if (r.trailers) {
    for (size_t i = 0; i < r.trailer_fields.size(); ++i) {
      const Field& f = r.trailer_fields[i];
      if (!check.on_field(grelay::classify_field(f.name), f.name, f.value, true)) {
        v.reject(frame, static_cast<int>(i), "on_field (trailer) " + describe(f));
        return v;
      }
    }
    if (!r.trailers_end_stream) {
      v.reject(frame, -1, "trailers without END_STREAM");
    } else if (!check.on_end()) {
      v.reject(frame, -1, "on_end");
    }
  } else if (r.data_end_stream && r.data.empty() && !check.on_end()) {
    v.reject(frame, -1, "on_end");
  }
  return v;
}

// The nghttp2 side: a server session fed the client's frames one at a time.
class NgServer {
 public:
  NgServer() {
    nghttp2_session* session = nullptr;
    if (nghttp2_session_server_new(&session, callbacks(), this) != 0) {
      harness_error("nghttp2_session_server_new", 0);
    }
    session_.reset(session);
    nghttp2_hd_deflater* deflater = nullptr;
    if (nghttp2_hd_deflate_new(&deflater, 4096) != 0) harness_error("nghttp2_hd_deflate_new", 0);
    deflater_.reset(deflater);
    // The client preface and an empty SETTINGS frame.
    std::string preface(NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
    append_frame_header(preface, 0, NGHTTP2_SETTINGS, NGHTTP2_FLAG_NONE, 0);
    feed(preface);
  }

  // Sends frame |frame| of the request; a rejection is recorded against it.
  void headers(int frame, const std::vector<Field>& fields, bool end_stream) {
    frame_ = frame;
    block_fields_ = fields.size();
    fields_seen_ = 0;
    const std::string frames =
        fuzz_h2::header_block_frames(deflater_.get(), fields, stream_id, end_stream);
    feed(frames);
  }

  void data(int frame, size_t length, bool end_stream) {
    frame_ = frame;
    block_fields_ = 0;
    fields_seen_ = 0;
    std::string bytes;
    append_frame_header(bytes, length, NGHTTP2_DATA,
                        end_stream ? NGHTTP2_FLAG_END_STREAM : NGHTTP2_FLAG_NONE, stream_id);
    bytes.append(length, 'x');
    feed(bytes);
  }

  const Verdict& verdict() const { return verdict_; }

 private:
  static constexpr int32_t stream_id = 1;

  // Hands |bytes| to the session and lets it write what it queued in answer, so a reset it
  // decided on is seen before the next frame goes in.
  void feed(const std::string& bytes) {
    ssize_t n = nghttp2_session_mem_recv(
        session_.get(), reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    if (n != static_cast<ssize_t>(bytes.size())) harness_error("nghttp2_session_mem_recv", n);
    for (;;) {
      const uint8_t* out = nullptr;
      n = nghttp2_session_mem_send(session_.get(), &out);
      if (n < 0) harness_error("nghttp2_session_mem_send", n);
      if (n == 0) break;
    }
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, nghttp2_rcbuf*, nghttp2_rcbuf*,
                       uint8_t, void* user_data) noexcept {
    if (frame->hd.stream_id == stream_id) ++static_cast<NgServer*>(user_data)->fields_seen_;
    return 0;
  }

  // A field nghttp2 finds malformed but only drops (RFC 9113 §8.2.1 makes the request
  // malformed): counted as a rejection at that field.
  static int on_invalid_header(nghttp2_session*, const nghttp2_frame* frame, nghttp2_rcbuf* name,
                               nghttp2_rcbuf* value, uint8_t, void* user_data) noexcept {
    auto* self = static_cast<NgServer*>(user_data);
    if (frame->hd.stream_id != stream_id) return 0;
    const nghttp2_vec n = nghttp2_rcbuf_get_buf(name);
    const nghttp2_vec v = nghttp2_rcbuf_get_buf(value);
    const Field f{{reinterpret_cast<const char*>(n.base), n.len},
                  {reinterpret_cast<const char*>(v.base), v.len}};
    self->verdict_.reject(self->frame_, static_cast<int>(self->fields_seen_++),
                          "on_invalid_header " + describe(f));
    return 0;
  }

  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user_data) noexcept {
    auto* self = static_cast<NgServer*>(user_data);
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      // The harness sends nothing a connection may be closed for.
      harness_error("nghttp2 sent GOAWAY", static_cast<long>(frame->goaway.error_code));
    }
    if (frame->hd.type == NGHTTP2_RST_STREAM && frame->hd.stream_id == stream_id) {
      // nghttp2 passes on every field it accepts; the first one it did not is the culprit, and
      // if it passed them all the block as a whole (or the body) was wrong.
      const int field =
          self->fields_seen_ < self->block_fields_ ? static_cast<int>(self->fields_seen_) : -1;
      self->verdict_.reject(
          self->frame_, field,
          "RST_STREAM " + std::string(nghttp2_http2_strerror(frame->rst_stream.error_code)));
    }
    return 0;
  }

  static nghttp2_session_callbacks* callbacks() {
    static grelay::NgCallbacksPtr table = [] {
      nghttp2_session_callbacks* cbs = nullptr;
      nghttp2_session_callbacks_new(&cbs);
      nghttp2_session_callbacks_set_on_header_callback2(cbs, on_header);
      nghttp2_session_callbacks_set_on_invalid_header_callback2(cbs, on_invalid_header);
      nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
      return grelay::NgCallbacksPtr(cbs);
    }();
    return table.get();
  }

  grelay::NgSessionPtr session_;
  NgDeflaterPtr deflater_;
  // The frame being fed, the fields in its header block and how many of them nghttp2 has
  // passed on (valid or not) so far.
  int frame_ = 0;
  size_t block_fields_ = 0;
  size_t fields_seen_ = 0;
  Verdict verdict_;
};

Verdict nghttp2_verdict(const Request& r) {
  NgServer server;
  server.headers(0, r.headers, r.headers_end_stream);
  if (r.headers_end_stream || server.verdict().rejected()) return server.verdict();
  int frame = 1;
  for (size_t i = 0; i < r.data.size(); ++i, ++frame) {
    server.data(frame, r.data[i], r.data_end_stream && i + 1 == r.data.size());
    if (server.verdict().rejected()) return server.verdict();
  }
  if (r.trailers) {
    server.headers(frame, r.trailer_fields, r.trailers_end_stream);
  } else if (r.data_end_stream && r.data.empty()) {
    server.data(frame, 0, true);
  }
  return server.verdict();
}

void print_request(const Request& r) {
  std::fprintf(stderr, "request HEADERS%s:\n", r.headers_end_stream ? " (END_STREAM)" : "");
  for (const Field& f : r.headers)
    std::fprintf(stderr, "  %s\n", describe(f).c_str());
  for (size_t i = 0; i < r.data.size(); ++i) {
    std::fprintf(stderr, "DATA %zu bytes%s\n", r.data[i],
                 r.data_end_stream && i + 1 == r.data.size() ? " (END_STREAM)" : "");
  }
  if (r.trailers) {
    std::fprintf(stderr, "trailers%s:\n", r.trailers_end_stream ? " (END_STREAM)" : "");
    for (const Field& f : r.trailer_fields)
      std::fprintf(stderr, "  %s\n", describe(f).c_str());
  } else if (r.data_end_stream && r.data.empty()) {
    std::fprintf(stderr, "DATA 0 bytes (END_STREAM)\n");
  }
}

bool has_field(const std::vector<Field>& fields, std::string_view name, std::string_view value) {
  for (const Field& f : fields) {
    if (f.name == name && f.value == value) return true;
  }
  return false;
}

bool has_name(const std::vector<Field>& fields, std::string_view name) {
  for (const Field& f : fields) {
    if (f.name == name) return true;
  }
  return false;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// True if |a| rejects strictly later than |b| (never counts as latest); a whole-block
// rejection comes after every field of that block.
bool later(const Verdict& a, const Verdict& b) {
  if (!a.rejected()) return b.rejected();
  if (!b.rejected()) return false;
  if (a.frame != b.frame) return a.frame > b.frame;
  const int fa = a.field < 0 ? INT32_MAX : a.field;
  const int fb = b.field < 0 ? INT32_MAX : b.field;
  return fa > fb;
}

// The intended differences of README.md, each recognised by what the request holds and by
// which side rejected it where; the name of the one that explains |ours| against |theirs|, or
// nullptr.
const char* intended_difference(const Request& r, const Verdict& ours, const Verdict& theirs) {
  // 1. CONNECT with content-length: at the end of the request HEADERS nghttp2 forgets the
  // length of a CONNECT request (its DATA is tunnel bytes, not content); RequestCheck keeps
  // it, so it alone rejects a body of another length, or a second content-length in the
  // trailers. nghttp2 may still reject later, for something else.
  if (has_field(r.headers, ":method", "CONNECT") && has_name(r.headers, "content-length") &&
      (ours.why == "on_end" || starts_with(ours.why, "on_data") ||
       starts_with(ours.why, "on_field (trailer) \"content-length\"")) &&
      later(theirs, ours)) {
    return "connect-content-length";
  }
  // 2. Userinfo in :authority or host: RFC 9113 §8.3.1 forbids it for http and https, and
  // RequestCheck rejects the '@' that would start it; nghttp2 1.52 takes it.
  if (ours.frame == 0 && ours.field >= 0 && static_cast<size_t>(ours.field) < r.headers.size()) {
    const Field& f = r.headers[static_cast<size_t>(ours.field)];
    if ((f.name == ":authority" || f.name == "host") && f.value.find('@') != std::string::npos &&
        later(theirs, ours)) {
      return "authority-userinfo";
    }
  }
  return nullptr;
}

void print_verdict(const char* side, const Verdict& v) {
  if (v.rejected()) {
    std::fprintf(stderr, "%s rejected at frame %d, field %d: %s\n", side, v.frame, v.field,
                 v.why.c_str());
  } else {
    std::fprintf(stderr, "%s accepted\n", side);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Request request = parse_input(data, size);
  const Verdict ours = grelay_verdict(request);
  const Verdict theirs = nghttp2_verdict(request);
  const bool agree = ours == theirs;
  const char* intended = agree ? nullptr : intended_difference(request, ours, theirs);
  static const bool verbose = std::getenv("GRELAY_FUZZ_VERBOSE") != nullptr;
  if ((agree || intended) && !verbose) return 0;
  print_request(request);
  print_verdict("grelay: ", ours);
  print_verdict("nghttp2:", theirs);
  if (agree) return 0;
  if (intended) {
    std::fprintf(stderr, "an intended difference: %s\n", intended);
    return 0;
  }
  std::fprintf(stderr, "fuzz_request_check: grelay and nghttp2 disagree\n");
  std::abort();
}
