#include "config/config_rules.h"

#include "config/config_reader.h"
#include "config/duration.h"
#include "config/host_port.h"

namespace grelay {
namespace {

bool is_alnum(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

std::string range_error(std::string_view name, int64_t value, int64_t min, int64_t max) {
  if (value >= min && value <= max) return "";
  return std::string(name) + " must be between " + std::to_string(min) + " and " +
         std::to_string(max) + ", got " + std::to_string(value);
}

std::string duration_error(std::chrono::milliseconds duration) {
  if (duration.count() <= 0) return "must be greater than 0";
  if (duration > max_config_duration) return "must be at most 8760h (365 days)";
  return "";
}

std::string cluster_name_error(std::string_view name) {
  if (name.empty()) return "[[cluster]] name must not be empty";
  for (char c : name) {
    if (!is_alnum(c) && c != '.' && c != '_' && c != '-') {
      return "bad [[cluster]] name " + quoted(name) +
             ": use only letters, digits, '.', '_' and '-'";
    }
  }
  return "";
}

std::string route_name_error(std::string_view name) {
  bool ok = !name.empty();
  for (char c : name)
    ok = ok && (is_alnum(c) || c == '.' || c == '_' || c == '-' || c == '/');
  if (ok) return "";
  return "bad [[route]] name " + quoted(name) + ": use only letters, digits, '.', '_', '-' and '/'";
}

std::string route_match_error(RouteMatch kind, std::string_view text) {
  auto bad = [text](std::string_view word) {
    return "bad [[route]] " + std::string(word) + " " + quoted(text) + ": ";
  };
  switch (kind) {
    case RouteMatch::path: {
      size_t slash = text.find('/', 1);
      bool ok = text.size() >= 4 && text[0] == '/' && slash != std::string_view::npos &&
                slash > 1 && slash + 1 < text.size() &&
                text.find('/', slash + 1) == std::string_view::npos;
      return ok ? "" : bad("path") + "must look like /package.Service/Method";
    }
    case RouteMatch::service:
      if (text.empty()) return "[[route]] service must not be empty";
      if (text.find('/') != std::string_view::npos) {
        return bad("service") + "must not contain '/' (write \"package.Service\")";
      }
      return "";
    case RouteMatch::prefix:
      return text.empty() || text[0] != '/' ? bad("prefix") + "must start with '/'" : "";
    case RouteMatch::any:
      return "";
  }
  return "";
}

std::string authority_error(std::string_view authority) {
  bool ok = !authority.empty();
  for (unsigned char c : authority)
    ok = ok && c > ' ' && c != 0x7f && c != '/';
  if (ok) return "";
  return "bad [[route]] authority " + quoted(authority) + ": expected host or host:port";
}

std::string hash_header_error(std::string_view header) {
  bool ok = !header.empty() && header[0] != ':';
  for (unsigned char c : header)
    ok = ok && c > ' ' && c < 0x7f;
  if (ok) return "";
  return "bad [[cluster]] hash_header '" + std::string(header) + "'";
}

std::string cors_origin_error(std::string_view origin) {
  if (origin == "*") return "";
  const std::string bad = "bad cors origin '" + std::string(origin) +
                          "': use \"*\", \"https://host[:port]\" or \"https://*.domain\"";
  const size_t sep = origin.find("://");
  if (sep == std::string_view::npos || sep == 0) return bad;
  for (char c : origin.substr(0, sep))
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))
      return bad;
  std::string_view host = origin.substr(sep + 3);
  if (size_t colon = host.rfind(':'); colon != std::string_view::npos && host.back() != ']') {
    std::string_view port = host.substr(colon + 1);
    if (port.empty() || port.size() > 5) return bad;
    for (char c : port)
      if (c < '0' || c > '9') return bad;
    host = host.substr(0, colon);
  }
  if (host.substr(0, 2) == "*.") host.remove_prefix(2);
  if (host.empty()) return bad;
  for (char c : host)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '.' || c == '[' || c == ']' || c == ':'))
      return bad;
  return "";
}

std::string cors_header_error(std::string_view name) {
  bool ok = !name.empty();
  for (unsigned char c : name)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                c == '.' || c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' ||
                c == '*' || c == '+' || c == '^' || c == '`' || c == '|' || c == '~');
  if (ok) return "";
  return "bad header name '" + std::string(name) + "'";
}

std::string certificate_name_error(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 253;
  for (char c : name)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                c == '_' || c == '*');
  size_t star = name.rfind('*');
  ok = ok && (star == std::string_view::npos || (star == 0 && name.size() > 2 && name[1] == '.'));
  if (ok) return "";
  return "bad [[listener]] tls certs name " + quoted(name) + ": expected a DNS name, or *.domain";
}

std::string server_name_error(std::string_view name) {
  // Checked as the host of an endpoint would be (IPv6 without brackets).
  std::string probe = name.find(':') != std::string_view::npos ? "[" + std::string(name) + "]:1"
                                                               : std::string(name) + ":1";
  std::string error;
  if (!name.empty() && parse_host_port(probe, HostRule::ip_or_dns, &error).has_value()) return "";
  return "bad [[cluster]] tls server_name " + quoted(name) +
         ": expected a DNS name or an IP address";
}

std::string duplicate_error(std::string_view what, std::string_view name, std::string_view first) {
  return "duplicate " + std::string(what) + " " + quoted(name) + " (first " + std::string(first) +
         ")";
}

std::string unknown_cluster_error(std::string_view cluster,
                                  const std::vector<std::string_view>& names) {
  return "route names unknown cluster " + quoted(cluster) +
         (names.empty() ? " (no [[cluster]] defined)" : suggestion(cluster, names));
}

}  // namespace grelay
