#include "h2/request_check.h"

#include <doctest/doctest.h>

#include <string_view>
#include <utility>
#include <vector>

namespace grelay {
namespace {

using Fields = std::vector<std::pair<std::string_view, std::string_view>>;

const Fields good = {{":method", "POST"},
                     {":scheme", "http"},
                     {":path", "/pkg.Svc/Method"},
                     {":authority", "relay.example:50050"},
                     {"content-type", "application/grpc"},
                     {"te", "trailers"}};

// Runs |fields| through a fresh check; true if every field and the block end pass.
bool request_ok(const Fields& fields) {
  RequestCheck check;
  for (const auto& [name, value] : fields) {
    if (!check.on_field(name, value, false)) return false;
  }
  return check.on_headers_end();
}

Fields with(Fields fields, std::string_view name, std::string_view value) {
  fields.emplace_back(name, value);
  return fields;
}

Fields without(const Fields& fields, std::string_view name) {
  Fields out;
  for (const auto& f : fields) {
    if (f.first != name) out.push_back(f);
  }
  return out;
}

}  // namespace

TEST_CASE("a well-formed gRPC request passes") {
  CHECK(request_ok(good));
  CHECK(request_ok(with(good, "user-agent", "grpc-c++/1.51 (linux; chttp2)")));
  CHECK(request_ok(with(good, "x-empty", "")));
  CHECK(request_ok(with(good, "x-inner", "a \tb")));
  CHECK(request_ok(with(good, "x-utf8", "caf\xc3\xa9")));
  CHECK(request_ok(with(good, "te", "Trailers")));
}

TEST_CASE("field names must be lowercase tokens") {
  CHECK_FALSE(request_ok(with(good, "X-Foo", "1")));
  CHECK_FALSE(request_ok(with(good, "x foo", "1")));
  CHECK_FALSE(request_ok(with(good, "x(y", "1")));
  CHECK_FALSE(request_ok(with(good, std::string_view("x\0y", 3), "1")));
  CHECK_FALSE(request_ok(with(good, "", "1")));
}

TEST_CASE("field values hold no controls and no surrounding whitespace") {
  for (std::string_view bad :
       {std::string_view("a\0b", 3), std::string_view("a\rb"), std::string_view("a\nb"),
        std::string_view(" a"), std::string_view("a "), std::string_view("\ta"),
        std::string_view("a\t"), std::string_view("a\x01"), std::string_view("a\x7f"),
        // Past the first eight bytes, where words are checked at once.
        std::string_view("0123456789abcdef\x1f"
                         "z")}) {
    CAPTURE(bad);
    CHECK_FALSE(request_ok(with(good, "x-bad", bad)));
  }
  CHECK(request_ok(with(good, "x-long", "0123456789abcdef\tghijklmnop")));
}

TEST_CASE("pseudo-header fields: known, once, first, non-empty, all present") {
  CHECK_FALSE(request_ok(with(good, ":foo", "1")));
  CHECK_FALSE(request_ok(with(good, ":status", "200")));
  CHECK_FALSE(request_ok(with(good, ":protocol", "websocket")));
  // After a regular field (good ends with regular fields).
  CHECK_FALSE(request_ok(with(without(good, ":path"), ":path", "/a/b")));
  for (std::string_view name : {":method", ":scheme", ":path", ":authority"}) {
    CAPTURE(name);
    Fields dup = {{name, name == ":path" ? "/a/b" : "x"}};
    dup.insert(dup.end(), good.begin(), good.end());
    CHECK_FALSE(request_ok(dup));
    CHECK_FALSE(request_ok(without(good, name)));
  }
  CHECK_FALSE(
      request_ok({{":method", ""}, {":scheme", "http"}, {":path", "/a"}, {":authority", "h"}}));
  CHECK_FALSE(request_ok(
      {{":method", "POST"}, {":scheme", "http"}, {":path", "a/b"}, {":authority", "h"}}));
  CHECK_FALSE(
      request_ok({{":method", "POST"}, {":scheme", "http"}, {":path", "*"}, {":authority", "h"}}));
  CHECK(request_ok(
      {{":method", "OPTIONS"}, {":scheme", "http"}, {":path", "*"}, {":authority", "h"}}));
  CHECK_FALSE(request_ok(
      {{":method", "PO ST"}, {":scheme", "http"}, {":path", "/a"}, {":authority", "h"}}));
  CHECK_FALSE(request_ok(
      {{":method", "POST"}, {":scheme", "1http"}, {":path", "/a"}, {":authority", "h"}}));
  CHECK_FALSE(request_ok(
      {{":method", "POST"}, {":scheme", "http"}, {":path", "/a"}, {":authority", "h h"}}));
}

TEST_CASE("host may stand in for :authority, once") {
  CHECK(request_ok(with(without(good, ":authority"), "host", "relay.example")));
  CHECK_FALSE(request_ok(with(with(good, "host", "a"), "host", "a")));
  CHECK_FALSE(request_ok(with(good, "host", "")));
}

TEST_CASE("an authority carries no userinfo (RFC 9113 section 8.3.1)") {
  CHECK_FALSE(request_ok(
      {{":method", "POST"}, {":scheme", "http"}, {":path", "/a"}, {":authority", "u@h:1"}}));
  CHECK_FALSE(request_ok(with(without(good, ":authority"), "host", "user:pw@relay.example")));
  CHECK(request_ok(
      {{":method", "POST"}, {":scheme", "http"}, {":path", "/a"}, {":authority", "[::1]:50050"}}));
}

TEST_CASE("connection-specific fields are malformed") {
  for (std::string_view name :
       {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}) {
    CAPTURE(name);
    CHECK_FALSE(request_ok(with(good, name, "x")));
  }
  CHECK_FALSE(request_ok(with(without(good, "te"), "te", "gzip")));
  CHECK_FALSE(request_ok(with(without(good, "te"), "te", "trailers, gzip")));
}

TEST_CASE("CONNECT names only the authority") {
  CHECK(request_ok({{":method", "CONNECT"}, {":authority", "h:443"}}));
  CHECK_FALSE(request_ok({{":method", "CONNECT"}, {":authority", "h:443"}, {":path", "/"}}));
  CHECK_FALSE(request_ok({{":method", "CONNECT"}}));
}

TEST_CASE("content-length must match the body") {
  SUBCASE("exact") {
    RequestCheck check;
    for (const auto& [name, value] : with(good, "content-length", "10")) {
      REQUIRE(check.on_field(name, value, false));
    }
    REQUIRE(check.on_headers_end());
    CHECK(check.on_data(4));
    CHECK_FALSE(check.on_end());
    CHECK(check.on_data(6));
    CHECK(check.on_end());
    CHECK_FALSE(check.on_data(1));
  }
  SUBCASE("malformed values") {
    for (std::string_view bad : {"", "abc", "+1", "-1", "99999999999999999999"}) {
      CAPTURE(bad);
      CHECK_FALSE(request_ok(with(good, "content-length", bad)));
    }
    CHECK_FALSE(request_ok(with(with(good, "content-length", "1"), "content-length", "1")));
  }
  SUBCASE("no content-length: any body") {
    RequestCheck check;
    CHECK(check.on_data(1 << 20));
    CHECK(check.on_end());
  }
}

TEST_CASE("trailers carry no pseudo-header fields") {
  RequestCheck check;
  for (const auto& [name, value] : good)
    REQUIRE(check.on_field(name, value, false));
  REQUIRE(check.on_headers_end());
  CHECK(check.on_field("x-checksum", "abc", true));
  CHECK_FALSE(check.on_field(":path", "/a", true));
}

TEST_CASE("classify_field tells the fields the relay treats specially apart by exact name") {
  CHECK(classify_field(":method") == FieldName::method);
  CHECK(classify_field(":scheme") == FieldName::scheme);
  CHECK(classify_field(":path") == FieldName::path);
  CHECK(classify_field(":authority") == FieldName::authority);
  CHECK(classify_field(":status") == FieldName::other_pseudo);
  CHECK(classify_field(":protocol") == FieldName::other_pseudo);
  CHECK(classify_field("host") == FieldName::host);
  CHECK(classify_field("te") == FieldName::te);
  CHECK(classify_field("content-length") == FieldName::content_length);
  CHECK(classify_field("content-type") == FieldName::content_type);
  CHECK(classify_field("grpc-timeout") == FieldName::grpc_timeout);
  CHECK(classify_field("transfer-encoding") == FieldName::transfer_encoding);
  // Case is not folded: an uppercase name is another field, and a malformed one.
  CHECK(classify_field("Host") == FieldName::other);
  CHECK(classify_field("grpc-timeouts") == FieldName::other);
  CHECK(classify_field("") == FieldName::other);
  CHECK(is_hop_by_hop(FieldName::connection));
  CHECK(is_hop_by_hop(FieldName::te));
  CHECK_FALSE(is_hop_by_hop(FieldName::content_type));
  CHECK_FALSE(is_hop_by_hop(FieldName::grpc_timeout));
}

}  // namespace grelay
