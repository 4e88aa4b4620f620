// Differential fuzzing of the answer checks: one backend answer goes to grelay's
// ResponseCheck, driven as ClientSession drives it, and, as HTTP/2 frames, to an nghttp2
// client session with nghttp2's own HTTP messaging checks on (no
// nghttp2_option_set_no_http_messaging) that sent a POST request on stream 1. The run fails
// when the two pass on different fields, drop different fields, or reject the answer at
// different frames or fields.
//
// Input layout: up to 8 frames, each starting with a byte:
//   bit 7 clear: a HEADERS block (with CONTINUATION frames if it needs them), then its fields:
//     a name length byte, the name, a value length byte, the value; a name length byte of
//     0xff (or the end of the input) ends the block
//   bit 7 set: a DATA frame, then two bytes (big-endian, modulo 16385): its payload length
//   bit 0: the frame carries END_STREAM (no frame follows it)
// The first frame is a HEADERS block whatever its bit 7 says: DATA before any HEADERS is a
// connection error nghttp2 checks with or without its HTTP messaging checks.

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

struct Frame {
  bool headers = true;
  bool end_stream = false;
  size_t data_length = 0;
  std::vector<Field> fields;
};

constexpr size_t max_frames = 8;
// Inputs are cut here, so that no header block needs more CONTINUATION frames than nghttp2
// allows (8) before it closes the connection.
constexpr size_t max_input = 64 * 1024;

std::vector<Frame> parse_input(const uint8_t* data, size_t size) {
  size = std::min(size, max_input);
  std::vector<Frame> frames;
  size_t pos = 0;
  auto byte = [&]() -> int { return pos < size ? data[pos++] : -1; };
  auto take = [&](size_t n) {
    n = std::min(n, size - pos);
    std::string_view s(reinterpret_cast<const char*>(data) + pos, n);
    pos += n;
    return s;
  };
  while (pos < size && frames.size() < max_frames) {
    const int kind = byte();
    Frame f;
    f.headers = frames.empty() || !(kind & 0x80);
    f.end_stream = kind & 0x01;
    if (f.headers) {
      for (;;) {
        const int name_length = byte();
        if (name_length < 0 || name_length == 0xff) break;
        Field field;
        field.name = take(static_cast<size_t>(name_length));
        const int value_length = byte();
        if (value_length > 0) field.value = take(static_cast<size_t>(value_length));
        f.fields.push_back(field);
      }
    } else {
      const int hi = byte();
      const int lo = byte();
      if (lo >= 0) f.data_length = static_cast<size_t>(hi << 8 | lo) % (max_frame_payload + 1);
    }
    frames.push_back(f);
    if (f.end_stream) break;
  }
  return frames;
}

// What a side made of the answer: for each frame, the fields it passed on and those it
// dropped as invalid (reported by nghttp2's on_invalid_header), by index; and where it
// rejected the answer: the frame (-1: never) and the field (-1: the frame as a whole).
struct Verdict {
  std::vector<std::vector<int>> passed;
  std::vector<std::vector<int>> invalid;
  int frame = -1;
  int field = -1;
  std::string why;

  explicit Verdict(size_t frames) : passed(frames), invalid(frames) {}
  bool rejected() const { return frame >= 0; }
  void reject(int at_frame, int at_field, std::string reason) {
    if (frame >= 0) return;
    frame = at_frame;
    field = at_field;
    why = std::move(reason);
  }
  bool operator==(const Verdict& o) const {
    return passed == o.passed && invalid == o.invalid && frame == o.frame && field == o.field;
  }
};

// A rejection's field, the same way on both sides: the first field after the last one the
// side passed on or reported invalid (a field nghttp2 removes silently, the `content-length:
// 0` of a 204, is neither), or -1 if none is left.
int reject_field(const std::vector<int>& passed, const std::vector<int>& invalid, size_t size) {
  int last = -1;
  if (!passed.empty()) last = std::max(last, passed.back());
  if (!invalid.empty()) last = std::max(last, invalid.back());
  return static_cast<size_t>(last + 1) < size ? last + 1 : -1;
}

// grelay's verdict: ResponseCheck called as ClientSessionCallbacks calls it.
Verdict grelay_verdict(const std::vector<Frame>& frames) {
  grelay::ResponseCheck check;
  Verdict v(frames.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    const Frame& fr = frames[i];
    const int at = static_cast<int>(i);
    if (!fr.headers) {
      if (fr.data_length > 0 && !check.on_data(fr.data_length)) {
        v.reject(at, -1, "on_data " + std::to_string(fr.data_length));
        return v;
      }
      if (fr.end_stream && !check.on_end()) {
        v.reject(at, -1, "on_end");
        return v;
      }
      continue;
    }
    for (size_t j = 0; j < fr.fields.size(); ++j) {
      const Field& f = fr.fields[j];
      switch (check.on_field(grelay::classify_field(f.name), f.name, f.value)) {
        case grelay::ResponseCheck::Verdict::pass:
          v.passed[i].push_back(static_cast<int>(j));
          break;
        case grelay::ResponseCheck::Verdict::drop:
          // nghttp2 removes the `content-length: 0` of a 204 without reporting it; every
          // other dropped field is one it reports invalid.
          if (!(f.name == "content-length" && f.value == "0")) {
            v.invalid[i].push_back(static_cast<int>(j));
          }
          break;
        case grelay::ResponseCheck::Verdict::malformed:
          v.reject(at, reject_field(v.passed[i], v.invalid[i], fr.fields.size()),
                   "on_field " + describe(f));
          return v;
      }
    }
    if (!check.on_headers_end(fr.end_stream)) {
      v.reject(at, reject_field(v.passed[i], v.invalid[i], fr.fields.size()), "on_headers_end");
      return v;
    }
  }
  return v;
}

// The nghttp2 side: a client session that sent a POST request on stream 1, fed the server's
// frames one at a time.
class NgClient {
 public:
  explicit NgClient(size_t frames) : verdict_(frames) {
    nghttp2_session* session = nullptr;
    if (nghttp2_session_client_new(&session, callbacks(), this) != 0) {
      harness_error("nghttp2_session_client_new", 0);
    }
    session_.reset(session);
    nghttp2_hd_deflater* deflater = nullptr;
    if (nghttp2_hd_deflate_new(&deflater, 4096) != 0) harness_error("nghttp2_hd_deflate_new", 0);
    deflater_.reset(deflater);
    if (nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0) != 0) {
      harness_error("nghttp2_submit_settings", 0);
    }
    auto nv = [](const char* name, const char* value) {
      return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
                        reinterpret_cast<uint8_t*>(const_cast<char*>(value)),
                        std::string_view(name).size(), std::string_view(value).size(),
                        NGHTTP2_NV_FLAG_NONE};
    };
    const nghttp2_nv request[] = {nv(":method", "POST"),
                                  nv(":scheme", "http"),
                                  nv(":path", "/fuzz.Svc/Call"),
                                  nv(":authority", "backend"),
                                  nv("content-type", "application/grpc"),
                                  nv("te", "trailers")};
    const int32_t id =
        nghttp2_submit_request(session, nullptr, request, std::size(request), nullptr, nullptr);
    if (id != stream_id) harness_error("nghttp2_submit_request", id);
    // The server's SETTINGS, which must come first.
    std::string settings;
    append_frame_header(settings, 0, NGHTTP2_SETTINGS, NGHTTP2_FLAG_NONE, 0);
    feed(settings);
  }

  // Sends HEADERS frame |frame|; what nghttp2 makes of it is recorded against it.
  void headers(int frame, const std::vector<Field>& fields, bool end_stream) {
    start(frame, &fields);
    const std::string frames =
        fuzz_h2::header_block_frames(deflater_.get(), fields, stream_id, end_stream);
    feed(frames);
    if (verdict_.rejected() && verdict_.frame == frame && verdict_.field == -2) {
      verdict_.field = reject_field(verdict_.passed[static_cast<size_t>(frame)],
                                    verdict_.invalid[static_cast<size_t>(frame)], fields.size());
    }
  }

  void data(int frame, size_t length, bool end_stream) {
    start(frame, nullptr);
    std::string bytes;
    append_frame_header(bytes, length, NGHTTP2_DATA,
                        end_stream ? NGHTTP2_FLAG_END_STREAM : NGHTTP2_FLAG_NONE, stream_id);
    bytes.append(length, 'x');
    feed(bytes);
  }

  const Verdict& verdict() const { return verdict_; }

 private:
  static constexpr int32_t stream_id = 1;

  void start(int frame, const std::vector<Field>* fields) {
    frame_ = frame;
    fields_ = fields;
    cursor_ = 0;
  }

  // Hands |bytes| to the session and lets it write what it queued in answer (its preface and
  // request first), so a reset it decided on is seen before the next frame goes in.
  void feed(const std::string& bytes) {
    for (;;) {
      const uint8_t* out = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_.get(), &out);
      if (n < 0) harness_error("nghttp2_session_mem_send", n);
      if (n == 0) break;
    }
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

  // The index of the field nghttp2 reports: the next one of the block, from the last one
  // reported, with that name and value (fields it removes silently are skipped).
  int locate(nghttp2_rcbuf* name, nghttp2_rcbuf* value) {
    const nghttp2_vec n = nghttp2_rcbuf_get_buf(name);
    const nghttp2_vec v = nghttp2_rcbuf_get_buf(value);
    const Field f{{reinterpret_cast<const char*>(n.base), n.len},
                  {reinterpret_cast<const char*>(v.base), v.len}};
    if (!fields_) harness_error("a field outside a HEADERS block", 0);
    for (size_t i = cursor_; i < fields_->size(); ++i) {
      if ((*fields_)[i] == f) {
        cursor_ = i + 1;
        return static_cast<int>(i);
      }
    }
    harness_error("nghttp2 reported a field the block does not hold", 0);
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, nghttp2_rcbuf* name,
                       nghttp2_rcbuf* value, uint8_t, void* user_data) noexcept {
    auto* self = static_cast<NgClient*>(user_data);
    if (frame->hd.stream_id != stream_id || frame->hd.type != NGHTTP2_HEADERS) return 0;
    self->verdict_.passed[static_cast<size_t>(self->frame_)].push_back(self->locate(name, value));
    return 0;
  }

  static int on_invalid_header(nghttp2_session*, const nghttp2_frame* frame, nghttp2_rcbuf* name,
                               nghttp2_rcbuf* value, uint8_t, void* user_data) noexcept {
    auto* self = static_cast<NgClient*>(user_data);
    if (frame->hd.stream_id != stream_id || frame->hd.type != NGHTTP2_HEADERS) return 0;
    self->verdict_.invalid[static_cast<size_t>(self->frame_)].push_back(self->locate(name, value));
    return 0;
  }

  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user_data) noexcept {
    auto* self = static_cast<NgClient*>(user_data);
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      // The harness sends nothing a connection may be closed for.
      harness_error("nghttp2 sent GOAWAY", static_cast<long>(frame->goaway.error_code));
    }
    if (frame->hd.type == NGHTTP2_RST_STREAM && frame->hd.stream_id == stream_id) {
      // A HEADERS frame's field is worked out once the whole block went in (-2 until then).
      self->verdict_.reject(
          self->frame_, self->fields_ ? -2 : -1,
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
  // The frame being fed, its header block (null for DATA) and the index after the last field
  // nghttp2 reported.
  int frame_ = 0;
  const std::vector<Field>* fields_ = nullptr;
  size_t cursor_ = 0;
  Verdict verdict_;
};

Verdict nghttp2_verdict(const std::vector<Frame>& frames) {
  NgClient client(frames.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    const Frame& fr = frames[i];
    if (fr.headers) {
      client.headers(static_cast<int>(i), fr.fields, fr.end_stream);
    } else {
      client.data(static_cast<int>(i), fr.data_length, fr.end_stream);
    }
    if (client.verdict().rejected()) break;
  }
  return client.verdict();
}

void print_answer(const std::vector<Frame>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    const Frame& fr = frames[i];
    if (fr.headers) {
      std::fprintf(stderr, "%zu: HEADERS%s\n", i, fr.end_stream ? " (END_STREAM)" : "");
      for (size_t j = 0; j < fr.fields.size(); ++j)
        std::fprintf(stderr, "  %zu %s\n", j, describe(fr.fields[j]).c_str());
    } else {
      std::fprintf(stderr, "%zu: DATA %zu bytes%s\n", i, fr.data_length,
                   fr.end_stream ? " (END_STREAM)" : "");
    }
  }
}

std::string indexes(const std::vector<int>& v) {
  std::string out;
  for (int i : v)
    out += (out.empty() ? "" : ",") + std::to_string(i);
  return out;
}

void print_verdict(const char* side, const Verdict& v) {
  std::fprintf(stderr, "%s", side);
  for (size_t i = 0; i < v.passed.size(); ++i) {
    std::fprintf(stderr, " [%zu: passed %s; invalid %s]", i, indexes(v.passed[i]).c_str(),
                 indexes(v.invalid[i]).c_str());
  }
  if (v.rejected()) {
    std::fprintf(stderr, " rejected at frame %d, field %d: %s\n", v.frame, v.field, v.why.c_str());
  } else {
    std::fprintf(stderr, " accepted\n");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<Frame> frames = parse_input(data, size);
  if (frames.empty()) return 0;
  const Verdict ours = grelay_verdict(frames);
  const Verdict theirs = nghttp2_verdict(frames);
  const bool agree = ours == theirs;
  static const bool verbose = std::getenv("GRELAY_FUZZ_VERBOSE") != nullptr;
  if (agree && !verbose) return 0;
  print_answer(frames);
  print_verdict("grelay: ", ours);
  print_verdict("nghttp2:", theirs);
  if (agree) return 0;
  std::fprintf(stderr, "fuzz_response_check: grelay and nghttp2 disagree\n");
  std::abort();
}
