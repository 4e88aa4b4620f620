#include "core/percent.h"

#include <doctest/doctest.h>

#include <string>

using grelay::percent_decode_grpc_message;
using grelay::percent_encode_grpc_message;
using namespace std::string_literals;

TEST_CASE("percent_encode_grpc_message keeps printable ASCII other than '%'") {
  CHECK(percent_encode_grpc_message("") == "");
  CHECK(percent_encode_grpc_message("no route for /pkg.Svc/Method") ==
        "no route for /pkg.Svc/Method");
  std::string printable;
  for (int c = 0x20; c <= 0x7e; ++c) {
    if (c != '%') printable.push_back(static_cast<char>(c));
  }
  CHECK(percent_encode_grpc_message(printable) == printable);
}

TEST_CASE("percent_encode_grpc_message encodes '%' itself") {
  CHECK(percent_encode_grpc_message("%") == "%25");
  CHECK(percent_encode_grpc_message("100%") == "100%25");
  CHECK(percent_encode_grpc_message("%25") == "%2525");
}

TEST_CASE("percent_encode_grpc_message encodes control bytes in upper-case hex") {
  CHECK(percent_encode_grpc_message("a\nb") == "a%0Ab");
  CHECK(percent_encode_grpc_message("\r\t") == "%0D%09");
  CHECK(percent_encode_grpc_message("\x1f") == "%1F");
  CHECK(percent_encode_grpc_message("\x7f") == "%7F");
  CHECK(percent_encode_grpc_message("a\0b"s) == "a%00b");
}

TEST_CASE("percent_encode_grpc_message encodes each byte of UTF-8 characters") {
  CHECK(percent_encode_grpc_message("h\xc3\xa9llo") == "h%C3%A9llo");          // héllo
  CHECK(percent_encode_grpc_message("\xe2\x82\xac") == "%E2%82%AC");           // €
  CHECK(percent_encode_grpc_message("\xf0\x9f\x98\x80!") == "%F0%9F%98%80!");  // 😀!
  CHECK(percent_encode_grpc_message("\xff\x80") == "%FF%80");  // not UTF-8: still per byte
}

TEST_CASE("percent_decode_grpc_message decodes upper- and lower-case hex") {
  CHECK(percent_decode_grpc_message("") == "");
  CHECK(percent_decode_grpc_message("plain") == "plain");
  CHECK(percent_decode_grpc_message("h%C3%A9llo") == "h\xc3\xa9llo");
  CHECK(percent_decode_grpc_message("h%c3%a9llo") == "h\xc3\xa9llo");
  CHECK(percent_decode_grpc_message("%25") == "%");
  CHECK(percent_decode_grpc_message("%2525") == "%25");
  CHECK(percent_decode_grpc_message("a%00b") == "a\0b"s);
  CHECK(percent_decode_grpc_message("%41%42%43") == "ABC");
}

TEST_CASE("percent_decode_grpc_message keeps invalid sequences as they are") {
  CHECK(percent_decode_grpc_message("%") == "%");
  CHECK(percent_decode_grpc_message("100%") == "100%");
  CHECK(percent_decode_grpc_message("%4") == "%4");
  CHECK(percent_decode_grpc_message("a%4") == "a%4");
  CHECK(percent_decode_grpc_message("%zz") == "%zz");
  CHECK(percent_decode_grpc_message("%4g") == "%4g");
  CHECK(percent_decode_grpc_message("%g4") == "%g4");
  CHECK(percent_decode_grpc_message("% 41") == "% 41");
  // A sequence cut by the end of the view does not read past it.
  CHECK(percent_decode_grpc_message(std::string_view("%41", 2)) == "%4");
  CHECK(percent_decode_grpc_message(std::string_view("a%41", 2)) == "a%");
  // The '%' of a bad sequence does not swallow a good one right after it.
  CHECK(percent_decode_grpc_message("%%41") == "%A");
  CHECK(percent_decode_grpc_message("%4%41") == "%4A");
  // Raw bytes a sender should have encoded pass through.
  CHECK(percent_decode_grpc_message("h\xc3\xa9llo\n") == "h\xc3\xa9llo\n");
}

TEST_CASE("percent encoding round-trips every byte") {
  std::string all;
  for (int c = 0; c < 256; ++c)
    all.push_back(static_cast<char>(c));
  const std::string encoded = percent_encode_grpc_message(all);
  for (char c : encoded) {
    CHECK(static_cast<unsigned char>(c) >= 0x20);
    CHECK(static_cast<unsigned char>(c) <= 0x7e);
  }
  // The 95 printable bytes but '%' stay; the other 162 bytes take three characters each.
  CHECK(encoded.size() == 94 + 3 * 162);
  CHECK(percent_decode_grpc_message(encoded) == all);
}
