#include "h2/request_check.h"

#include <array>
#include <cstring>

namespace grelay {
namespace {

// Character classes, one bit each, looked up once per byte.
enum CharClass : uint8_t {
  name_char = 1 << 0,       // tchar without uppercase letters (RFC 9110 §5.6.2, RFC 9113 §8.2)
  token_char = 1 << 1,      // tchar (a method)
  value_char = 1 << 2,      // field-value octets: VCHAR, SP, HTAB, obs-text (RFC 9110 §5.5)
  path_char = 1 << 3,       // VCHAR and obs-text: no spaces or controls
  authority_char = 1 << 4,  // reg-name, IP literals and port characters (no userinfo '@')
  scheme_char = 1 << 5,     // ALPHA / DIGIT / "+" / "-" / "."
};

constexpr std::array<uint8_t, 256> make_classes() {
  std::array<uint8_t, 256> t{};
  constexpr std::string_view tchar_symbols = "!#$%&'*+-.^_`|~";
  // No '@': an authority of an http or https request must not carry userinfo (RFC 9113
  // §8.3.1), and it is all '@' could start.
  constexpr std::string_view authority_symbols = "-._~!$&'()*+,;=:[]%";
  for (int c = 0; c < 256; ++c) {
    uint8_t k = 0;
    const bool lower = c >= 'a' && c <= 'z';
    const bool upper = c >= 'A' && c <= 'Z';
    const bool digit = c >= '0' && c <= '9';
    const bool tsym = tchar_symbols.find(static_cast<char>(c)) != std::string_view::npos;
    if (lower || digit || tsym) k |= name_char;
    if (lower || upper || digit || tsym) k |= token_char;
    if (c == '\t' || (c >= 0x20 && c != 0x7f)) k |= value_char;
    if (c > 0x20 && c != 0x7f) k |= path_char;
    if (lower || upper || digit ||
        authority_symbols.find(static_cast<char>(c)) != std::string_view::npos) {
      k |= authority_char;
    }
    if (lower || upper || digit || c == '+' || c == '-' || c == '.') k |= scheme_char;
    t[static_cast<size_t>(c)] = k;
  }
  return t;
}

constexpr std::array<uint8_t, 256> classes = make_classes();

bool all_of(std::string_view s, CharClass k) noexcept {
  for (char c : s) {
    if (!(classes[static_cast<uint8_t>(c)] & k)) return false;
  }
  return true;
}

// True if a byte of |x| is below 0x20 or is 0x7f (bytes of 0x80 and up never count).
constexpr bool has_control(uint64_t x) noexcept {
  constexpr uint64_t ones = 0x0101010101010101ULL;
  constexpr uint64_t highs = 0x8080808080808080ULL;
  const uint64_t below_space = (x - ones * 0x20) & ~x & highs;
  const uint64_t del = x ^ (ones * 0x7f);
  const uint64_t is_del = (del - ones) & ~del & highs;
  return (below_space | is_del) != 0;
}

// True if every byte of |v| is a path_char: no control, space or DEL. Eight bytes at a time,
// the last word overlapping the one before it.
bool path_chars(std::string_view v) noexcept {
  if (v.size() < 8) return all_of(v, path_char);
  constexpr uint64_t ones = 0x0101010101010101ULL;
  for (size_t i = 0;; i += 8) {
    if (i + 8 > v.size()) i = v.size() - 8;
    uint64_t word;
    std::memcpy(&word, v.data() + i, 8);
    // A byte at or below 0x20 (bytes of 0x80 and up never count) or equal to 0x7f.
    const uint64_t low = (word - ones * 0x21) & ~word & (ones * 0x80);
    const uint64_t del = word ^ (ones * 0x7f);
    if ((low | ((del - ones) & ~del & (ones * 0x80))) != 0) return false;
    if (i + 8 == v.size()) return true;
  }
}

bool valid_value(std::string_view v) noexcept {
  if (v.empty()) return true;
  if (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' || v.back() == '\t') {
    return false;
  }
  if (v.size() < 8) return all_of(v, value_char);
  // Eight bytes at a time, the last word overlapping the one before it; a word with a control
  // byte in it is looked at byte by byte, as HTAB is the one control a value may hold.
  for (size_t i = 0;; i += 8) {
    if (i + 8 > v.size()) i = v.size() - 8;
    uint64_t word;
    std::memcpy(&word, v.data() + i, 8);
    if (has_control(word) && !all_of(v.substr(i, 8), value_char)) return false;
    if (i + 8 == v.size()) return true;
  }
}

bool equals_ignoring_case(std::string_view a, std::string_view lower) noexcept {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

// A content-length value: digits only, no sign, fits in int64. -1 if not.
int64_t parse_length(std::string_view v) noexcept {
  if (v.empty()) return -1;
  int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return -1;
    if (n > (INT64_MAX - (c - '0')) / 10) return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace

bool RequestCheck::first(Seen flag) noexcept {
  if (seen_ & flag) return false;
  seen_ |= flag;
  return true;
}

bool RequestCheck::on_field(FieldName f, std::string_view name, std::string_view value,
                            bool trailer) noexcept {
  switch (f) {
    case FieldName::method:
    case FieldName::scheme:
    case FieldName::path:
    case FieldName::authority:
    case FieldName::other_pseudo:
      if (trailer || (seen_ & regular)) return false;
      return on_pseudo(f, value);
    default:
      break;
  }
  seen_ |= regular;
  // The names the relay knows are valid; any other one is looked at here.
  if (f == FieldName::other && (name.empty() || !all_of(name, name_char))) return false;
  return on_regular(f, value);
}

bool RequestCheck::on_pseudo(FieldName f, std::string_view value) noexcept {
  constexpr bool bad = false;
  if (value.empty()) return bad;
  switch (f) {
    case FieldName::path:
      if (!first(path) || !path_chars(value)) return bad;
      if (value[0] == '/') {
        seen_ |= path_slash;
      } else if (value == "*") {
        seen_ |= path_asterisk;
      }
      return true;
    case FieldName::method:
      if (!first(method) || !all_of(value, token_char)) return bad;
      if (value.size() == 7) {
        if (value == "CONNECT") seen_ |= method_connect;
        if (value == "OPTIONS") seen_ |= method_options;
      }
      return true;
    case FieldName::scheme:
      if (!first(scheme) || !all_of(value, scheme_char)) return bad;
      if (!((value[0] >= 'a' && value[0] <= 'z') || (value[0] >= 'A' && value[0] <= 'Z'))) {
        return bad;
      }
      if (equals_ignoring_case(value, "http") || equals_ignoring_case(value, "https")) {
        seen_ |= scheme_http;
      }
      return true;
    case FieldName::authority:
      return first(authority) && all_of(value, authority_char);
    default:
      // :status belongs to responses; :protocol needs extended CONNECT, which the relay does
      // not offer; anything else is undefined.
      return bad;
  }
}

bool RequestCheck::on_regular(FieldName f, std::string_view value) noexcept {
  switch (f) {
    case FieldName::host:
      return !value.empty() && all_of(value, authority_char) && first(host);
    case FieldName::te:
      return valid_value(value) && equals_ignoring_case(value, "trailers");
    case FieldName::upgrade:
    case FieldName::connection:
    case FieldName::keep_alive:
    case FieldName::proxy_connection:
    case FieldName::transfer_encoding:
      return false;
    case FieldName::content_length:
      if (!valid_value(value) || content_length_ != -1) return false;
      content_length_ = parse_length(value);
      return content_length_ != -1;
    default:
      return valid_value(value);
  }
}

bool RequestCheck::on_headers_end() const noexcept {
  if (seen_ & method_connect) {
    // CONNECT names only the authority (RFC 9113 §8.5).
    return (seen_ & authority) && !(seen_ & (scheme | path));
  }
  constexpr uint16_t required = method | scheme | path;
  if ((seen_ & required) != required || !(seen_ & (authority | host))) return false;
  // For http and https targets the path is absolute, or "*" for a server-wide OPTIONS.
  if (seen_ & scheme_http) {
    return (seen_ & path_slash) || ((seen_ & method_options) && (seen_ & path_asterisk));
  }
  return true;
}

bool RequestCheck::on_data(size_t n) noexcept {
  body_length_ += n;
  return content_length_ == -1 || body_length_ <= static_cast<uint64_t>(content_length_);
}

bool RequestCheck::on_end() const noexcept {
  return content_length_ == -1 || body_length_ == static_cast<uint64_t>(content_length_);
}

}  // namespace grelay

namespace grelay {

ResponseCheck::Verdict ResponseCheck::on_field(FieldName f, std::string_view name,
                                               std::string_view value) noexcept {
  switch (f) {
    case FieldName::method:
    case FieldName::scheme:
    case FieldName::path:
    case FieldName::authority:
      return Verdict::malformed;
    case FieldName::other_pseudo: {
      // :status alone, once, first, in the answer's own blocks: three digits, and not 101
      // (HTTP/2 has no protocol switch).
      if (name != ":status" || (flags_ & (status_flag | regular_flag | final_received_flag)) ||
          value.size() != 3) {
        return Verdict::malformed;
      }
      int status = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return Verdict::malformed;
        status = status * 10 + (c - '0');
      }
      if (status == 101) return Verdict::malformed;
      status_ = static_cast<int16_t>(status);
      flags_ |= status_flag;
      return Verdict::pass;
    }
    default:
      break;
  }
  flags_ |= regular_flag;
  // The names the relay knows are valid; any other one is looked at here. A name with an
  // uppercase letter makes the answer malformed; any other invalid name or value only drops
  // the field.
  if (f == FieldName::other && (name.empty() || !all_of(name, name_char))) {
    for (char c : name) {
      if (c >= 'A' && c <= 'Z') return Verdict::malformed;
    }
    return Verdict::drop;
  }
  if (!valid_value(value)) return Verdict::drop;
  return on_regular(f, value);
}

ResponseCheck::Verdict ResponseCheck::on_regular(FieldName f, std::string_view value) noexcept {
  switch (f) {
    case FieldName::content_length:
      if (status_ == 204) {
        // A 204 answer has no content, so no content-length (RFC 9110 §8.6); `0`, which
        // says the same, is taken once and dropped.
        if (content_length_ != -1 || value != "0") return Verdict::malformed;
        content_length_ = 0;
        return Verdict::drop;
      }
      // Informational answers have no content either; nor may the field come twice.
      if (status_ / 100 == 1 || content_length_ != -1) return Verdict::malformed;
      content_length_ = parse_length(value);
      return content_length_ == -1 ? Verdict::malformed : Verdict::pass;
    case FieldName::upgrade:
    case FieldName::connection:
    case FieldName::keep_alive:
    case FieldName::proxy_connection:
    case FieldName::transfer_encoding:
      return Verdict::malformed;
    case FieldName::te:
      return equals_ignoring_case(value, "trailers") ? Verdict::pass : Verdict::malformed;
    default:
      return Verdict::pass;
  }
}

bool ResponseCheck::on_headers_end(bool end_stream) noexcept {
  if (flags_ & final_received_flag) {
    // Trailers: they end the stream (RFC 9113 §8.1).
    return end_stream && on_end();
  }
  if (!(flags_ & status_flag)) return false;
  if (status_ / 100 == 1) {
    // Informational: the final answer follows in another HEADERS block, which starts afresh.
    flags_ = expect_final_flag;
    status_ = -1;
    content_length_ = -1;
    return !end_stream;
  }
  flags_ = final_received_flag;
  if (status_ == 204 || status_ == 304) content_length_ = 0;
  return !end_stream || on_end();
}

bool ResponseCheck::on_data(size_t n) noexcept {
  body_length_ += n;
  return !(flags_ & expect_final_flag) &&
         (content_length_ == -1 || body_length_ <= static_cast<uint64_t>(content_length_));
}

bool ResponseCheck::on_end() const noexcept {
  return !(flags_ & expect_final_flag) &&
         (content_length_ == -1 || body_length_ == static_cast<uint64_t>(content_length_));
}

}  // namespace grelay
