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

}  // namespace grelay
