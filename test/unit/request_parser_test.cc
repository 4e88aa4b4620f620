// RequestParser: a request head as the handler of its stream gets it, bodies cut anywhere,
// pipelined requests, and the status that answers each broken or oversized request.

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "h1/request_parser.h"

using grelay::Http1Head;
using grelay::RequestError;
using grelay::RequestLimits;
using grelay::RequestParser;

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

// What a parser made of some bytes: its stops in order, each request's head, and the body.
struct Parsed {
  std::vector<std::string> stops;
  std::vector<std::string> methods, paths, authorities;
  std::vector<Fields> fields;
  std::string body;
  RequestError error = RequestError::none;
  std::string reason;
  bool expect_continue = false;
  bool keep_alive = false;
};

struct BodyText final : RequestParser::BodySink {
  void on_body(const uint8_t* data, size_t len) noexcept override {
    text.append(reinterpret_cast<const char*>(data), len);
  }
  std::string text;
};

// Feeds |text| to a parser in pieces cut at |cuts| (increasing offsets).
Parsed parse(std::string_view text, const std::vector<size_t>& cuts = {},
             RequestLimits limits = {}) {
  RequestParser parser(limits);
  BodyText body;
  Parsed out;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(text.size());
  bool again = false;
  for (size_t end : ends) {
    // After a head the parser is fed again even with nothing left: a request without a body
    // ends there.
    while ((from < end || again) && out.error == RequestError::none) {
      again = false;
      const RequestParser::Step step =
          parser.feed(reinterpret_cast<const uint8_t*>(text.data()) + from, end - from, body);
      from += step.taken;
      switch (step.stop) {
        case RequestParser::Stop::more:
          break;
        case RequestParser::Stop::head: {
          const Http1Head& head = parser.head();
          out.stops.push_back("head");
          out.methods.emplace_back(head.method);
          out.paths.emplace_back(head.path);
          out.authorities.emplace_back(head.authority);
          Fields fields;
          for (const auto& f : head.fields)
            fields.emplace_back(std::string(f.name), std::string(f.value));
          out.fields.push_back(fields);
          out.expect_continue = head.expect_continue;
          out.keep_alive = head.keep_alive;
          again = true;
          break;
        }
        case RequestParser::Stop::end:
          out.stops.push_back("end");
          parser.next();
          break;
        case RequestParser::Stop::error:
          out.stops.push_back("error");
          out.error = parser.error();
          out.reason = parser.reason();
          break;
      }
    }
  }
  out.body = body.text;
  return out;
}

// Every cut of |text| in two (at most about 400 of them, evenly spread, for long texts).
std::vector<std::vector<size_t>> two_piece_cuts(std::string_view text) {
  std::vector<std::vector<size_t>> out;
  const size_t step = std::max<size_t>(1, text.size() / 400);
  for (size_t at = 1; at < text.size(); at += step)
    out.push_back({at});
  return out;
}

}  // namespace

TEST_CASE(
    "RequestParser hands on the head as HTTP/2 fields: names lowercased, one-hop fields "
    "dropped") {
  const std::string text =
      "POST /pkg.Svc/Method?x=1 HTTP/1.1\r\n"
      "Host: api.example.com:8080\r\n"
      "Content-Type: application/grpc-web+proto\r\n"
      "X-Custom:  A b  \r\n"
      "Connection: keep-alive, X-Hop\r\n"
      "X-Hop: gone\r\n"
      "Keep-Alive: timeout=5\r\n"
      "Proxy-Connection: keep-alive\r\n"
      "TE: trailers\r\n"
      "Upgrade: h2c\r\n"
      "Expect: 100-continue\r\n"
      "Content-Length: 3\r\n"
      "\r\n"
      "abc";
  const Parsed p = parse(text);
  REQUIRE(p.stops == std::vector<std::string>{"head", "end"});
  CHECK(p.methods[0] == "POST");
  CHECK(p.paths[0] == "/pkg.Svc/Method?x=1");
  CHECK(p.authorities[0] == "api.example.com:8080");
  CHECK(p.fields[0] == Fields{{"content-type", "application/grpc-web+proto"},
                              {"x-custom", "A b"},
                              {"content-length", "3"}});
  CHECK(p.expect_continue);
  CHECK(p.keep_alive);
  CHECK(p.body == "abc");
}

TEST_CASE("RequestParser converts an absolute-form target and takes * for OPTIONS only") {
  Parsed p = parse("GET http://Example.com:81/a/b?c HTTP/1.1\r\nHost: other\r\n\r\n");
  REQUIRE(p.stops == std::vector<std::string>{"head", "end"});
  CHECK(p.paths[0] == "/a/b?c");
  CHECK(p.authorities[0] == "Example.com:81");
  p = parse("GET https://h.test?q=1 HTTP/1.1\r\nHost: h.test\r\n\r\n");
  REQUIRE(p.stops == std::vector<std::string>{"head", "end"});
  CHECK(p.paths[0] == "/?q=1");
  CHECK(p.authorities[0] == "h.test");
  // HTTP/1.0 needs no Host when the target names the authority.
  p = parse("GET http://h.test/x HTTP/1.0\r\n\r\n");
  REQUIRE(p.stops == std::vector<std::string>{"head", "end"});
  CHECK(p.authorities[0] == "h.test");
  CHECK_FALSE(p.keep_alive);
  p = parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(p.stops == std::vector<std::string>{"head", "end"});
  CHECK(p.paths[0] == "*");
  p = parse("GET * HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(p.error == RequestError::bad_request);
  p = parse("GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(p.error == RequestError::bad_request);
}

TEST_CASE("RequestParser de-chunks a body cut at every byte offset") {
  const std::string text =
      "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n10;ext=1\r\n0123456789abcdef\r\n1\r\nZ\r\n0\r\nX-Trailer: v\r\n\r\n";
  for (const auto& cuts : two_piece_cuts(text)) {
    CAPTURE(cuts[0]);
    const Parsed p = parse(text, cuts);
    REQUIRE(p.stops == std::vector<std::string>{"head", "end"});
    CHECK(p.body == "abc0123456789abcdefZ");
    // Transfer-encoding is of one hop: the handler gets the body, not its coding.
    CHECK(p.fields[0].empty());
  }
  std::vector<size_t> every_byte;
  for (size_t i = 1; i < text.size(); ++i)
    every_byte.push_back(i);
  const Parsed p = parse(text, every_byte);
  REQUIRE(p.stops == std::vector<std::string>{"head", "end"});
  CHECK(p.body == "abc0123456789abcdefZ");
}

TEST_CASE("RequestParser reads a content-length body cut at every byte offset") {
  const std::string text = "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
  for (const auto& cuts : two_piece_cuts(text)) {
    CAPTURE(cuts[0]);
    const Parsed p = parse(text, cuts);
    REQUIRE(p.stops == std::vector<std::string>{"head", "end"});
    CHECK(p.body == "0123456789");
  }
}

TEST_CASE("RequestParser stops after each pipelined request") {
  const std::string text =
      "GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
      "POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
      "GET /three HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  for (const auto& cuts : two_piece_cuts(text)) {
    CAPTURE(cuts[0]);
    const Parsed p = parse(text, cuts);
    CHECK(p.stops == std::vector<std::string>{"head", "end", "head", "end", "head", "end"});
    CHECK(p.paths == std::vector<std::string>{"/one", "/two", "/three"});
    CHECK(p.body == "hi");
    CHECK_FALSE(p.keep_alive);
  }
}

TEST_CASE("RequestParser refuses each broken or oversized request with its status") {
  std::string many_fields = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 100; ++i)
    many_fields += "X-" + std::to_string(i) + ": v\r\n";
  many_fields += "\r\n";
  std::string many_trailers =
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n";
  for (int i = 0; i < 101; ++i)
    many_trailers += "T-" + std::to_string(i) + ": v\r\n";
  many_trailers += "\r\n";
  struct Case {
    const char* name;
    std::string text;
    int status;
  };
  const std::vector<Case> cases = {
      {"request line over 8 KiB", "GET /" + std::string(8200, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n",
       414},
      {"header section over max_section",
       "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(65 * 1024, 'v') + "\r\n\r\n", 431},
      {"101 fields", many_fields, 431},
      {"101 trailer fields", many_trailers, 431},
      {"content-length and transfer-encoding",
       "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
       "3\r\nabc\r\n0\r\n\r\n",
       400},
      {"two different content-lengths",
       "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
      {"transfer-encoding not ending in chunked",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nabc", 400},
      {"chunk size not hex",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
       400},
      {"chunk without its CRLF",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
       400},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400},
      {"bare LF after the request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400},
      {"bare LF after a field", "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400},
      {"bare LF ending the head", "GET / HTTP/1.1\r\nHost: h\r\n\n", 400},
      {"bare LF ending the trailers",
       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\n", 400},
      {"no Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400},
      {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"empty field name", "GET / HTTP/1.1\r\n: v\r\nHost: h\r\n\r\n", 400},
      {"CONNECT", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 400},
      {"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"HTTP/0.9 request line", "GET /\r\n\r\n", 505},
      {"HTTP/3.0 request line", "GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505},
      {"an expectation other than 100-continue",
       "POST / HTTP/1.1\r\nHost: h\r\nExpect: fly\r\nContent-Length: 1\r\n\r\nx", 417},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const Parsed whole = parse(c.text);
    CHECK(whole.stops.back() == "error");
    CHECK(grelay::request_error_status(whole.error) == c.status);
    CHECK_FALSE(whole.reason.empty());
    // The same verdict wherever the bytes are cut.
    for (const auto& cuts : two_piece_cuts(c.text)) {
      CAPTURE(cuts[0]);
      const Parsed cut = parse(c.text, cuts);
      CHECK(grelay::request_error_status(cut.error) == c.status);
    }
  }
}
