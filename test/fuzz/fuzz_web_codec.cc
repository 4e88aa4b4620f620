// Fuzzes the web codecs (src/web/web_codec.h). Input: one byte that picks a split point, then
// a body. The base64 decoder must give the same result for the body in two pieces as in one,
// and agree with a group-by-group reading of RFC 4648; the body is also mapped into the base64
// alphabet (and '=') so that long valid texts are common. The encoder, fed the body in two
// pieces, must write plain padded base64 and decode back; two separately flushed pieces must
// decode as one body. The two slices of the body, either side of the split, go to
// parse_web_content_type, cors_origin_matches and connect_timeout_to_grpc_timeout, each held to
// properties of its own.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "core/chunk.h"
#include "core/grpc_timeout.h"
#include "web/web_codec.h"

namespace {

using grelay::ChunkChain;
using grelay::ChunkPool;

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

[[noreturn]] void violated(const char* what, std::string_view input) {
  std::fprintf(stderr, "fuzz_web_codec: %s (input '%.*s')\n", what, static_cast<int>(input.size()),
               input.data());
  std::abort();
}

const uint8_t* bytes(std::string_view s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

std::string contents(const ChunkChain& chain) {
  std::string out(chain.size(), '\0');
  chain.copy_out(out.data(), out.size());
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

// The sextet of |c|, 64 for '=', -1 outside the alphabet.
int sextet(char c) {
  for (int i = 0; i < 65; ++i) {
    if (alphabet[i] == c) return i;
  }
  return -1;
}

struct Decoded {
  bool ok = true;
  std::string out;
  bool boundary = true;
};

// RFC 4648 base64 of separately padded pieces, read one 4-character group at a time: a whole
// group is "xxxx", "xxx=" or "xx=="; a group cut by the end of the text must be the start of
// one. The output holds the groups before the first bad one.
Decoded reference_decode(std::string_view text) {
  Decoded d;
  for (size_t i = 0; i < text.size(); i += 4) {
    const std::string_view g = text.substr(i, 4);
    int v[4] = {0, 0, 0, 0};
    for (size_t k = 0; k < g.size(); ++k) {
      v[k] = sextet(g[k]);
      if (v[k] < 0) return {false, d.out, false};
    }
    // '=' may stand at 2 (then 3 must be '=' too) or at 3; never at 0 or 1.
    const bool pad2 = g.size() > 2 && v[2] == 64;
    const bool pad3 = g.size() > 3 && v[3] == 64;
    if (v[0] == 64 || v[1] == 64 || (pad2 && g.size() > 3 && !pad3)) {
      return {false, d.out, false};
    }
    if (g.size() < 4) {
      d.boundary = false;
      return d;
    }
    const uint32_t bits = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) |
                          (uint32_t(pad2 ? 0 : v[2]) << 6) | uint32_t(pad3 ? 0 : v[3]);
    d.out += static_cast<char>(bits >> 16);
    if (!pad2) d.out += static_cast<char>(bits >> 8);
    if (!pad3) d.out += static_cast<char>(bits);
  }
  return d;
}

std::string reference_encode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    const size_t n = std::min<size_t>(3, in.size() - i);
    uint32_t bits = 0;
    for (size_t k = 0; k < 3; ++k)
      bits = (bits << 8) | (k < n ? static_cast<uint8_t>(in[i + k]) : 0);
    for (size_t k = 0; k < 4; ++k)
      out += k <= n ? alphabet[(bits >> (18 - 6 * k)) & 0x3f] : '=';
  }
  return out;
}

Decoded decode_pieces(std::string_view text, size_t split) {
  ChunkPool pool;
  ChunkChain out(pool);
  grelay::Base64Decoder decoder;
  bool ok = decoder.decode(bytes(text), split, out);
  if (ok) ok = decoder.decode(bytes(text) + split, text.size() - split, out);
  if (ok == decoder.failed()) violated("decode() and failed() disagree", text);
  return {ok, contents(out), ok && decoder.at_group_boundary()};
}

void check_decode(std::string_view text, size_t split) {
  const Decoded whole = decode_pieces(text, text.size());
  const Decoded pieces = decode_pieces(text, split);
  if (whole.ok != pieces.ok || whole.out != pieces.out || whole.boundary != pieces.boundary) {
    violated("two pieces decode differently from one", text);
  }
  const Decoded expected = reference_decode(text);
  if (whole.ok != expected.ok || whole.out != expected.out || whole.boundary != expected.boundary) {
    violated("decode disagrees with the reference", text);
  }
}

void check_encode(std::string_view data, size_t split) {
  ChunkPool pool;
  ChunkChain out(pool);
  grelay::Base64Encoder encoder;
  encoder.encode(bytes(data), split, out);
  if (encoder.pending() > 2) violated("more than 2 bytes pending", data);
  encoder.encode(bytes(data) + split, data.size() - split, out);
  if (encoder.pending() != data.size() % 3) violated("pending count", data);
  encoder.flush(out);
  const std::string text = contents(out);
  if (text != reference_encode(data)) violated("encoding differs from the reference", data);
  const Decoded back = decode_pieces(text, split % (text.size() + 1));
  if (!back.ok || !back.boundary || back.out != data) violated("round trip", data);

  // Two separately padded pieces: one body.
  ChunkChain two(pool);
  encoder.encode(bytes(data), split, two);
  encoder.flush(two);
  encoder.encode(bytes(data) + split, data.size() - split, two);
  encoder.flush(two);
  const std::string joined = contents(two);
  const Decoded both = decode_pieces(joined, joined.size() / 2);
  if (!both.ok || !both.boundary || both.out != data) violated("flushed pieces", data);
}

void check_content_type(std::string_view ct) {
  const auto parsed = grelay::parse_web_content_type(ct);
  const std::string ct_lower = lower(ct);
  const auto folded = grelay::parse_web_content_type(ct_lower);
  if (parsed.has_value() != folded.has_value()) violated("content-type case matters", ct);
  if (!parsed) return;
  if (parsed->protocol != folded->protocol || lower(parsed->codec) != folded->codec) {
    violated("content-type case changes the result", ct);
  }
  if (parsed->codec.empty()) violated("empty codec", ct);
  // The response type names the same protocol and codec.
  const std::string response = grelay::web_response_content_type(parsed->protocol, parsed->codec);
  const auto again = grelay::parse_web_content_type(response);
  if (!again || again->protocol != parsed->protocol || again->codec != parsed->codec) {
    violated("response content-type reads back differently", ct);
  }
}

void check_cors(std::string_view pattern, std::string_view origin) {
  const bool match = grelay::cors_origin_matches(pattern, origin);
  if (pattern == "*" && !match) violated("'*' did not match", origin);
  if (grelay::cors_origin_matches(upper(pattern), lower(origin)) != match) {
    violated("CORS match depends on case", origin);
  }
  if (pattern.find('*') == std::string_view::npos &&
      !grelay::cors_origin_matches(pattern, pattern)) {
    violated("an exact pattern does not match itself", pattern);
  }
  // A wildcard needs at least one label: "https://*.d" never matches "https://d".
  const size_t scheme_end = pattern.find("://");
  if (match && scheme_end != std::string_view::npos && pattern.substr(scheme_end + 3, 2) == "*.") {
    const std::string bare = std::string(pattern.substr(0, scheme_end + 3)) +
                             std::string(pattern.substr(scheme_end + 5));
    if (origin.size() <= bare.size()) violated("wildcard matched without a label", origin);
    if (grelay::cors_origin_matches(pattern, bare))
      violated("wildcard matched the bare domain", bare);
  }
}

void check_timeout(std::string_view ms) {
  const auto converted = grelay::connect_timeout_to_grpc_timeout(ms);
  bool valid = !ms.empty() && ms.size() <= 10;
  uint64_t value = 0;
  for (char c : ms) {
    if (c < '0' || c > '9') valid = false;
    if (valid) value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (converted.has_value() != valid) violated("Connect-Timeout-Ms accepted differently", ms);
  if (!converted) return;
  const auto parsed = grelay::parse_grpc_timeout(*converted);
  if (!parsed) violated("converted timeout does not parse", *converted);
  const auto wanted = std::chrono::milliseconds(value);
  if (value <= 99'999'999 && *converted != std::to_string(value) + 'm') {
    violated("milliseconds that fit not kept as they are", *converted);
  }
  // Never earlier, and later by less than one unit of the chosen kind (a second at most).
  if (*parsed < wanted || *parsed - wanted >= std::chrono::seconds(1)) {
    violated("converted timeout off by a unit or more", *converted);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  // Every split point of a body up to 255 bytes is reachable; longer bodies spread them out.
  const size_t split = static_cast<size_t>(data[0]) * (body.size() + 1) / 256;

  check_decode(body, split);
  std::string mapped(body);
  for (char& c : mapped)
    c = alphabet[static_cast<uint8_t>(c) % 65];
  check_decode(mapped, split);
  check_encode(body, split);

  const std::string_view left = body.substr(0, split);
  const std::string_view right = body.substr(split);
  check_content_type(left);
  check_content_type(right);
  check_cors(left, right);
  check_timeout(left);
  check_timeout(right);
  return 0;
}
