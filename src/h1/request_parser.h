#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace grelay {

// The budgets of one HTTP/1.1 request head (docs/config.md, "HTTP/1.1").
struct RequestLimits {
  // Bytes of the request line (method, target, version). Over it: 414.
  size_t max_line = 8 * 1024;
  // Bytes of the header section (field lines with their line ends), and of a chunked body's
  // trailer section. Over it: 431.
  size_t max_section = 64 * 1024;
  // Field lines of the header section, and of the trailer section. Over it: 431.
  size_t max_fields = 100;
};

// Why a request was refused, as the status it is answered with.
enum class RequestError : uint8_t {
  none,
  bad_request,            // 400
  uri_too_long,           // 414: the request line is over its budget
  fields_too_large,       // 431: the header or trailer section is over its budget
  expectation_failed,     // 417: an Expect other than 100-continue
  version_not_supported,  // 505
};

// The status code that answers |error| (0 for none).
int request_error_status(RequestError error) noexcept;

// One field of a request head: the name lowercased, the value without surrounding whitespace.
struct RequestField {
  std::string_view name;
  std::string_view value;
};

// A request's line and fields, as the handler of its stream takes them. The views point into
// the parser's buffer and stay valid until RequestParser::next().
struct Http1Head {
  std::string_view method;
  // The origin-form target (an absolute-form one converted), or "*" (OPTIONS only).
  std::string_view path;
  // From the absolute-form target, else from Host.
  std::string_view authority;
  // Every field but those of one hop: connection and the fields it names, keep-alive,
  // proxy-connection, transfer-encoding, upgrade, te, host and expect (the relay answers it).
  std::vector<RequestField> fields;
  // HTTP/1.|minor| (0 or 1).
  uint8_t minor = 1;
  // The connection may carry another request after this one (HTTP/1.1 without
  // "Connection: close", HTTP/1.0 with "Connection: keep-alive").
  bool keep_alive = true;
  // The body is chunked, or has a content-length above 0.
  bool has_body = false;
  // "Expect: 100-continue" on an HTTP/1.1 request with a body.
  bool expect_continue = false;
  // A HEAD request: its response has no body.
  bool head_method = false;
};

// Reads HTTP/1.1 requests, one at a time, with llhttp in strict mode: the request line and
// header section into a buffer of its own, the body (de-chunked) to a sink. Adds the checks
// llhttp leaves out: a bare LF as a line end, obs-fold, a missing or repeated Host, an empty
// field name, the target's form, the version, and the head's budgets.
class RequestParser {
 public:
  // Takes a request's body as it is parsed.
  class BodySink {
   public:
    virtual void on_body(const uint8_t* data, size_t len) noexcept = 0;

   protected:
    ~BodySink() = default;
  };

  // Why feed() returned.
  enum class Stop : uint8_t {
    more,   // every byte was taken; the request (or the next one) needs more
    head,   // the request's head is complete (head()); feed again, even with no byte left:
            // its body, if any, follows, and a request without one ends there
    end,    // the request is complete; next() before feeding the bytes that follow
    error,  // the request is refused (error(), reason()): feed no more
  };
  struct Step {
    size_t taken = 0;
    Stop stop = Stop::more;
  };

  explicit RequestParser(const RequestLimits& limits) noexcept;
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses from |data| up to the next stop; body bytes go to |sink| on the way.
  Step feed(const uint8_t* data, size_t len, BodySink& sink) noexcept;
  // After Stop::end: the next request begins. The head's views are no longer valid.
  void next() noexcept;

  const Http1Head& head() const noexcept { return head_; }
  RequestError error() const noexcept { return error_; }
  // One line saying why the request was refused (a static string).
  const char* reason() const noexcept { return reason_; }

 private:
  friend struct RequestParserCallbacks;

  // Where in a request the parser is.
  enum class Section : uint8_t { none, line, fields, body, trailers };
  // What the span callbacks are appending to the buffer.
  enum class Element : uint8_t { none, method, target, name, value };
  // Offsets of one field in buf_ (views are made once the head is complete: the buffer may
  // move while it grows).
  struct FieldSpan {
    uint32_t name = 0;
    uint32_t name_len = 0;
    uint32_t value = 0;
    uint32_t value_len = 0;
  };

  int fail(RequestError error, const char* reason) noexcept;
  // Appends a span of the element |e|; the first one of an element notes where it starts.
  void append(Element e, const char* at, size_t len) noexcept;
  // The stream offset of |p|, a pointer into the bytes being parsed.
  uint64_t offset_of(const char* p) const noexcept {
    return chunk_offset_ + static_cast<uint64_t>(p - chunk_);
  }
  // Checks the section being read against its budget, counting the bytes up to |p|.
  int check_budget(const char* p) noexcept;
  // Checks the line ends of head or trailer bytes [from, to): CRLF only, no line that begins
  // with whitespace (obs-fold).
  bool check_line_ends(const char* from, const char* to) noexcept;
  // The request head is complete: checks it and fills head_. Returns false (error_ set) when
  // it is refused.
  bool finish_head() noexcept;
  // Finds the path and authority in the request target. Returns false (error_ set) when its
  // form is not served.
  bool read_target() noexcept;

  llhttp_t parser_;
  const RequestLimits limits_;
  BodySink* sink_ = nullptr;
  // The request line and fields as received (names lowercased), for one request.
  std::string buf_;
  Element element_ = Element::none;
  size_t element_start_ = 0;
  size_t method_ = 0, method_len_ = 0;
  size_t target_ = 0, target_len_ = 0;
  size_t path_ = 0, path_len_ = 0;
  size_t authority_ = 0, authority_len_ = 0;
  std::vector<FieldSpan> spans_;
  Http1Head head_;
  Section section_ = Section::none;
  // The fields of the trailer section (counted, not kept).
  size_t trailer_fields_ = 0;
  // Stream offsets: where the request line began, where the fields or the trailers began.
  uint64_t line_start_ = 0;
  uint64_t section_start_ = 0;
  // The bytes being parsed: |chunk_| is at stream offset |chunk_offset_|.
  const char* chunk_ = nullptr;
  uint64_t chunk_offset_ = 0;
  // Where the bytes whose line ends are checked begin in the chunk; nullptr outside the head
  // and trailers.
  const char* scan_from_ = nullptr;
  // The last byte checked was a CR, or the LF that ended a line.
  bool after_cr_ = false;
  bool at_line_start_ = false;
  // Why llhttp paused.
  enum class Pause : uint8_t { none, head, trailers, end } pause_ = Pause::none;
  RequestError error_ = RequestError::none;
  const char* reason_ = "";
};

}  // namespace grelay
