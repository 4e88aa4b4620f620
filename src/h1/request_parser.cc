#include "h1/request_parser.h"

#include <cstring>

#include "core/small_vector.h"
#include "h2/field_name.h"

namespace grelay {
namespace {

// A buffer grown past this by one large request is given back once the request is done: an
// idle connection keeps a few KiB, not the largest head it ever saw.
constexpr size_t kept_capacity = 16 * 1024;

char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}

// RFC 3986 host (reg-name, IPv4 or bracketed IP literal) and optional port, as the characters
// they may hold; what the router compares is the text itself.
bool valid_authority(std::string_view a) noexcept {
  if (a.empty()) return false;
  for (char c : a) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::strchr("-._~!$&'()*+,;=:[]%", c) != nullptr;
    if (!ok || c == '\0') return false;
  }
  return true;
}

}  // namespace

int request_error_status(RequestError error) noexcept {
  switch (error) {
    case RequestError::none:
      return 0;
    case RequestError::bad_request:
      return 400;
    case RequestError::uri_too_long:
      return 414;
    case RequestError::fields_too_large:
      return 431;
    case RequestError::expectation_failed:
      return 417;
    case RequestError::version_not_supported:
      return 505;
  }
  return 400;
}

// llhttp's callbacks: each casts the parser's data and works on the RequestParser.
struct RequestParserCallbacks {
  using Section = RequestParser::Section;
  using Element = RequestParser::Element;

  static RequestParser& self(llhttp_t* p) noexcept { return *static_cast<RequestParser*>(p->data); }

  static int on_message_begin(llhttp_t* p) noexcept {
    RequestParser& s = self(p);
    s.section_ = Section::line;
    return 0;
  }

  static int on_method(llhttp_t* p, const char* at, size_t len) noexcept {
    RequestParser& s = self(p);
    if (s.element_ != Element::method) {
      // The request line begins here: its budget and its line ends count from this byte.
      s.line_start_ = s.offset_of(at);
      if (!s.scan_from_) s.scan_from_ = at;
      s.after_cr_ = false;
      s.at_line_start_ = false;
    }
    s.append(Element::method, at, len);
    return s.check_budget(at + len);
  }

  static int on_url(llhttp_t* p, const char* at, size_t len) noexcept {
    RequestParser& s = self(p);
    s.append(Element::target, at, len);
    return s.check_budget(at + len);
  }

  static int on_version(llhttp_t* p, const char* at, size_t len) noexcept {
    RequestParser& s = self(p);
    s.section_start_ = s.offset_of(at + len);
    return s.check_budget(at + len);
  }

  static int on_version_complete(llhttp_t* p) noexcept {
    // The header section counts from the end of the version (its CRLF included).
    self(p).section_ = Section::fields;
    return 0;
  }

  static int on_header_field(llhttp_t* p, const char* at, size_t len) noexcept {
    RequestParser& s = self(p);
    if (s.section_ != Section::trailers) s.append(Element::name, at, len);
    return s.check_budget(at + len);
  }

  static int on_header_field_complete(llhttp_t* p) noexcept {
    RequestParser& s = self(p);
    if (s.section_ == Section::trailers) {
      // Trailer fields carry nothing the relay uses: only counted.
      if (++s.trailer_fields_ > s.limits_.max_fields) {
        return s.fail(RequestError::fields_too_large, "too many trailer fields");
      }
      return 0;
    }
    if (s.spans_.size() >= s.limits_.max_fields) {
      return s.fail(RequestError::fields_too_large, "too many header fields");
    }
    if (s.element_ != Element::name || s.buf_.size() == s.element_start_) {
      return s.fail(RequestError::bad_request, "empty field name");
    }
    RequestParser::FieldSpan span;
    span.name = static_cast<uint32_t>(s.element_start_);
    span.name_len = static_cast<uint32_t>(s.buf_.size() - s.element_start_);
    span.value = static_cast<uint32_t>(s.buf_.size());
    s.spans_.push_back(span);
    s.element_ = Element::none;
    return 0;
  }

  static int on_header_value(llhttp_t* p, const char* at, size_t len) noexcept {
    RequestParser& s = self(p);
    if (s.section_ != Section::trailers) s.append(Element::value, at, len);
    return s.check_budget(at + len);
  }

  static int on_header_value_complete(llhttp_t* p) noexcept {
    RequestParser& s = self(p);
    if (s.section_ == Section::trailers || s.spans_.empty()) return 0;
    RequestParser::FieldSpan& span = s.spans_.back();
    // An empty value has no span: it is where the buffer ends.
    size_t start = s.element_ == Element::value ? s.element_start_ : s.buf_.size();
    size_t end = s.buf_.size();
    // llhttp drops the whitespace before a value, not the whitespace after it.
    while (end > start && is_ows(s.buf_[end - 1]))
      --end;
    span.value = static_cast<uint32_t>(start);
    span.value_len = static_cast<uint32_t>(end - start);
    s.element_ = Element::none;
    return 0;
  }

  static int on_headers_complete(llhttp_t* p) noexcept {
    RequestParser& s = self(p);
    s.section_ = Section::body;
    s.element_ = Element::none;
    // feed() checks the head before any body byte is taken.
    s.pause_ = RequestParser::Pause::head;
    return HPE_PAUSED;
  }

  static int on_body(llhttp_t* p, const char* at, size_t len) noexcept {
    RequestParser& s = self(p);
    s.sink_->on_body(reinterpret_cast<const uint8_t*>(at), len);
    return 0;
  }

  static int on_chunk_header(llhttp_t* p) noexcept {
    // The last chunk: its trailer section follows, whose line ends feed() checks from where
    // this pause leaves it.
    if (p->content_length != 0) return 0;
    RequestParser& s = self(p);
    s.section_ = Section::trailers;
    s.pause_ = RequestParser::Pause::trailers;
    return HPE_PAUSED;
  }

  static int on_message_complete(llhttp_t* p) noexcept {
    RequestParser& s = self(p);
    s.section_ = Section::none;
    s.pause_ = RequestParser::Pause::end;
    return HPE_PAUSED;
  }

  static const llhttp_settings_t* settings() noexcept {
    static const llhttp_settings_t table = [] {
      llhttp_settings_t t;
      llhttp_settings_init(&t);
      t.on_message_begin = on_message_begin;
      t.on_method = on_method;
      t.on_url = on_url;
      t.on_version = on_version;
      t.on_version_complete = on_version_complete;
      t.on_header_field = on_header_field;
      t.on_header_field_complete = on_header_field_complete;
      t.on_header_value = on_header_value;
      t.on_header_value_complete = on_header_value_complete;
      t.on_headers_complete = on_headers_complete;
      t.on_body = on_body;
      t.on_chunk_header = on_chunk_header;
      t.on_message_complete = on_message_complete;
      return t;
    }();
    return &table;
  }
};

RequestParser::RequestParser(const RequestLimits& limits) noexcept : limits_(limits) {
  // Strict: no lenient flag is set, ever (llhttp_set_lenient_*).
  llhttp_init(&parser_, HTTP_REQUEST, RequestParserCallbacks::settings());
  parser_.data = this;
}

int RequestParser::fail(RequestError error, const char* reason) noexcept {
  if (error_ == RequestError::none) {
    error_ = error;
    reason_ = reason;
  }
  return HPE_USER;
}

void RequestParser::append(Element e, const char* at, size_t len) noexcept {
  if (element_ != e) {
    element_ = e;
    element_start_ = buf_.size();
    if (e == Element::method) method_ = element_start_;
    if (e == Element::target) target_ = element_start_;
  }
  const size_t from = buf_.size();
  buf_.append(at, len);
  if (e == Element::name) {
    for (size_t i = from; i < buf_.size(); ++i)
      buf_[i] = lower(buf_[i]);
  }
  if (e == Element::method) method_len_ = buf_.size() - method_;
  if (e == Element::target) target_len_ = buf_.size() - target_;
}

int RequestParser::check_budget(const char* p) noexcept {
  const uint64_t at = offset_of(p);
  switch (section_) {
    case Section::line:
      if (element_ != Element::none && at - line_start_ > limits_.max_line) {
        return fail(RequestError::uri_too_long, "request line too long");
      }
      break;
    case Section::fields:
      if (at - section_start_ > limits_.max_section) {
        return fail(RequestError::fields_too_large, "header section too large");
      }
      break;
    case Section::trailers:
      if (at - section_start_ > limits_.max_section) {
        return fail(RequestError::fields_too_large, "trailer section too large");
      }
      break;
    default:
      break;
  }
  return 0;
}

bool RequestParser::check_line_ends(const char* from, const char* to) noexcept {
  if (from >= to) return true;
  if (at_line_start_ && is_ows(*from)) {
    fail(RequestError::bad_request, "obs-fold (a field line that begins with whitespace)");
    return false;
  }
  const char* q = from;
  while (const void* hit = std::memchr(q, '\n', static_cast<size_t>(to - q))) {
    const char* lf = static_cast<const char*>(hit);
    if (!(lf > from ? lf[-1] == '\r' : after_cr_)) {
      fail(RequestError::bad_request, "bare LF as a line end");
      return false;
    }
    if (lf + 1 < to && is_ows(lf[1])) {
      fail(RequestError::bad_request, "obs-fold (a field line that begins with whitespace)");
      return false;
    }
    q = lf + 1;
  }
  after_cr_ = to[-1] == '\r';
  at_line_start_ = to[-1] == '\n';
  return true;
}

RequestParser::Step RequestParser::feed(const uint8_t* data, size_t len, BodySink& sink) noexcept {
  Step step;
  if (error_ != RequestError::none) {
    step.stop = Stop::error;
    return step;
  }
  sink_ = &sink;
  const char* p = reinterpret_cast<const char*>(data);
  const char* const end = p + len;
  for (;;) {
    chunk_ = p;
    const bool in_head =
        section_ == Section::line || section_ == Section::fields || section_ == Section::trailers;
    scan_from_ = in_head ? p : nullptr;
    pause_ = Pause::none;
    const llhttp_errno_t rv = llhttp_execute(&parser_, p, static_cast<size_t>(end - p));
    const char* stop = rv == HPE_OK ? end : llhttp_get_error_pos(&parser_);
    if (!stop || stop < p || stop > end) stop = end;
    if (rv != HPE_OK && rv != HPE_PAUSED) {
      // llhttp's reasons are static strings; HPE_USER is one of ours, already noted.
      const char* why = llhttp_get_error_reason(&parser_);
      // A version llhttp does not know (HTTP/3.0, HTTP/1.2) is not served rather than bad.
      fail(rv == HPE_INVALID_VERSION ? RequestError::version_not_supported
                                     : RequestError::bad_request,
           why ? why : "malformed request");
    }
    if (error_ == RequestError::none && scan_from_) check_line_ends(scan_from_, stop);
    if (error_ == RequestError::none && rv == HPE_OK) check_budget(end);
    step.taken += static_cast<size_t>(stop - p);
    chunk_offset_ += static_cast<uint64_t>(stop - p);
    p = stop;
    if (error_ != RequestError::none) {
      step.stop = Stop::error;
      break;
    }
    if (rv == HPE_OK) {
      step.stop = Stop::more;
      break;
    }
    llhttp_resume(&parser_);
    if (pause_ == Pause::trailers) {
      // The trailer section begins at the next byte, at the start of a line.
      section_start_ = chunk_offset_;
      after_cr_ = false;
      at_line_start_ = true;
      continue;
    }
    step.stop = pause_ == Pause::head ? (finish_head() ? Stop::head : Stop::error) : Stop::end;
    break;
  }
  sink_ = nullptr;
  return step;
}

bool RequestParser::read_target() noexcept {
  // Offsets into buf_, where the views are made once the buffer no longer grows.
  const std::string_view target = std::string_view(buf_).substr(target_, target_len_);
  if (target == "*") {
    if (parser_.method != HTTP_OPTIONS) {
      fail(RequestError::bad_request, "the target * is for OPTIONS only");
      return false;
    }
    path_ = target_;
    path_len_ = target_len_;
    return true;
  }
  if (!target.empty() && target[0] == '/') {
    path_ = target_;
    path_len_ = target_len_;
    return true;
  }
  // absolute-form: the scheme is the connection's (TLS or not), whatever the target says.
  size_t skip = 0;
  if (target.size() > 7 && equals_ignoring_case(target.substr(0, 7), "http://")) {
    skip = 7;
  } else if (target.size() > 8 && equals_ignoring_case(target.substr(0, 8), "https://")) {
    skip = 8;
  } else {
    fail(RequestError::bad_request, "request target is neither origin-form nor absolute-form");
    return false;
  }
  const std::string_view rest = target.substr(skip);
  const size_t authority_len = std::min(rest.find_first_of("/?#"), rest.size());
  const std::string_view authority = rest.substr(0, authority_len);
  if (!valid_authority(authority) || authority.find('@') != std::string_view::npos) {
    fail(RequestError::bad_request, "invalid authority in the request target");
    return false;
  }
  authority_ = target_ + skip;
  authority_len_ = authority_len;
  path_ = authority_ + authority_len;
  path_len_ = rest.size() - authority_len;
  if (path_len_ == 0 || buf_[path_] != '/') {
    // "http://host" or "http://host?query": the path is "/", the query (if any) after it.
    const size_t from = path_;
    path_ = buf_.size();
    buf_.push_back('/');
    buf_.append(buf_, from, path_len_);
    ++path_len_;
  }
  return true;
}

bool RequestParser::finish_head() noexcept {
  if (parser_.http_major != 1 || parser_.http_minor > 1) {
    fail(RequestError::version_not_supported, "HTTP version not supported");
    return false;
  }
  if (parser_.method == HTTP_CONNECT) {
    fail(RequestError::bad_request, "CONNECT is not served");
    return false;
  }
  head_.minor = parser_.http_minor;
  head_.head_method = parser_.method == HTTP_HEAD;
  head_.keep_alive = llhttp_should_keep_alive(&parser_) != 0;
  head_.has_body = (parser_.flags & F_CHUNKED) != 0 || parser_.content_length > 0;
  // Upgrade is not taken (the relay serves the request as HTTP/1.1 and drops the field): llhttp
  // would otherwise stop after the head and leave the body to another protocol.
  parser_.upgrade = 0;

  // read_target() may append to the buffer: the views are made after it.
  authority_ = authority_len_ = 0;
  if (!read_target()) return false;
  const std::string_view buf(buf_);
  head_.path = buf.substr(path_, path_len_);
  head_.authority = buf.substr(authority_, authority_len_);
  head_.method = buf.substr(method_, method_len_);

  // Connection names the fields that are for this hop only; its tokens are lowercased in place
  // (the field itself is never passed on).
  SmallVector<std::string_view, 8> hop_names;
  std::string_view host;
  size_t hosts = 0;
  for (const FieldSpan& span : spans_) {
    const std::string_view name = buf.substr(span.name, span.name_len);
    const FieldName f = classify_field(name);
    if (f == FieldName::host) {
      ++hosts;
      host = buf.substr(span.value, span.value_len);
    } else if (f == FieldName::connection) {
      char* value = buf_.data() + span.value;
      size_t i = 0;
      while (i < span.value_len) {
        while (i < span.value_len && (is_ows(value[i]) || value[i] == ','))
          ++i;
        const size_t start = i;
        while (i < span.value_len && value[i] != ',') {
          value[i] = lower(value[i]);
          ++i;
        }
        size_t stop = i;
        while (stop > start && is_ows(value[stop - 1]))
          --stop;
        if (stop > start) hop_names.push_back(buf.substr(span.value + start, stop - start));
      }
    } else if (name == "expect" && head_.minor == 1) {
      // An HTTP/1.0 server ignores Expect (RFC 9110 §10.1.1).
      if (!equals_ignoring_case(buf.substr(span.value, span.value_len), "100-continue")) {
        fail(RequestError::expectation_failed, "expectation other than 100-continue");
        return false;
      }
      head_.expect_continue = head_.has_body;
    }
  }
  if (hosts > 1) {
    fail(RequestError::bad_request, "more than one Host field");
    return false;
  }
  if (hosts == 1 && !valid_authority(host)) {
    fail(RequestError::bad_request, "invalid Host field");
    return false;
  }
  // RFC 9112 §3.2: every HTTP/1.1 request has Host, and an absolute-form target wins over it.
  if (hosts == 0 && (head_.minor == 1 || head_.authority.empty())) {
    fail(RequestError::bad_request, "no Host field");
    return false;
  }
  if (head_.authority.empty()) head_.authority = host;

  head_.fields.clear();
  for (const FieldSpan& span : spans_) {
    const std::string_view name = buf.substr(span.name, span.name_len);
    if (is_hop_by_hop(classify_field(name)) || name == "expect") continue;
    bool named = false;
    for (std::string_view hop : hop_names)
      named = named || hop == name;
    if (named) continue;
    head_.fields.push_back({name, buf.substr(span.value, span.value_len)});
  }
  return true;
}

void RequestParser::next() noexcept {
  if (buf_.capacity() > kept_capacity) {
    std::string().swap(buf_);
  } else {
    buf_.clear();
  }
  spans_.clear();
  head_.fields.clear();
  head_.method = head_.path = head_.authority = {};
  head_.minor = 1;
  head_.keep_alive = true;
  head_.has_body = head_.expect_continue = head_.head_method = false;
  element_ = Element::none;
  method_ = method_len_ = target_ = target_len_ = 0;
  path_ = path_len_ = authority_ = authority_len_ = 0;
  trailer_fields_ = 0;
  section_ = Section::none;
  error_ = RequestError::none;
}

}  // namespace grelay
