#include "web/web_codec.h"

#include <array>
#include <iterator>
#include <utility>

#include "core/json.h"

namespace grelay {

namespace {

char ascii_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// |s| starts with |prefix|, in any case.
bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}

// An RFC 9110 token character.
bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::optional<WebContentType> with_codec(WebProtocol protocol, std::string_view codec) noexcept {
  if (codec.empty()) return std::nullopt;
  for (char c : codec) {
    if (!is_tchar(c)) return std::nullopt;
  }
  // The two codecs every client speaks come back as static lowercase names, so the translator
  // compares them with == and answers with the canonical content-type.
  if (iequals(codec, "proto")) return WebContentType{protocol, "proto"};
  if (iequals(codec, "json")) return WebContentType{protocol, "json"};
  return WebContentType{protocol, codec};
}

// Base64 alphabet values; '=' and every byte outside the alphabet have a bit of 0xc0 set, so
// one OR over a group's four values tells whether the group is plain data.
constexpr uint8_t b64_pad = 0x40;
constexpr uint8_t b64_invalid = 0x80;
constexpr char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<uint8_t, 256> make_b64_table() {
  std::array<uint8_t, 256> table{};
  for (auto& v : table)
    v = b64_invalid;
  for (uint8_t i = 0; i < 64; ++i)
    table[static_cast<uint8_t>(b64_alphabet[i])] = i;
  table['='] = b64_pad;
  return table;
}

constexpr std::array<uint8_t, 256> b64_table = make_b64_table();

// Writes the 4 characters of the 3 bytes at |in| to |dst|.
inline void encode_group(const uint8_t* in, uint8_t* dst) noexcept {
  const uint32_t v = (uint32_t{in[0]} << 16) | (uint32_t{in[1]} << 8) | uint32_t{in[2]};
  dst[0] = static_cast<uint8_t>(b64_alphabet[v >> 18]);
  dst[1] = static_cast<uint8_t>(b64_alphabet[(v >> 12) & 0x3f]);
  dst[2] = static_cast<uint8_t>(b64_alphabet[(v >> 6) & 0x3f]);
  dst[3] = static_cast<uint8_t>(b64_alphabet[v & 0x3f]);
}

// Indexed by StatusCode.
constexpr std::string_view connect_code_names[] = {
    "",
    "canceled",
    "unknown",
    "invalid_argument",
    "deadline_exceeded",
    "not_found",
    "already_exists",
    "permission_denied",
    "resource_exhausted",
    "failed_precondition",
    "aborted",
    "out_of_range",
    "unimplemented",
    "internal",
    "unavailable",
    "data_loss",
    "unauthenticated",
};

// Indexed by StatusCode: the Connect protocol's error code table.
constexpr int connect_http_statuses[] = {
    200,  // ok
    499,  // canceled: Client Closed Request
    500,  // unknown
    400,  // invalid_argument
    504,  // deadline_exceeded
    404,  // not_found
    409,  // already_exists
    403,  // permission_denied
    429,  // resource_exhausted
    400,  // failed_precondition
    409,  // aborted
    400,  // out_of_range
    501,  // unimplemented
    500,  // internal
    503,  // unavailable
    500,  // data_loss
    401,  // unauthenticated
};

bool known_code(StatusCode code) noexcept {
  const auto index = static_cast<int>(code);
  return index >= 0 && index < static_cast<int>(std::size(connect_code_names));
}

// Base64 of either alphabet, padded or not, as -bin metadata values come: false when it is not.
bool decode_bin_value(std::string_view in, std::string& out) {
  while (!in.empty() && in.back() == '=')
    in.remove_suffix(1);
  uint32_t bits = 0;
  int count = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+' || c == '-')
      v = 62;
    else if (c == '/' || c == '_')
      v = 63;
    else
      return false;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    if (++count == 4) {
      out += static_cast<char>(bits >> 16);
      out += static_cast<char>(bits >> 8);
      out += static_cast<char>(bits);
      bits = 0;
      count = 0;
    }
  }
  if (count == 1) return false;
  if (count == 2) out += static_cast<char>(bits >> 4);
  if (count == 3) {
    out += static_cast<char>(bits >> 10);
    out += static_cast<char>(bits >> 2);
  }
  return true;
}

// Standard base64 without padding, as Connect writes error detail values.
void append_unpadded_base64(std::string& out, std::string_view in) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (uint32_t{static_cast<uint8_t>(in[i])} << 16) |
                       (uint32_t{static_cast<uint8_t>(in[i + 1])} << 8) |
                       static_cast<uint8_t>(in[i + 2]);
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (in.size() - i == 1) {
    const uint32_t v = uint32_t{static_cast<uint8_t>(in[i])} << 16;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
  } else if (in.size() - i == 2) {
    const uint32_t v = (uint32_t{static_cast<uint8_t>(in[i])} << 16) |
                       (uint32_t{static_cast<uint8_t>(in[i + 1])} << 8);
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
  }
}

// Protocol buffers wire format, as far as google.rpc.Status and google.protobuf.Any need.
struct WireReader {
  std::string_view in;

  bool varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
      const auto b = static_cast<uint8_t>(in.front());
      in.remove_prefix(1);
      v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }

  // The next field: its number, and for a length-delimited one its bytes; other wire types
  // are skipped. False at the end or on malformed input (|bad| says which).
  bool next(uint64_t& number, std::string_view& bytes, bool& delimited, bool& bad) {
    bad = false;
    if (in.empty()) return false;
    uint64_t tag;
    if (!varint(tag)) return bad = true, false;
    number = tag >> 3;
    delimited = false;
    switch (tag & 7) {
      case 0: {
        uint64_t ignored;
        if (!varint(ignored)) return bad = true, false;
        return true;
      }
      case 1:
        if (in.size() < 8) return bad = true, false;
        in.remove_prefix(8);
        return true;
      case 5:
        if (in.size() < 4) return bad = true, false;
        in.remove_prefix(4);
        return true;
      case 2: {
        uint64_t length;
        if (!varint(length) || length > in.size()) return bad = true, false;
        bytes = in.substr(0, static_cast<size_t>(length));
        in.remove_prefix(static_cast<size_t>(length));
        delimited = true;
        return true;
      }
      default:
        return bad = true, false;
    }
  }
};

// `,"details":[{"type":"...","value":"..."},...]` from a grpc-status-details-bin value (a
// google.rpc.Status); nothing when it holds no detail or is not one.
void append_details(std::string& out, std::string_view details_bin) {
  std::string status;
  if (details_bin.empty() || !decode_bin_value(details_bin, status)) return;
  std::string details;
  WireReader reader{status};
  uint64_t number;
  std::string_view bytes;
  bool delimited, bad;
  while (reader.next(number, bytes, delimited, bad)) {
    if (number != 3 || !delimited) continue;
    std::string_view type_url, value;
    WireReader any{bytes};
    uint64_t n;
    std::string_view b;
    bool d, any_bad;
    while (any.next(n, b, d, any_bad)) {
      if (n == 1 && d) type_url = b;
      if (n == 2 && d) value = b;
    }
    if (any_bad) return;
    // The type's full name: what follows the URL's last '/'.
    const size_t slash = type_url.rfind('/');
    if (slash != std::string_view::npos) type_url.remove_prefix(slash + 1);
    details += details.empty() ? "[" : ",";
    details += "{\"type\":";
    append_json_string(details, type_url);
    details += ",\"value\":\"";
    append_unpadded_base64(details, value);
    details += "\"}";
  }
  if (bad || details.empty()) return;
  out += ",\"details\":";
  out += details;
  out += ']';
}

void append_error_object(std::string& out, StatusCode code, std::string_view message,
                         std::string_view details_bin) {
  std::string_view name = connect_code_name(code);
  if (name.empty()) name = "unknown";
  out += "{\"code\":\"";
  out += name;
  out += '"';
  if (!message.empty()) {
    out += ",\"message\":";
    append_json_string(out, message);
  }
  append_details(out, details_bin);
  out += '}';
}

// One label of a host name: letters, digits and '-'.
bool is_label_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

// |labels| is one or more non-empty labels separated by '.'.
bool is_label_sequence(std::string_view labels) noexcept {
  if (labels.empty() || labels.front() == '.' || labels.back() == '.') return false;
  char prev = '\0';
  for (char c : labels) {
    if (c == '.') {
      if (prev == '.') return false;
    } else if (!is_label_char(c)) {
      return false;
    }
    prev = c;
  }
  return true;
}

}  // namespace

std::optional<WebContentType> parse_web_content_type(std::string_view content_type) noexcept {
  // The forms clients send, as they send them: read without folding case or looking for
  // parameters, since every call on a web listener asks.
  static constexpr std::pair<std::string_view, WebContentType> common[] = {
      {"application/grpc-web+proto", {WebProtocol::grpc_web, "proto"}},
      {"application/grpc-web", {WebProtocol::grpc_web, "proto"}},
      {"application/grpc-web-text", {WebProtocol::grpc_web_text, "proto"}},
      {"application/grpc-web-text+proto", {WebProtocol::grpc_web_text, "proto"}},
      {"application/proto", {WebProtocol::connect_unary, "proto"}},
      {"application/json", {WebProtocol::connect_unary, "json"}},
      {"application/connect+proto", {WebProtocol::connect_stream, "proto"}},
      {"application/connect+json", {WebProtocol::connect_stream, "json"}},
  };
  for (const auto& [text, type] : common) {
    if (content_type == text) return type;
  }
  if (content_type == "application/grpc" || content_type == "application/grpc+proto") {
    return std::nullopt;
  }
  std::string_view type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && is_ows(type.front()))
    type.remove_prefix(1);
  while (!type.empty() && is_ows(type.back()))
    type.remove_suffix(1);
  constexpr std::string_view application = "application/";
  if (!istarts_with(type, application)) return std::nullopt;
  const std::string_view subtype = type.substr(application.size());

  // Every subtype starting "grpc" belongs to gRPC: only the gRPC-Web ones are web calls. The
  // longer prefix goes first, so that "grpc-web-text" is not read as "grpc-web" plus junk.
  if (istarts_with(subtype, "grpc")) {
    constexpr std::pair<std::string_view, WebProtocol> grpc_web_prefixes[] = {
        {"grpc-web-text", WebProtocol::grpc_web_text},
        {"grpc-web", WebProtocol::grpc_web},
    };
    for (const auto& [prefix, protocol] : grpc_web_prefixes) {
      if (!istarts_with(subtype, prefix)) continue;
      const std::string_view rest = subtype.substr(prefix.size());
      if (rest.empty()) return WebContentType{protocol, "proto"};
      if (rest.front() == '+') return with_codec(protocol, rest.substr(1));
    }
    return std::nullopt;
  }
  if (istarts_with(subtype, "connect")) {
    const std::string_view rest = subtype.substr(std::string_view("connect").size());
    if (rest.empty()) return std::nullopt;
    if (rest.front() == '+') return with_codec(WebProtocol::connect_stream, rest.substr(1));
  }
  return with_codec(WebProtocol::connect_unary, subtype);
}

std::string web_response_content_type(WebProtocol protocol, std::string_view codec) {
  std::string_view prefix;
  switch (protocol) {
    case WebProtocol::grpc_web:
      prefix = "application/grpc-web+";
      break;
    case WebProtocol::grpc_web_text:
      prefix = "application/grpc-web-text+";
      break;
    case WebProtocol::connect_unary:
      prefix = "application/";
      break;
    case WebProtocol::connect_stream:
      prefix = "application/connect+";
      break;
  }
  std::string out;
  out.reserve(prefix.size() + codec.size());
  out += prefix;
  out += codec;
  return out;
}

bool Base64Decoder::take(uint8_t c, ChunkChain& out) {
  const uint8_t v = b64_table[c];
  if (v < 64) {
    if (padded_) return false;  // "AA=A"
    bits_ = (bits_ << 6) | v;
    if (++count_ == 4) {
      const uint8_t bytes[3] = {static_cast<uint8_t>(bits_ >> 16), static_cast<uint8_t>(bits_ >> 8),
                                static_cast<uint8_t>(bits_)};
      out.append(bytes, 3);
      bits_ = 0;
      count_ = 0;
    }
    return true;
  }
  if (v != b64_pad || count_ < 2) return false;  // not base64, or "=AAA", "A==="
  if (count_ == 2) {                             // "AA=": one more '=' must end the group
    padded_ = true;
    count_ = 3;
    return true;
  }
  // count_ == 3: "AA==" holds 12 bits, one byte; "AAA=" holds 18 bits, two bytes. The bits
  // past the last whole byte are dropped, zero or not.
  if (padded_) {
    const uint8_t byte = static_cast<uint8_t>(bits_ >> 4);
    out.append(&byte, 1);
  } else {
    const uint8_t bytes[2] = {static_cast<uint8_t>(bits_ >> 10), static_cast<uint8_t>(bits_ >> 2)};
    out.append(bytes, 2);
  }
  bits_ = 0;
  count_ = 0;
  padded_ = false;
  return true;
}

bool Base64Decoder::decode(const uint8_t* data, size_t len, ChunkChain& out) {
  if (failed_) return false;
  const uint8_t* p = data;
  const uint8_t* const end = data + len;
  // A group the previous call left partial.
  while (p < end && count_ != 0) {
    if (!take(*p++, out)) {
      failed_ = true;
      return false;
    }
  }
  // Whole groups of data go through the table four at a time straight into the chain's free
  // space. A group with '=' or an invalid byte, and the group that meets the end of a chunk
  // with fewer than 3 bytes free (once a chunk), go through take() instead.
  while (end - p >= 4) {
    auto [dst, room] = out.reserve();
    size_t written = 0;
    while (end - p >= 4 && room - written >= 3) {
      const uint32_t a = b64_table[p[0]], b = b64_table[p[1]], c = b64_table[p[2]],
                     d = b64_table[p[3]];
      if (((a | b | c | d) & (b64_pad | b64_invalid)) != 0) break;
      const uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
      dst[written] = static_cast<uint8_t>(v >> 16);
      dst[written + 1] = static_cast<uint8_t>(v >> 8);
      dst[written + 2] = static_cast<uint8_t>(v);
      written += 3;
      p += 4;
    }
    out.commit(written);
    if (end - p < 4) break;
    for (int i = 0; i < 4; ++i) {
      if (!take(p[i], out)) {
        failed_ = true;
        return false;
      }
    }
    p += 4;
  }
  // The start of a group the next call finishes.
  while (p < end) {
    if (!take(*p++, out)) {
      failed_ = true;
      return false;
    }
  }
  return true;
}

void Base64Encoder::encode(const uint8_t* data, size_t len, ChunkChain& out) {
  if (len == 0) return;
  // Complete the group the previous call left pending.
  if (pending_len_ > 0) {
    uint8_t group[3] = {pending_[0], pending_[1], 0};
    while (pending_len_ < 3 && len > 0) {
      group[pending_len_++] = *data++;
      --len;
    }
    if (pending_len_ < 3) {
      pending_[0] = group[0];
      pending_[1] = group[1];
      return;
    }
    uint8_t chars[4];
    encode_group(group, chars);
    out.append(chars, 4);
    pending_len_ = 0;
  }
  // Whole groups straight into the chain's free space; a chunk whose free space is not a
  // multiple of 4 takes its last group through append().
  while (len >= 3) {
    auto [dst, room] = out.reserve();
    size_t written = 0;
    while (len >= 3 && room - written >= 4) {
      encode_group(data, dst + written);
      written += 4;
      data += 3;
      len -= 3;
    }
    out.commit(written);
    if (len < 3) break;
    uint8_t chars[4];
    encode_group(data, chars);
    out.append(chars, 4);
    data += 3;
    len -= 3;
  }
  for (size_t i = 0; i < len; ++i)
    pending_[i] = data[i];
  pending_len_ = static_cast<uint8_t>(len);
}

void Base64Encoder::flush(ChunkChain& out) {
  if (pending_len_ == 0) return;
  const uint8_t group[3] = {pending_[0], pending_len_ == 2 ? pending_[1] : uint8_t{0}, 0};
  uint8_t chars[4];
  encode_group(group, chars);
  chars[3] = '=';
  if (pending_len_ == 1) chars[2] = '=';
  out.append(chars, 4);
  pending_len_ = 0;
}

void append_grpc_web_trailers(ChunkChain& out, const WebField* fields, size_t n) {
  size_t len = 0;
  for (size_t i = 0; i < n; ++i)
    len += fields[i].name.size() + 1 + fields[i].value.size() + 2;
  const auto len32 = static_cast<uint32_t>(len);
  const uint8_t header[5] = {0x80, static_cast<uint8_t>(len32 >> 24),
                             static_cast<uint8_t>(len32 >> 16), static_cast<uint8_t>(len32 >> 8),
                             static_cast<uint8_t>(len32)};
  out.append(header, sizeof(header));
  for (size_t i = 0; i < n; ++i) {
    out.append(fields[i].name.data(), fields[i].name.size());
    out.append(":", 1);
    out.append(fields[i].value.data(), fields[i].value.size());
    out.append("\r\n", 2);
  }
}

std::string_view connect_code_name(StatusCode code) noexcept {
  if (!known_code(code)) return "unknown";
  return connect_code_names[static_cast<int>(code)];
}

int connect_http_status(StatusCode code) noexcept {
  if (!known_code(code)) return 500;
  return connect_http_statuses[static_cast<int>(code)];
}

void append_connect_error_json(std::string& out, StatusCode code, std::string_view message,
                               std::string_view details_bin) {
  append_error_object(out, code, message, details_bin);
}

void append_connect_end_stream_json(std::string& out, StatusCode code, std::string_view message,
                                    const WebField* fields, size_t n,
                                    std::string_view details_bin) {
  out += '{';
  if (code != StatusCode::ok) {
    out += "\"error\":";
    append_error_object(out, code, message, details_bin);
  }
  if (n > 0) {
    if (code != StatusCode::ok) out += ',';
    out += "\"metadata\":{";
    // Each name once, where it first appears, with the values of all its fields in order.
    // Quadratic in the number of fields, which the backend's header limits keep small.
    bool first_key = true;
    for (size_t i = 0; i < n; ++i) {
      bool seen = false;
      for (size_t j = 0; j < i && !seen; ++j)
        seen = fields[j].name == fields[i].name;
      if (seen) continue;
      if (!first_key) out += ',';
      first_key = false;
      append_json_string(out, fields[i].name);
      out += ":[";
      append_json_string(out, fields[i].value);
      for (size_t j = i + 1; j < n; ++j) {
        if (fields[j].name != fields[i].name) continue;
        out += ',';
        append_json_string(out, fields[j].value);
      }
      out += ']';
    }
    out += '}';
  }
  out += '}';
}

std::optional<std::string> connect_timeout_to_grpc_timeout(std::string_view ms) noexcept {
  constexpr size_t max_connect_digits = 10;
  if (ms.empty() || ms.size() > max_connect_digits) return std::nullopt;
  uint64_t value = 0;  // at most 9999999999: no overflow
  for (char c : ms) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  // grpc-timeout allows 8 digits. Every result is at most 9 characters, within the
  // std::string small buffer, so nothing here allocates.
  constexpr uint64_t max_grpc_value = 99'999'999;
  if (value <= max_grpc_value) return std::to_string(value) + 'm';
  struct Unit {
    char symbol;
    uint64_t milliseconds;
  };
  constexpr Unit coarser_units[] = {{'S', 1'000}, {'M', 60'000}, {'H', 3'600'000}};
  for (const Unit& unit : coarser_units) {
    const uint64_t rounded_up = (value + unit.milliseconds - 1) / unit.milliseconds;
    if (rounded_up <= max_grpc_value) return std::to_string(rounded_up) + unit.symbol;
  }
  return "99999999H";  // unreachable with 10 digits: 9999999999 ms is 10000000S
}

bool cors_origin_matches(std::string_view pattern, std::string_view origin) noexcept {
  if (pattern == "*") return true;
  constexpr std::string_view scheme_end = "://";
  const size_t scheme_len = pattern.find(scheme_end);
  if (scheme_len != std::string_view::npos &&
      pattern.substr(scheme_len + scheme_end.size(), 2) == "*.") {
    // "https://*.example.com[:port]": scheme and "://" as in the pattern, then labels, then
    // ".example.com[:port]" to the end.
    const size_t host_begin = scheme_len + scheme_end.size();
    if (origin.size() <= host_begin ||
        !iequals(origin.substr(0, host_begin), pattern.substr(0, host_begin))) {
      return false;
    }
    const std::string_view suffix = pattern.substr(host_begin + 1);  // ".example.com[:port]"
    const std::string_view host = origin.substr(host_begin);
    if (host.size() <= suffix.size()) return false;
    if (!iequals(host.substr(host.size() - suffix.size()), suffix)) return false;
    return is_label_sequence(host.substr(0, host.size() - suffix.size()));
  }
  return iequals(pattern, origin);
}

}  // namespace grelay
