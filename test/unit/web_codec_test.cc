#include "web/web_codec.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

using grelay::Base64Decoder;
using grelay::Base64Encoder;
using grelay::chunk_size;
using grelay::ChunkChain;
using grelay::ChunkPool;

namespace {

std::string contents(const ChunkChain& chain) {
  std::string out(chain.size(), '\0');
  REQUIRE(chain.copy_out(out.data(), out.size()) == chain.size());
  return out;
}

const uint8_t* bytes(std::string_view s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

// A plain padded base64 encoding, written independently of Base64Encoder.
std::string reference_base64(std::string_view in) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const auto a = static_cast<unsigned char>(in[i]), b = static_cast<unsigned char>(in[i + 1]),
               c = static_cast<unsigned char>(in[i + 2]);
    out += alphabet[a >> 2];
    out += alphabet[((a & 3) << 4) | (b >> 4)];
    out += alphabet[((b & 15) << 2) | (c >> 6)];
    out += alphabet[c & 63];
  }
  if (in.size() - i == 1) {
    const auto a = static_cast<unsigned char>(in[i]);
    out += alphabet[a >> 2];
    out += alphabet[(a & 3) << 4];
    out += "==";
  } else if (in.size() - i == 2) {
    const auto a = static_cast<unsigned char>(in[i]), b = static_cast<unsigned char>(in[i + 1]);
    out += alphabet[a >> 2];
    out += alphabet[((a & 3) << 4) | (b >> 4)];
    out += alphabet[(b & 15) << 2];
    out += '=';
  }
  return out;
}

// |n| bytes in which every byte value occurs.
std::string pattern(size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i)
    out[i] = static_cast<char>(i * 167 + i / 256);
  return out;
}

// Decodes |text| handed over in pieces of |step| bytes; nullopt when the decoder rejects it.
std::optional<std::string> decode_in_steps(std::string_view text, size_t step) {
  ChunkPool pool;
  ChunkChain out(pool);
  Base64Decoder decoder;
  for (size_t i = 0; i < text.size(); i += step) {
    const size_t n = std::min(step, text.size() - i);
    if (!decoder.decode(bytes(text) + i, n, out)) return std::nullopt;
  }
  return contents(out);
}

// Decodes |text| in one call; nullopt when the decoder rejects it.
std::optional<std::string> decode(std::string_view text) {
  return decode_in_steps(text, text.empty() ? 1 : text.size());
}

// Encodes |data| handed over in pieces of |step| bytes, then flushes.
std::string encode_in_steps(std::string_view data, size_t step) {
  ChunkPool pool;
  ChunkChain out(pool);
  Base64Encoder encoder;
  for (size_t i = 0; i < data.size(); i += step)
    encoder.encode(bytes(data) + i, std::min(step, data.size() - i), out);
  encoder.flush(out);
  return contents(out);
}

bool in_alphabet(int c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

}  // namespace

TEST_CASE("Base64Decoder decodes the RFC 4648 test vectors") {
  CHECK(decode("") == "");
  CHECK(decode("Zg==") == "f");
  CHECK(decode("Zm8=") == "fo");
  CHECK(decode("Zm9v") == "foo");
  CHECK(decode("Zm9vYg==") == "foob");
  CHECK(decode("Zm9vYmE=") == "fooba");
  CHECK(decode("Zm9vYmFy") == "foobar");
  CHECK(decode("+/+/") == "\xfb\xff\xbf");
}

TEST_CASE("Base64Decoder gives the same bytes whatever the size of the pieces") {
  const std::string data = pattern(1000);
  const std::string text = reference_base64(data);
  for (size_t step = 1; step <= 64; ++step) {
    CAPTURE(step);
    CHECK(decode_in_steps(text, step) == data);
  }
  CHECK(decode_in_steps(text, 1001) == data);
}

TEST_CASE("Base64Decoder decodes a body of separately padded pieces cut at every point") {
  // "a", "bc" and "def" encoded one by one: "YQ==" "YmM=" "ZGVm".
  const std::string text = reference_base64("a") + reference_base64("bc") + reference_base64("def");
  REQUIRE(text == "YQ==YmM=ZGVm");
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); ++j) {
      CAPTURE(i);
      CAPTURE(j);
      ChunkPool pool;
      ChunkChain out(pool);
      Base64Decoder decoder;
      CHECK(decoder.decode(bytes(text), i, out));
      CHECK(decoder.decode(bytes(text) + i, j - i, out));
      CHECK(decoder.decode(bytes(text) + j, text.size() - j, out));
      CHECK(decoder.at_group_boundary());
      CHECK(contents(out) == "abcdef");
    }
  }
  for (size_t step = 1; step <= text.size(); ++step) {
    CAPTURE(step);
    CHECK(decode_in_steps(text, step) == "abcdef");
  }
}

TEST_CASE("Base64Decoder decodes bodies spanning several chunks") {
  // Sizes around whole chunks of output, so that groups meet the end of a chunk at each of the
  // three offsets a 3-byte group can have.
  for (size_t n :
       {chunk_size - 1, chunk_size, chunk_size + 1, 3 * chunk_size + 2, size_t{100'000}}) {
    CAPTURE(n);
    const std::string data = pattern(n);
    const std::string text = reference_base64(data);
    CHECK(decode(text) == data);
    CHECK(decode_in_steps(text, 7) == data);
    CHECK(decode_in_steps(text, 4096) == data);
  }
}

TEST_CASE("Base64Decoder appends after what the chain holds, at any tail offset") {
  for (size_t prefix : {size_t{0}, size_t{1}, size_t{2}, chunk_size - 2, chunk_size - 1}) {
    CAPTURE(prefix);
    ChunkPool pool;
    ChunkChain out(pool);
    const std::string head(prefix, 'x');
    out.append(head.data(), head.size());
    const std::string data = pattern(50'000);
    const std::string text = reference_base64(data);
    Base64Decoder decoder;
    CHECK(decoder.decode(bytes(text), text.size(), out));
    CHECK(contents(out) == head + data);
  }
}

TEST_CASE("Base64Decoder rejects every byte outside the alphabet, at every group position") {
  for (int c = 0; c < 256; ++c) {
    if (in_alphabet(c) || c == '=') continue;
    for (size_t pos = 0; pos < 4; ++pos) {
      CAPTURE(c);
      CAPTURE(pos);
      std::string text = "Zm9vYmFy";
      text[4 + pos] = static_cast<char>(c);
      CHECK(decode(text) == std::nullopt);
      CHECK(decode_in_steps(text, 1) == std::nullopt);
    }
  }
}

TEST_CASE("Base64Decoder rejects line breaks, spaces and the URL-safe alphabet") {
  CHECK(decode("Zm9v\r\nYmFy") == std::nullopt);
  CHECK(decode("Zm9v\nYmFy") == std::nullopt);
  CHECK(decode("Zm9v YmFy") == std::nullopt);
  CHECK(decode("Zm9v\t") == std::nullopt);
  CHECK(decode("-_-_") == std::nullopt);
}

TEST_CASE("Base64Decoder rejects '=' where a group cannot end") {
  CHECK(decode("=AAA") == std::nullopt);
  CHECK(decode("====") == std::nullopt);
  CHECK(decode("A===") == std::nullopt);
  CHECK(decode("A=") == std::nullopt);
  CHECK(decode("AA=A") == std::nullopt);
  CHECK(decode("Zm9v=AAA") == std::nullopt);
  CHECK(decode("Zg===") == std::nullopt);  // a third '=' starts a group with '='
  CHECK(decode("Zm8==") == std::nullopt);
  // Cut between the two '=': the second half still has to be '='.
  ChunkPool pool;
  ChunkChain out(pool);
  Base64Decoder decoder;
  CHECK(decoder.decode(bytes("Zg="), 3, out));
  CHECK(!decoder.decode(bytes("A"), 1, out));
}

TEST_CASE("Base64Decoder stays failed after invalid input") {
  ChunkPool pool;
  ChunkChain out(pool);
  Base64Decoder decoder;
  CHECK(!decoder.failed());
  CHECK(decoder.decode(bytes("Zm9v"), 4, out));
  CHECK(!decoder.decode(bytes("Zm\n"), 3, out));
  CHECK(decoder.failed());
  CHECK(!decoder.decode(bytes("YmFy"), 4, out));
  CHECK(decoder.failed());
  CHECK(contents(out) == "foo");  // what came before the bad byte, nothing after
}

TEST_CASE("Base64Decoder accepts non-zero pad bits") {
  CHECK(decode("Zh==") == "f");   // "Zg==" with the 4 pad bits set
  CHECK(decode("Zm9=") == "fo");  // "Zm8=" with the 2 pad bits set
  CHECK(decode("//==") == "\xff");
}

TEST_CASE("Base64Decoder::at_group_boundary is true only between whole groups") {
  ChunkPool pool;
  ChunkChain out(pool);
  Base64Decoder decoder;
  CHECK(decoder.at_group_boundary());
  const std::string_view text = "Zm9vZg==Zm8=";
  const bool expected[] = {false, false, false, true,  false, false,
                           false, true,  false, false, false, true};
  for (size_t i = 0; i < text.size(); ++i) {
    CAPTURE(i);
    REQUIRE(decoder.decode(bytes(text) + i, 1, out));
    CHECK(decoder.at_group_boundary() == expected[i]);
  }
  CHECK(contents(out) == "fooffo");
}

TEST_CASE("Base64Encoder writes the RFC 4648 test vectors after flush") {
  CHECK(encode_in_steps("", 1) == "");
  CHECK(encode_in_steps("f", 1) == "Zg==");
  CHECK(encode_in_steps("fo", 1) == "Zm8=");
  CHECK(encode_in_steps("foo", 1) == "Zm9v");
  CHECK(encode_in_steps("foob", 1) == "Zm9vYg==");
  CHECK(encode_in_steps("fooba", 1) == "Zm9vYmE=");
  CHECK(encode_in_steps("foobar", 1) == "Zm9vYmFy");
  CHECK(encode_in_steps("\xfb\xff\xbf", 3) == "+/+/");
}

TEST_CASE("Base64Encoder keeps up to 2 bytes pending until flush") {
  ChunkPool pool;
  ChunkChain out(pool);
  Base64Encoder encoder;
  CHECK(encoder.pending() == 0);
  encoder.encode(bytes("f"), 1, out);
  CHECK(encoder.pending() == 1);
  CHECK(out.size() == 0);
  encoder.encode(bytes("o"), 1, out);
  CHECK(encoder.pending() == 2);
  CHECK(out.size() == 0);
  encoder.encode(bytes("ob"), 2, out);
  CHECK(encoder.pending() == 1);
  CHECK(contents(out) == "Zm9v");
  encoder.flush(out);
  CHECK(encoder.pending() == 0);
  CHECK(contents(out) == "Zm9vYg==");
  encoder.flush(out);  // nothing pending: nothing written
  CHECK(contents(out) == "Zm9vYg==");
}

TEST_CASE("Base64Encoder output does not depend on how the input is cut") {
  for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{1000}, 3 * chunk_size + 1}) {
    const std::string data = pattern(n);
    const std::string expected = reference_base64(data);
    for (size_t step : {size_t{1}, size_t{2}, size_t{4}, size_t{5}, size_t{4097}, n + 1}) {
      CAPTURE(n);
      CAPTURE(step);
      CHECK(encode_in_steps(data, step) == expected);
    }
  }
}

TEST_CASE("Base64Encoder round-trips through Base64Decoder, flushed piece by piece") {
  // The translator flushes after each message: the body is a run of padded pieces.
  const std::string data = pattern(70'000);
  ChunkPool pool;
  ChunkChain text(pool);
  Base64Encoder encoder;
  const size_t pieces[] = {1, 2, 3, 4, 5, 17, 16384, 16385, 30000};
  size_t at = 0;
  for (size_t n : pieces) {
    encoder.encode(bytes(data) + at, n, text);
    encoder.flush(text);
    at += n;
  }
  encoder.encode(bytes(data) + at, data.size() - at, text);
  encoder.flush(text);
  const std::string encoded = contents(text);
  CHECK(encoded.size() % 4 == 0);
  for (size_t step : {size_t{1}, size_t{3}, size_t{1000}, encoded.size()}) {
    CAPTURE(step);
    CHECK(decode_in_steps(encoded, step) == data);
  }
}

TEST_CASE("Base64Encoder appends after what the chain holds, at any tail offset") {
  for (size_t prefix : {size_t{0}, size_t{1}, size_t{3}, chunk_size - 3, chunk_size - 1}) {
    CAPTURE(prefix);
    ChunkPool pool;
    ChunkChain out(pool);
    const std::string head(prefix, 'x');
    out.append(head.data(), head.size());
    const std::string data = pattern(40'000);
    Base64Encoder encoder;
    encoder.encode(bytes(data), data.size(), out);
    encoder.flush(out);
    CHECK(contents(out) == head + reference_base64(data));
  }
}
