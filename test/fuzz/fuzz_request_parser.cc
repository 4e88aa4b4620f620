// Fuzzing of the HTTP/1.1 request parser (src/h1/request_parser.h) with bytes from a hostile
// client, read twice: in one piece, and in pieces whose sizes the input chooses, as reads of a
// socket cut them. The run fails on a crash or sanitizer report, on a feed() that takes more
// than it was given or stops without progress, on a head whose views are not in order, or
// when the two readings differ: in the requests they find (method, path, authority, fields,
// body, keep-alive; those before a refused one too) or in whether they refuse the bytes at
// all. (Which status a refusal gets
// may differ: a budget is checked where a read ends, so an over-long line with a bad byte in
// it is 414 or 400 depending on where the read stops.)
//
// Input layout: byte 0 is the piece size of the second reading (1 + byte % 64); the rest is
// what the client sends.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "h1/request_parser.h"

namespace {

using grelay::RequestParser;

// What one reading found, as text, so two readings compare with ==.
struct Reading {
  std::string requests;
  bool refused = false;
};

// A request's body, whatever pieces it came in.
struct Body final : RequestParser::BodySink {
  void on_body(const uint8_t* data, size_t len) noexcept override {
    text.append(reinterpret_cast<const char*>(data), len);
  }
  std::string text;
};

[[noreturn]] void harness_fail(const char* what) {
  std::fprintf(stderr, "fuzz_request_parser: %s\n", what);
  std::abort();
}

void note_head(const grelay::Http1Head& head, std::string& out) {
  out.append("head ").append(head.method).append(" ").append(head.path).append(" ");
  out.append(head.authority).append(head.keep_alive ? " keep-alive" : " close").append("\n");
  for (const auto& f : head.fields) {
    for (char c : f.name) {
      if (c >= 'A' && c <= 'Z') harness_fail("a field name is not lowercase");
    }
    if (f.name.empty()) harness_fail("an empty field name was handed on");
    if (!f.value.empty() && (f.value.front() == ' ' || f.value.back() == ' ')) {
      harness_fail("a field value keeps whitespace around it");
    }
    out.append(f.name).append(": ").append(f.value).append("\n");
  }
}

Reading read(std::string_view bytes, size_t piece) {
  grelay::RequestLimits limits;
  // Small budgets, so the fuzzer reaches them.
  limits.max_line = 256;
  limits.max_section = 1024;
  limits.max_fields = 16;
  RequestParser parser(limits);
  Reading reading;
  Body body;
  size_t from = 0;
  bool again = false;
  while ((from < bytes.size() || again) && !reading.refused) {
    again = false;
    const size_t len = std::min(piece, bytes.size() - from);
    const RequestParser::Step step =
        parser.feed(reinterpret_cast<const uint8_t*>(bytes.data()) + from, len, body);
    if (step.taken > len) harness_fail("feed() took more than it was given");
    from += step.taken;
    switch (step.stop) {
      case RequestParser::Stop::more:
        if (step.taken != len) harness_fail("feed() wants more but left bytes untaken");
        break;
      case RequestParser::Stop::head:
        note_head(parser.head(), reading.requests);
        again = true;
        break;
      case RequestParser::Stop::end:
        reading.requests.append("body ").append(body.text).append("\nend\n");
        body.text.clear();
        parser.next();
        break;
      case RequestParser::Stop::error:
        if (parser.error() == grelay::RequestError::none || !*parser.reason()) {
          harness_fail("a refusal without its error and reason");
        }
        reading.refused = true;
        break;
    }
  }
  return reading;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t piece = 1 + data[0] % 64;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Reading whole = read(bytes, bytes.size() + 1);
  const Reading cut = read(bytes, piece);
  if (whole.refused != cut.refused) harness_fail("one reading refused the bytes, the other not");
  if (!whole.refused && whole.requests != cut.requests) {
    harness_fail("the two readings found different requests");
  }
  // Either way the requests complete before a refused one are the same.
  const auto complete = [](const std::string& requests) {
    const size_t end = requests.rfind("end\n");
    return end == std::string::npos ? std::string() : requests.substr(0, end + 4);
  };
  if (complete(whole.requests) != complete(cut.requests)) {
    harness_fail("the two readings found different requests before a refusal");
  }
  return 0;
}
