#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/chunk.h"
#include "grelay/status.h"

namespace grelay {

// The protocol-level pieces of the gRPC-Web and Connect front doors: content types, the
// base64 of grpc-web-text bodies, the gRPC-Web trailers frame, Connect's errors, end of stream
// and timeout, and CORS origin matching. Pure functions and small state machines: nothing here
// knows sockets, sessions or calls.

// Which protocol a web call speaks (from its request content-type).
enum class WebProtocol : uint8_t { grpc_web, grpc_web_text, connect_unary, connect_stream };

// What a request's content-type says: the protocol, and the message codec named after the
// protocol's prefix. |codec| is "proto" or "json" (static strings, whatever case the request
// used) for those two codecs, and for bare "application/grpc-web" and
// "application/grpc-web-text"; any other codec is a view into the content-type, as written.
struct WebContentType {
  WebProtocol protocol;
  std::string_view codec;
};

// Reads a request content-type. Prefixes match case-insensitively; parameters after ';' and
// whitespace around the media type are ignored. The forms:
//   application/grpc-web, application/grpc-web+CODEC            grpc_web
//   application/grpc-web-text, application/grpc-web-text+CODEC  grpc_web_text
//   application/connect+CODEC                                   connect_stream
//   application/CODEC (any other token)                         connect_unary
// A subtype that starts with "grpc" and is none of the above (plain gRPC
// "application/grpc+proto", "application/grpc-webx"), "application/connect" without a codec,
// an empty or non-token codec, and every other type give nullopt.
std::optional<WebContentType> parse_web_content_type(std::string_view content_type) noexcept;

// The content-type a web response carries for |protocol| and |codec|:
// grpc_web -> "application/grpc-web+<codec>", grpc_web_text -> "application/grpc-web-text+<codec>",
// connect_unary -> "application/<codec>", connect_stream -> "application/connect+<codec>".
// A Connect unary error is always "application/json", whatever the codec.
std::string web_response_content_type(WebProtocol protocol, std::string_view codec);

// Streaming base64 decoder (RFC 4648 section 4 alphabet) for application/grpc-web-text request
// bodies. Input arrives in chunks of any size, cut anywhere, and a body is a concatenation of
// separately encoded pieces, so '=' or "==" may end any 4-character group and a new group may
// follow. Rejects a byte outside the alphabet (CR, LF and space included) and '=' where a
// group cannot end ("A===", "=AAA", or a data character after '=' within a group). Non-zero
// pad bits are accepted, as decoders in the wild accept them.
class Base64Decoder {
 public:
  // Decodes |len| bytes, appending the output to |out|. Returns false on invalid input, and
  // from then on (the decoder stays failed); what the valid groups before it decoded to has
  // been appended.
  bool decode(const uint8_t* data, size_t len, ChunkChain& out);
  // True when no partial group is pending: the body may end here.
  bool at_group_boundary() const noexcept { return count_ == 0; }
  bool failed() const noexcept { return failed_; }

 private:
  // Feeds one byte through the group state; appends a group's bytes to |out| when it ends.
  bool take(uint8_t c, ChunkChain& out);

  uint32_t bits_ = 0;    // the sextets of the pending group, the latest in the low bits
  uint8_t count_ = 0;    // characters of the pending group seen, '=' included
  bool padded_ = false;  // the pending group has had its first '=' ("AA=")
  bool failed_ = false;
};

// Streaming base64 encoder (RFC 4648 section 4, padded) for grpc-web-text response bodies:
// each encode() leaves up to 2 bytes pending; flush() writes them with padding. The
// translator flushes at the end of each gRPC message it forwards, so each message is a
// separately padded piece a client can decode as soon as it arrives.
class Base64Encoder {
 public:
  void encode(const uint8_t* data, size_t len, ChunkChain& out);
  // Writes the pending bytes as one padded group (nothing when none are pending).
  void flush(ChunkChain& out);
  size_t pending() const noexcept { return pending_len_; }

 private:
  uint8_t pending_[2] = {};
  uint8_t pending_len_ = 0;
};

// A field for the trailers frame and JSON builders. The views must outlive the call only.
struct WebField {
  std::string_view name;
  std::string_view value;
};

// Appends the gRPC-Web trailers frame: flag byte 0x80, 4-byte big-endian length, then
// "name:value\r\n" for each of the |n| fields. Names are written as given, and must be
// lowercase (HTTP/2 field names already are).
void append_grpc_web_trailers(ChunkChain& out, const WebField* fields, size_t n);

// Connect's name for |code| ("canceled", "unknown", ... "unauthenticated"); "" for OK. A code
// outside the gRPC range is "unknown".
std::string_view connect_code_name(StatusCode code) noexcept;

// The HTTP status a Connect unary error with |code| is sent with (the Connect protocol's
// table: canceled 499, deadline_exceeded 504, unimplemented 501, ...); 200 for OK, 500 for a
// code outside the gRPC range.
int connect_http_status(StatusCode code) noexcept;

// Appends the JSON Error object of a Connect unary error body or end-of-stream message:
// {"code":"unavailable","message":"..."}, "message" omitted when empty. |message| is the
// grpc-message already percent-decoded (percent_decode_grpc_message in core/percent.h). An
// error always names an error code, so an OK |code| is written as "unknown". |details_bin| is
// the answer's grpc-status-details-bin (a google.rpc.Status, base64): its details become the
// object's "details" ([{"type": full name, "value": unpadded base64}]), which clients decode
// into typed details; a value that is not a Status adds nothing.
void append_connect_error_json(std::string& out, StatusCode code, std::string_view message,
                               std::string_view details_bin = {});

// Appends the body of a Connect streaming end-of-stream message:
// {"error":{...},"metadata":{"k":["v",...]}}. "error" only when |code| is not OK; "metadata"
// only when |n| > 0, fields of the same name grouped in order into one array under the first
// one's place (a -bin field's value goes as its base64 text); "{}" when both are absent. The
// caller leaves grpc-status and grpc-message out of |fields|.
void append_connect_end_stream_json(std::string& out, StatusCode code, std::string_view message,
                                    const WebField* fields, size_t n,
                                    std::string_view details_bin = {});

// A Connect-Timeout-Ms value (1 to 10 ASCII digits) as a grpc-timeout value: "<ms>m", or when
// that needs more than 8 digits the coarsest unit that fits (S, M, H), rounded up so the
// deadline is never earlier. Returns nullopt for an empty value, a non-digit or more than
// 10 digits. "0" (outside Connect's grammar, which asks for a positive value) gives "0m": a
// deadline already passed, rather than none.
std::optional<std::string> connect_timeout_to_grpc_timeout(std::string_view ms) noexcept;

// CORS origin matching. |pattern| is "*" (every origin), an exact origin
// ("https://app.example.com", port included when the origin has one) compared
// case-insensitively, or a wildcard host "SCHEME://*.DOMAIN[:PORT]" matching an origin of the
// same scheme whose host is one or more non-empty labels followed by "." DOMAIN, and whose port
// is the pattern's (none when the pattern has none). "https://*.example.com" matches neither
// "https://example.com" nor "https://evil-example.com". A '*' anywhere else in a pattern is
// taken literally, so such a pattern matches no real origin.
bool cors_origin_matches(std::string_view pattern, std::string_view origin) noexcept;

}  // namespace grelay
