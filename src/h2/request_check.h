#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "h2/field_name.h"

namespace grelay {

// The HTTP/2 message rules (RFC 9113 §8.2, §8.3) for one request, checked field by field as
// the client's header blocks arrive. The server sessions check requests here rather than
// through nghttp2's own HTTP messaging checks: the relay needs the same rules but reads each
// field anyway, so one pass over it does both.
//
// Every check returns false for a malformed request, which ends with RST_STREAM
// (PROTOCOL_ERROR). Field names are lowercase tokens; values hold no control characters but
// HTAB and no leading or trailing whitespace.
class RequestCheck {
 public:
  // One field of the request HEADERS block (|trailer| false) or of the trailers block; |f| is
  // classify_field(|name|).
  bool on_field(FieldName f, std::string_view name, std::string_view value, bool trailer) noexcept;
  bool on_field(std::string_view name, std::string_view value, bool trailer) noexcept {
    return on_field(classify_field(name), name, value, trailer);
  }
  // The request HEADERS block ended: are the fields a request needs all there?
  bool on_headers_end() const noexcept;
  // |n| bytes of DATA payload arrived: false once past the declared content-length.
  bool on_data(size_t n) noexcept;
  // The client ended the stream: does the body length match the declared content-length?
  bool on_end() const noexcept;

 private:
  enum Seen : uint16_t {
    method = 1 << 0,
    scheme = 1 << 1,
    path = 1 << 2,
    authority = 1 << 3,
    host = 1 << 4,
    // A regular field came: no pseudo-header field may follow.
    regular = 1 << 5,
    method_connect = 1 << 6,
    method_options = 1 << 7,
    scheme_http = 1 << 8,
    path_slash = 1 << 9,
    path_asterisk = 1 << 10,
  };

  bool on_pseudo(FieldName f, std::string_view value) noexcept;
  bool on_regular(FieldName f, std::string_view value) noexcept;
  // Marks |flag| seen; false if it was already (a field that may appear once).
  bool first(Seen flag) noexcept;

  int64_t content_length_ = -1;
  uint64_t body_length_ = 0;
  uint16_t seen_ = 0;
};

// The HTTP/2 message rules for one backend answer, as nghttp2's HTTP messaging checks apply
// them to a client stream (grelay's client sessions turn those off and check here instead, in
// the pass that reads each field anyway). The request is a POST, never HEAD or CONNECT.
//
// A field either passes, is dropped (a regular field whose name is not a lowercase token but
// holds no uppercase letter, or whose value has a control character or leading or trailing
// whitespace; a `content-length: 0` of a 204 answer), or makes the answer malformed, which
// ends the stream with RST_STREAM (PROTOCOL_ERROR).
class ResponseCheck {
 public:
  enum class Verdict : uint8_t { pass, drop, malformed };

  // One field of the current HEADERS block; |f| is classify_field(|name|).
  Verdict on_field(FieldName f, std::string_view name, std::string_view value) noexcept;
  Verdict on_field(std::string_view name, std::string_view value) noexcept {
    return on_field(classify_field(name), name, value);
  }
  // A HEADERS block ended, with END_STREAM if |end_stream|: false if it is malformed (no
  // :status, trailers that do not end the stream, an end before the final answer or short of
  // the declared content-length).
  bool on_headers_end(bool end_stream) noexcept;
  // |n| bytes (n > 0) of DATA payload arrived: false after an informational answer and before
  // the final one, or past the declared content-length (0 for 204 and 304). DATA before any
  // HEADERS never gets here: nghttp2's stream states refuse it.
  bool on_data(size_t n) noexcept;
  // A DATA frame ended the stream: false after an informational answer and before the final
  // one, or short of the declared content-length.
  bool on_end() const noexcept;

  // The blocks to come are trailers: the final (non-1xx) answer has been received.
  bool final_received() const noexcept { return flags_ & final_received_flag; }

 private:
  enum Flag : uint8_t {
    status_flag = 1 << 0,
    // A regular field came (dropped ones too): no pseudo-header field may follow.
    regular_flag = 1 << 1,
    // An informational (1xx) answer came: another HEADERS block must follow.
    expect_final_flag = 1 << 2,
    final_received_flag = 1 << 3,
  };

  Verdict on_regular(FieldName f, std::string_view value) noexcept;

  int64_t content_length_ = -1;
  uint64_t body_length_ = 0;
  // The :status of the block, then of the final answer; -1 before one.
  int16_t status_ = -1;
  uint8_t flags_ = 0;
};

}  // namespace grelay
