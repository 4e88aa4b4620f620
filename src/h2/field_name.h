#pragma once

#include <cstdint>
#include <string_view>

namespace grelay {

// The header fields the relay treats specially, told apart once per field by name: the
// request checks, the Call's index of the fields it reads and the forwarding filter all
// switch on this instead of comparing the name again.
enum class FieldName : uint8_t {
  other,         // any other regular field
  other_pseudo,  // a pseudo-header field requests do not have (:status, :protocol, ...)
  method,
  scheme,
  path,
  authority,
  host,
  te,
  upgrade,
  connection,
  keep_alive,
  proxy_connection,
  transfer_encoding,
  content_length,
  content_type,
  grpc_timeout,
};

// |name| as received: case is not folded, so "Host" is `other` (and a malformed name).
inline FieldName classify_field(std::string_view name) noexcept {
  switch (name.size()) {
    case 2:
      if (name == "te") return FieldName::te;
      break;
    case 4:
      if (name == "host") return FieldName::host;
      break;
    case 5:
      if (name == ":path") return FieldName::path;
      break;
    case 7:
      if (name == ":method") return FieldName::method;
      if (name == ":scheme") return FieldName::scheme;
      if (name == "upgrade") return FieldName::upgrade;
      break;
    case 10:
      if (name == ":authority") return FieldName::authority;
      if (name == "connection") return FieldName::connection;
      if (name == "keep-alive") return FieldName::keep_alive;
      break;
    case 12:
      if (name == "content-type") return FieldName::content_type;
      if (name == "grpc-timeout") return FieldName::grpc_timeout;
      break;
    case 14:
      if (name == "content-length") return FieldName::content_length;
      break;
    case 16:
      if (name == "proxy-connection") return FieldName::proxy_connection;
      break;
    case 17:
      if (name == "transfer-encoding") return FieldName::transfer_encoding;
      break;
    default:
      break;
  }
  return !name.empty() && name[0] == ':' ? FieldName::other_pseudo : FieldName::other;
}

// Connection-specific fields that HTTP/2 forbids or that describe one hop only.
constexpr bool is_hop_by_hop(FieldName f) noexcept {
  switch (f) {
    case FieldName::te:
    case FieldName::host:
    case FieldName::upgrade:
    case FieldName::connection:
    case FieldName::keep_alive:
    case FieldName::proxy_connection:
    case FieldName::transfer_encoding:
      return true;
    default:
      return false;
  }
}

}  // namespace grelay
