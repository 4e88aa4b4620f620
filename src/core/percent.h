#pragma once

#include <string>
#include <string_view>

namespace grelay {

// Percent-encodes |message| for the `grpc-message` header, as the gRPC HTTP/2 protocol
// specifies: bytes outside 0x20-0x7E, and '%' itself, become "%XX" (upper-case hex). A
// multi-byte UTF-8 character becomes one "%XX" per byte.
std::string percent_encode_grpc_message(std::string_view message);

// Decodes a `grpc-message` value. Lenient, as the spec asks of receivers: a '%' not followed
// by two hex digits (either case) is kept as it is, and other bytes pass through unchanged.
std::string percent_decode_grpc_message(std::string_view text);

}  // namespace grelay
