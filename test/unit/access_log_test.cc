#include "relay/access_log.h"

#include "core/json.h"

#include <doctest/doctest.h>

#include <string>

TEST_CASE("AccessLog::format writes one JSON line with every field") {
  grelay::AccessLogEntry e;
  e.peer = "127.0.0.1:4000";
  e.authority = "api\"x\\";
  e.path = "/a.S/M\n\xff";
  e.route = "a.S";
  e.cluster = "c";
  e.endpoint = "10.0.0.1:50051";
  e.status = grelay::StatusCode::unavailable;
  e.duration_ns = 1'234'567;
  e.request_bytes = 10;
  e.response_bytes = 0;
  e.request_messages = 1;
  e.response_messages = 0;
  e.retries = 2;
  e.error = "no_endpoint";
  e.message = "no reachable endpoint";
  std::string out;
  // 2026-11-21T07:50:00.123Z
  grelay::AccessLog::format(out, e, 1'795'247'400'123'000'000ull);
  CHECK(
      out ==
      R"({"time":"2026-11-21T07:50:00.123Z","peer":"127.0.0.1:4000","authority":"api\"x\\",)"
      R"("path":"/a.S/M\u000a\u00ff","protocol":"grpc","route":"a.S","cluster":"c","endpoint":"10.0.0.1:50051",)"
      R"("status":"UNAVAILABLE","grpc_code":14,"duration_ms":1.235,"request_bytes":10,)"
      R"("response_bytes":0,"request_messages":1,"response_messages":0,"retries":2,)"
      R"("error":"no_endpoint","message":"no reachable endpoint"})"
      "\n");
}

namespace {

std::string json(std::string_view s) {
  std::string out;
  grelay::append_json_string(out, s);
  return out;
}

}  // namespace

TEST_CASE("append_json_string keeps UTF-8 and escapes every other byte") {
  // Two-, three- and four-byte sequences pass through as they are.
  CHECK(json("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
  CHECK(json("\xe2\x82\xac \xf0\x9f\x98\x80") == "\"\xe2\x82\xac \xf0\x9f\x98\x80\"");
  // A lone byte, a cut sequence, an overlong form, a surrogate and a code point past
  // U+10FFFF are escaped byte by byte, none dropped.
  CHECK(json("x\xffy") == R"("x\u00ffy")");
  CHECK(json("caf\xc3") == R"("caf\u00c3")");
  CHECK(json("\xc3(") == R"("\u00c3(")");
  CHECK(json("\xc0\xaf") == R"("\u00c0\u00af")");
  CHECK(json("\xed\xa0\x80") == R"("\u00ed\u00a0\u0080")");
  CHECK(json("\xf4\x90\x80\x80") == R"("\u00f4\u0090\u0080\u0080")");
  CHECK(json("\x7f\t\"\\") == R"("\u007f\u0009\"\\")");
}
