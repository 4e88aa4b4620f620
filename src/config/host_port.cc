#include "config/host_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace grelay {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? a[i] + ('a' - 'A') : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? b[i] + ('a' - 'A') : b[i];
    if (x != y) return false;
  }
  return true;
}

// The canonical text of the IP literal |host| in |family|, or nullopt when it is not one.
std::optional<std::string> canonical_ip(const std::string& host, int family) {
  unsigned char bytes[sizeof(in6_addr)];
  if (inet_pton(family, host.c_str(), bytes) != 1) return std::nullopt;
  char out[INET6_ADDRSTRLEN];
  if (inet_ntop(family, bytes, out, sizeof(out)) == nullptr) return std::nullopt;
  return std::string(out);
}

// RFC 1123 host names: dot-separated labels of letters, digits and '-' (and '_', which
// service-discovery names use), 1-63 characters each, 253 in all; one trailing dot allowed.
bool is_dns_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      if (label == 0 || label > 63) return false;
      if (name[i - 1] == '-' || name[i - label] == '-') return false;
      label = 0;
      continue;
    }
    char c = name[i];
    if (!is_alnum(c) && c != '-' && c != '_') return false;
    ++label;
  }
  return true;
}

bool is_digits_and_dots(std::string_view s) {
  for (char c : s) {
    if (!is_digit(c) && c != '.') return false;
  }
  return true;
}

}  // namespace

std::optional<HostPort> parse_host_port(std::string_view text, HostRule rule, std::string* error) {
  if (text.empty()) {
    *error = "empty address (expected host:port)";
    return std::nullopt;
  }
  // A TOML escape can put a NUL or another control byte in the text; inet_pton would read
  // only the part before a NUL, so such an address must never get through.
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      *error = "address contains a control character";
      return std::nullopt;
    }
  }
  std::string host;
  std::string_view rest;
  bool bracketed = text[0] == '[';
  if (bracketed) {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      *error = "missing ']' after IPv6 address";
      return std::nullopt;
    }
    host = std::string(text.substr(1, close - 1));
    rest = text.substr(close + 1);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      *error = "missing port (expected host:port)";
      return std::nullopt;
    }
    host = std::string(text.substr(0, colon));
    rest = text.substr(colon);
    if (host.find(':') != std::string::npos) {
      *error = "IPv6 addresses must be in brackets, e.g. [::1]:50051";
      return std::nullopt;
    }
  }
  if (rest.empty() || rest[0] != ':') {
    *error = rest.empty() ? "missing port (expected host:port)" : "unexpected text after ']'";
    return std::nullopt;
  }
  std::string_view port_text = rest.substr(1);
  if (port_text.empty()) {
    *error = "missing port (expected host:port)";
    return std::nullopt;
  }
  uint32_t port = 0;
  for (char c : port_text) {
    if (!is_digit(c)) {
      *error = "port '" + std::string(port_text) + "' is not a number";
      return std::nullopt;
    }
    port = port * 10 + (c - '0');
    if (port > 65535) break;
  }
  // Port 0 asks the kernel for a free port: meaningful only for addresses we bind to.
  const uint32_t min_port = rule == HostRule::ip_or_localhost ? 0 : 1;
  if (port < min_port || port > 65535) {
    *error =
        min_port == 0 ? "port must be between 0 and 65535" : "port must be between 1 and 65535";
    return std::nullopt;
  }
  if (host.empty()) {
    *error = "missing host";
    return std::nullopt;
  }

  HostPort out;
  out.port = static_cast<uint16_t>(port);
  out.text = std::string(text);
  if (bracketed) {
    auto ip = canonical_ip(host, AF_INET6);
    if (!ip) {
      *error = "'" + host + "' is not an IPv6 address";
      return std::nullopt;
    }
    out.host = std::move(*ip);
    return out;
  }
  if (auto ip = canonical_ip(host, AF_INET)) {
    out.host = std::move(*ip);
    return out;
  }
  if (is_digits_and_dots(host)) {
    *error = "'" + host + "' is not an IPv4 address";
    return std::nullopt;
  }
  if (rule == HostRule::ip_or_localhost) {
    if (iequals(host, "localhost")) {
      out.host = "127.0.0.1";
      return out;
    }
    *error = "host must be an IP address or localhost";
    return std::nullopt;
  }
  if (!is_dns_name(host)) {
    *error = "'" + host + "' is not a valid host name";
    return std::nullopt;
  }
  out.host = std::move(host);
  return out;
}

}  // namespace grelay
