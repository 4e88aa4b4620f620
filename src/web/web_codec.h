#pragma once

#include <cstddef>
#include <cstdint>

#include "core/chunk.h"

namespace grelay {

// The protocol-level pieces of the gRPC-Web and Connect front doors. Pure functions and small
// state machines: nothing here knows sockets, sessions or calls.

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

}  // namespace grelay
