#include "h1/framing.h"

#include <cstdio>
#include <cstring>

namespace grelay {

const char* reason_phrase(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "";
  }
}

void append_status_line(ChunkChain& out, int status) {
  char line[64];
  const int n = std::snprintf(line, sizeof(line), "HTTP/1.1 %03d %s\r\n", status % 1000,
                              reason_phrase(status));
  out.append(line, static_cast<size_t>(n));
}

void append_field(ChunkChain& out, std::string_view name, std::string_view value) {
  out.append(name.data(), name.size());
  out.append(": ", 2);
  out.append(value.data(), value.size());
  out.append("\r\n", 2);
}

void append_chunk_size(ChunkChain& out, size_t length) {
  char line[24];
  const int n = std::snprintf(line, sizeof(line), "%zx\r\n", length);
  out.append(line, static_cast<size_t>(n));
}

void append_error_response(ChunkChain& out, int status, std::string_view text) {
  append_status_line(out, status);
  char head[128];
  const int n = std::snprintf(head, sizeof(head),
                              "content-type: text/plain\r\ncontent-length: %zu\r\n"
                              "connection: close\r\n\r\n",
                              text.size() + 1);
  out.append(head, static_cast<size_t>(n));
  out.append(text.data(), text.size());
  out.append("\n", 1);
}

bool safe_field_bytes(std::string_view bytes) noexcept {
  for (char c : bytes) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

}  // namespace grelay
