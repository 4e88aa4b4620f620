#pragma once

#include <cstddef>
#include <string_view>

#include "core/chunk.h"

// What an HTTP/1.1 response is made of, written straight to a connection's output chain.

namespace grelay {

// The reason phrase of |status|, or "" for a code without a common one (the phrase is optional,
// RFC 9112 §4).
const char* reason_phrase(int status) noexcept;

// "HTTP/1.1 <status> <reason>\r\n".
void append_status_line(ChunkChain& out, int status);
// "<name>: <value>\r\n".
void append_field(ChunkChain& out, std::string_view name, std::string_view value);
// The size line of a chunk of |length| bytes: "<hex>\r\n".
void append_chunk_size(ChunkChain& out, size_t length);
// A whole answer of the relay's own: |status|, content-type text/plain, the body |text| and a
// line end, and connection: close (the connection closes after it).
void append_error_response(ChunkChain& out, int status, std::string_view text);

// Whether |bytes| may stand in a field line as they are: no CR, LF or NUL, which would end the
// line (or the head) early.
bool safe_field_bytes(std::string_view bytes) noexcept;

}  // namespace grelay
