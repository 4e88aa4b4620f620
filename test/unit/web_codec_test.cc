#include "web/web_codec.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

using grelay::append_connect_end_stream_json;
using grelay::append_connect_error_json;
using grelay::append_grpc_web_trailers;
using grelay::Base64Decoder;
using grelay::Base64Encoder;
using grelay::chunk_size;
using grelay::ChunkChain;
using grelay::ChunkPool;
using grelay::connect_code_name;
using grelay::connect_http_status;
using grelay::connect_timeout_to_grpc_timeout;
using grelay::cors_origin_matches;
using grelay::parse_web_content_type;
using grelay::StatusCode;
using grelay::web_response_content_type;
using grelay::WebField;
using grelay::WebProtocol;
using namespace std::string_literals;

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

// parse_web_content_type(|ct|) as "<protocol> <codec>", or "none".
std::string parsed(std::string_view ct) {
  const auto result = parse_web_content_type(ct);
  if (!result) return "none";
  constexpr std::string_view names[] = {"grpc_web", "grpc_web_text", "connect_unary",
                                        "connect_stream"};
  return std::string(names[static_cast<int>(result->protocol)]) + " " + std::string(result->codec);
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

TEST_CASE("append_grpc_web_trailers writes the trailers frame byte for byte") {
  ChunkPool pool;
  ChunkChain out(pool);
  const WebField fields[] = {{"grpc-status", "0"}, {"grpc-message", ""}, {"x-cost", "7"}};
  append_grpc_web_trailers(out, fields, 3);
  const std::string body = "grpc-status:0\r\ngrpc-message:\r\nx-cost:7\r\n";
  REQUIRE(body.size() == 40);
  CHECK(contents(out) == "\x80\x00\x00\x00\x28"s + body);
}

TEST_CASE("append_grpc_web_trailers writes an empty frame for no fields, and long lengths") {
  ChunkPool pool;
  ChunkChain out(pool);
  append_grpc_web_trailers(out, nullptr, 0);
  CHECK(contents(out) == "\x80\x00\x00\x00\x00"s);

  ChunkChain big(pool);
  const std::string value(70'000, 'v');  // longer than a chunk
  const WebField field{"a", value};
  append_grpc_web_trailers(big, &field, 1);
  const std::string text = contents(big);
  CHECK(text.substr(0, 5) == "\x80\x00\x01\x11\x74"s);  // 1 + 1 + 70000 + 2 = 70004
  CHECK(text.substr(5) == "a:" + value + "\r\n");
}

TEST_CASE("connect_code_name names each gRPC code as Connect does") {
  CHECK(connect_code_name(StatusCode::ok) == "");
  CHECK(connect_code_name(StatusCode::cancelled) == "canceled");
  CHECK(connect_code_name(StatusCode::unknown) == "unknown");
  CHECK(connect_code_name(StatusCode::invalid_argument) == "invalid_argument");
  CHECK(connect_code_name(StatusCode::deadline_exceeded) == "deadline_exceeded");
  CHECK(connect_code_name(StatusCode::not_found) == "not_found");
  CHECK(connect_code_name(StatusCode::already_exists) == "already_exists");
  CHECK(connect_code_name(StatusCode::permission_denied) == "permission_denied");
  CHECK(connect_code_name(StatusCode::resource_exhausted) == "resource_exhausted");
  CHECK(connect_code_name(StatusCode::failed_precondition) == "failed_precondition");
  CHECK(connect_code_name(StatusCode::aborted) == "aborted");
  CHECK(connect_code_name(StatusCode::out_of_range) == "out_of_range");
  CHECK(connect_code_name(StatusCode::unimplemented) == "unimplemented");
  CHECK(connect_code_name(StatusCode::internal) == "internal");
  CHECK(connect_code_name(StatusCode::unavailable) == "unavailable");
  CHECK(connect_code_name(StatusCode::data_loss) == "data_loss");
  CHECK(connect_code_name(StatusCode::unauthenticated) == "unauthenticated");
  CHECK(connect_code_name(static_cast<StatusCode>(17)) == "unknown");
  CHECK(connect_code_name(static_cast<StatusCode>(-1)) == "unknown");
}

TEST_CASE("connect_http_status follows the Connect protocol's error code table") {
  CHECK(connect_http_status(StatusCode::ok) == 200);
  CHECK(connect_http_status(StatusCode::cancelled) == 499);
  CHECK(connect_http_status(StatusCode::unknown) == 500);
  CHECK(connect_http_status(StatusCode::invalid_argument) == 400);
  CHECK(connect_http_status(StatusCode::deadline_exceeded) == 504);
  CHECK(connect_http_status(StatusCode::not_found) == 404);
  CHECK(connect_http_status(StatusCode::already_exists) == 409);
  CHECK(connect_http_status(StatusCode::permission_denied) == 403);
  CHECK(connect_http_status(StatusCode::resource_exhausted) == 429);
  CHECK(connect_http_status(StatusCode::failed_precondition) == 400);
  CHECK(connect_http_status(StatusCode::aborted) == 409);
  CHECK(connect_http_status(StatusCode::out_of_range) == 400);
  CHECK(connect_http_status(StatusCode::unimplemented) == 501);
  CHECK(connect_http_status(StatusCode::internal) == 500);
  CHECK(connect_http_status(StatusCode::unavailable) == 503);
  CHECK(connect_http_status(StatusCode::data_loss) == 500);
  CHECK(connect_http_status(StatusCode::unauthenticated) == 401);
  CHECK(connect_http_status(static_cast<StatusCode>(17)) == 500);
}

TEST_CASE("append_connect_error_json writes code and message, message omitted when empty") {
  std::string out;
  append_connect_error_json(out, StatusCode::unavailable, "");
  CHECK(out == R"({"code":"unavailable"})");
  out.clear();
  append_connect_error_json(out, StatusCode::cancelled, "client went away");
  CHECK(out == R"({"code":"canceled","message":"client went away"})");
  out = "prefix:";  // appends
  append_connect_error_json(out, StatusCode::internal, "x");
  CHECK(out == R"(prefix:{"code":"internal","message":"x"})");
}

TEST_CASE("append_connect_error_json escapes the message") {
  std::string out;
  append_connect_error_json(out, StatusCode::invalid_argument,
                            "say \"hi\"\\\n\x01 caf\xc3\xa9 \xff");
  CHECK(out ==
        "{\"code\":\"invalid_argument\",\"message\":"
        "\"say \\\"hi\\\"\\\\\\u000a\\u0001 caf\xc3\xa9 \\u00ff\"}");
}

TEST_CASE("append_connect_error_json writes an OK code as unknown") {
  std::string out;
  append_connect_error_json(out, StatusCode::ok, "");
  CHECK(out == R"({"code":"unknown"})");
}

TEST_CASE("append_connect_end_stream_json is {} for OK without metadata") {
  std::string out;
  append_connect_end_stream_json(out, StatusCode::ok, "", nullptr, 0);
  CHECK(out == "{}");
  out.clear();
  // The message of an OK status is not an error's: it is not written.
  append_connect_end_stream_json(out, StatusCode::ok, "fine", nullptr, 0);
  CHECK(out == "{}");
}

TEST_CASE("append_connect_end_stream_json writes the error of a failed call") {
  std::string out;
  append_connect_end_stream_json(out, StatusCode::unavailable, "overloaded", nullptr, 0);
  CHECK(out == R"({"error":{"code":"unavailable","message":"overloaded"}})");
}

TEST_CASE("append_connect_end_stream_json groups metadata values by name, in order") {
  const WebField fields[] = {
      {"x-a", "1"}, {"x-b", "2"}, {"x-a", "3"}, {"trace-bin", "AAEC"}, {"x-b", "4"}, {"x-a", "5"},
  };
  std::string out;
  append_connect_end_stream_json(out, StatusCode::ok, "", fields, std::size(fields));
  CHECK(out == R"({"metadata":{"x-a":["1","3","5"],"x-b":["2","4"],"trace-bin":["AAEC"]}})");
  out.clear();
  append_connect_end_stream_json(out, StatusCode::not_found, "", fields, 1);
  CHECK(out == R"({"error":{"code":"not_found"},"metadata":{"x-a":["1"]}})");
}

TEST_CASE("append_connect_end_stream_json escapes metadata names and values") {
  const WebField fields[] = {{"x-q\"", "a\"b\\c\td"}, {"x-e", ""}};
  std::string out;
  append_connect_end_stream_json(out, StatusCode::aborted, "m\"", fields, 2);
  CHECK(out ==
        "{\"error\":{\"code\":\"aborted\",\"message\":\"m\\\"\"},"
        "\"metadata\":{\"x-q\\\"\":[\"a\\\"b\\\\c\\u0009d\"],\"x-e\":[\"\"]}}");
}

TEST_CASE("connect_timeout_to_grpc_timeout keeps milliseconds that fit 8 digits") {
  CHECK(connect_timeout_to_grpc_timeout("0") == "0m");
  CHECK(connect_timeout_to_grpc_timeout("1") == "1m");
  CHECK(connect_timeout_to_grpc_timeout("5000") == "5000m");
  CHECK(connect_timeout_to_grpc_timeout("99999999") == "99999999m");
  CHECK(connect_timeout_to_grpc_timeout("0000000001") == "1m");  // 10 digits, leading zeros
}

TEST_CASE("connect_timeout_to_grpc_timeout switches to seconds past 8 digits, rounding up") {
  CHECK(connect_timeout_to_grpc_timeout("100000000") == "100000S");
  CHECK(connect_timeout_to_grpc_timeout("100000001") == "100001S");
  CHECK(connect_timeout_to_grpc_timeout("123456789") == "123457S");
  CHECK(connect_timeout_to_grpc_timeout("9999999999") == "10000000S");  // the largest value
}

TEST_CASE("connect_timeout_to_grpc_timeout rejects values outside Connect's grammar") {
  CHECK(connect_timeout_to_grpc_timeout("") == std::nullopt);
  CHECK(connect_timeout_to_grpc_timeout("12345678901") == std::nullopt);  // 11 digits
  CHECK(connect_timeout_to_grpc_timeout("00000000001") == std::nullopt);  // 11, even as zeros
  CHECK(connect_timeout_to_grpc_timeout("12a") == std::nullopt);
  CHECK(connect_timeout_to_grpc_timeout("-1") == std::nullopt);
  CHECK(connect_timeout_to_grpc_timeout("+1") == std::nullopt);
  CHECK(connect_timeout_to_grpc_timeout(" 1") == std::nullopt);
  CHECK(connect_timeout_to_grpc_timeout("1 ") == std::nullopt);
  CHECK(connect_timeout_to_grpc_timeout("1.5") == std::nullopt);
  CHECK(connect_timeout_to_grpc_timeout("1m") == std::nullopt);
}

TEST_CASE("parse_web_content_type reads every web content-type") {
  CHECK(parsed("application/grpc-web") == "grpc_web proto");
  CHECK(parsed("application/grpc-web+proto") == "grpc_web proto");
  CHECK(parsed("application/grpc-web+json") == "grpc_web json");
  CHECK(parsed("application/grpc-web+thrift") == "grpc_web thrift");
  CHECK(parsed("application/grpc-web-text") == "grpc_web_text proto");
  CHECK(parsed("application/grpc-web-text+proto") == "grpc_web_text proto");
  CHECK(parsed("application/grpc-web-text+json") == "grpc_web_text json");
  CHECK(parsed("application/proto") == "connect_unary proto");
  CHECK(parsed("application/json") == "connect_unary json");
  CHECK(parsed("application/cbor") == "connect_unary cbor");
  CHECK(parsed("application/connect+proto") == "connect_stream proto");
  CHECK(parsed("application/connect+json") == "connect_stream json");
  CHECK(parsed("application/connect+cbor") == "connect_stream cbor");
}

TEST_CASE("parse_web_content_type matches prefixes in any case and keeps other codecs as written") {
  CHECK(parsed("Application/GRPC-Web-Text+PROTO") == "grpc_web_text proto");
  CHECK(parsed("APPLICATION/JSON") == "connect_unary json");
  CHECK(parsed("application/Connect+Json") == "connect_stream json");
  CHECK(parsed("application/grpc-WEB+Thrift") == "grpc_web Thrift");
  CHECK(parsed("application/CBOR") == "connect_unary CBOR");
}

TEST_CASE("parse_web_content_type ignores parameters and surrounding whitespace") {
  CHECK(parsed("application/json; charset=utf-8") == "connect_unary json");
  CHECK(parsed("application/grpc-web-text;charset=utf-8") == "grpc_web_text proto");
  CHECK(parsed(" application/grpc-web+proto ;a=b;c=d") == "grpc_web proto");
  CHECK(parsed("application/connect+json\t") == "connect_stream json");
}

TEST_CASE("parse_web_content_type gives nullopt for plain gRPC and non-web types") {
  CHECK(parsed("application/grpc") == "none");
  CHECK(parsed("application/grpc+proto") == "none");
  CHECK(parsed("application/grpc+json") == "none");
  CHECK(parsed("application/grpc;charset=utf-8") == "none");
  CHECK(parsed("Application/GRPC") == "none");
  CHECK(parsed("application/grpc-webx") == "none");
  CHECK(parsed("application/grpc-web-textx") == "none");
  CHECK(parsed("application/grpc-web+") == "none");
  CHECK(parsed("application/grpc-web-text+") == "none");
  CHECK(parsed("application/grpc-web+pro to") == "none");
  CHECK(parsed("application/connect") == "none");
  CHECK(parsed("application/connect+") == "none");
  CHECK(parsed("application/") == "none");
  CHECK(parsed("application/;charset=utf-8") == "none");
  CHECK(parsed("text/plain") == "none");
  CHECK(parsed("application") == "none");
  CHECK(parsed("applications/json") == "none");
  CHECK(parsed("") == "none");
}

TEST_CASE("web_response_content_type names each protocol's response type") {
  CHECK(web_response_content_type(WebProtocol::grpc_web, "proto") == "application/grpc-web+proto");
  CHECK(web_response_content_type(WebProtocol::grpc_web_text, "proto") ==
        "application/grpc-web-text+proto");
  CHECK(web_response_content_type(WebProtocol::connect_unary, "json") == "application/json");
  CHECK(web_response_content_type(WebProtocol::connect_stream, "json") ==
        "application/connect+json");
}

TEST_CASE("cors_origin_matches: '*' matches every origin") {
  CHECK(cors_origin_matches("*", "https://app.example.com"));
  CHECK(cors_origin_matches("*", "http://localhost:3000"));
  CHECK(cors_origin_matches("*", "null"));
}

TEST_CASE("cors_origin_matches: an exact origin, in any case, port included") {
  CHECK(cors_origin_matches("https://app.example.com", "https://app.example.com"));
  CHECK(cors_origin_matches("https://app.example.com", "HTTPS://App.Example.COM"));
  CHECK(cors_origin_matches("HTTPS://APP.EXAMPLE.COM", "https://app.example.com"));
  CHECK(!cors_origin_matches("https://app.example.com", "http://app.example.com"));
  CHECK(!cors_origin_matches("https://app.example.com", "https://app.example.com:8443"));
  CHECK(cors_origin_matches("https://app.example.com:8443", "https://app.example.com:8443"));
  CHECK(!cors_origin_matches("https://app.example.com:8443", "https://app.example.com"));
  CHECK(!cors_origin_matches("https://app.example.com:8443", "https://app.example.com:8444"));
  CHECK(!cors_origin_matches("https://app.example.com", "https://app.example.co"));
  CHECK(!cors_origin_matches("https://app.example.com", "https://app.example.com.evil.net"));
}

TEST_CASE("cors_origin_matches: a wildcard host takes one or more sub-domain labels") {
  const std::string_view pattern = "https://*.example.com";
  CHECK(cors_origin_matches(pattern, "https://app.example.com"));
  CHECK(cors_origin_matches(pattern, "https://a.b.c.example.com"));
  CHECK(cors_origin_matches(pattern, "https://x-1.example.com"));
  CHECK(cors_origin_matches(pattern, "HTTPS://APP.EXAMPLE.COM"));
  CHECK(!cors_origin_matches(pattern, "https://example.com"));
  CHECK(!cors_origin_matches(pattern, "https://.example.com"));
  CHECK(!cors_origin_matches(pattern, "https://a..example.com"));
  CHECK(!cors_origin_matches(pattern, "https://evil-example.com"));
  CHECK(!cors_origin_matches(pattern, "https://example.com.evil.net"));
  CHECK(!cors_origin_matches(pattern, "https://app.example.com.evil.net"));
  CHECK(!cors_origin_matches(pattern, "https://evil.net/.example.com"));
  CHECK(!cors_origin_matches(pattern, "https://user@app.example.com"));
}

TEST_CASE("cors_origin_matches: a wildcard host keeps the scheme and the port") {
  CHECK(!cors_origin_matches("https://*.example.com", "http://app.example.com"));
  CHECK(!cors_origin_matches("http://*.example.com", "https://app.example.com"));
  CHECK(!cors_origin_matches("https://*.example.com", "https://app.example.com:8443"));
  CHECK(!cors_origin_matches("https://*.example.com", "https://app.example.com:443"));
  CHECK(cors_origin_matches("https://*.example.com:8443", "https://app.example.com:8443"));
  CHECK(!cors_origin_matches("https://*.example.com:8443", "https://app.example.com"));
  CHECK(!cors_origin_matches("https://*.example.com:8443", "https://app.example.com:9443"));
  CHECK(!cors_origin_matches("https://*.example.com:8443", "https://a:1.example.com:8443"));
}

TEST_CASE("Connect errors carry the details of grpc-status-details-bin") {
  // google.rpc.Status{code: 5, message: "gone", details: [RetryInfo, ErrorInfo]}, unpadded.
  constexpr std::string_view status =
      "CAUSBGdvbmUaMAoodHlwZS5nb29nbGVhcGlzLmNvbS9nb29nbGUucnBjLlJldHJ5SW5mbxIECgIIARovCih0eXBl"
      "Lmdvb2dsZWFwaXMuY29tL2dvb2dsZS5ycGMuRXJyb3JJbmZvEgMKAXI";
  std::string out;
  grelay::append_connect_error_json(out, grelay::StatusCode::not_found, "gone", status);
  CHECK(out == R"({"code":"not_found","message":"gone","details":[)"
               R"({"type":"google.rpc.RetryInfo","value":"CgIIAQ"},)"
               R"({"type":"google.rpc.ErrorInfo","value":"CgFy"}]})");

  // The same, padded, in an end-of-stream message.
  std::string padded(status);
  padded += "=";
  out.clear();
  grelay::append_connect_end_stream_json(out, grelay::StatusCode::not_found, "gone", nullptr, 0,
                                         padded);
  CHECK(out.find(R"("details":[{"type":"google.rpc.RetryInfo","value":"CgIIAQ"},)") !=
        std::string::npos);

  // A value that is not a Status, or one without details, adds nothing.
  for (std::string_view bad : {"!!!!", "CAUSBGdvbmUaMA", "CAU", "/w"}) {
    out.clear();
    grelay::append_connect_error_json(out, grelay::StatusCode::internal, "", bad);
    CHECK(out == R"({"code":"internal"})");
  }
}
