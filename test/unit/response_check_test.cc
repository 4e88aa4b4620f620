#include <doctest/doctest.h>

#include <string_view>
#include <utility>
#include <vector>

#include "h2/request_check.h"

namespace grelay {
namespace {

using Verdict = ResponseCheck::Verdict;
using Fields = std::vector<std::pair<std::string_view, std::string_view>>;

// Runs |fields| through |check| as one block: the verdict of the first field that is not
// `pass`, or `pass`.
Verdict block(ResponseCheck& check, const Fields& fields) {
  for (const auto& [name, value] : fields) {
    Verdict v = check.on_field(name, value);
    if (v != Verdict::pass) return v;
  }
  return Verdict::pass;
}

TEST_CASE("ResponseCheck: a gRPC answer passes") {
  ResponseCheck check;
  CHECK(block(check, {{":status", "200"}, {"content-type", "application/grpc"}}) == Verdict::pass);
  CHECK_FALSE(check.final_received());
  CHECK(check.on_headers_end(false));
  CHECK(check.final_received());
  CHECK(check.on_data(5));
  CHECK(check.on_data(100000));
  CHECK(block(check, {{"grpc-status", "0"}, {"grpc-message", ""}}) == Verdict::pass);
  CHECK(check.on_headers_end(true));
}

TEST_CASE("ResponseCheck: Trailers-Only and a body ended by DATA") {
  ResponseCheck only;
  CHECK(block(only, {{":status", "200"}, {"grpc-status", "14"}}) == Verdict::pass);
  CHECK(only.on_headers_end(true));
  ResponseCheck data;
  CHECK(block(data, {{":status", "200"}}) == Verdict::pass);
  CHECK(data.on_headers_end(false));
  CHECK(data.on_data(3));
  CHECK(data.on_end());
}

TEST_CASE("ResponseCheck: :status is required, once, first, three digits, not 101") {
  ResponseCheck none;
  CHECK(block(none, {{"content-type", "application/grpc"}}) == Verdict::pass);
  CHECK_FALSE(none.on_headers_end(false));
  for (std::string_view bad : {"20", "2000", "", "20a", " 20", "+20", "-20", "101", "2 0"}) {
    ResponseCheck check;
    CHECK_MESSAGE(check.on_field(":status", bad) == Verdict::malformed, bad);
  }
  for (std::string_view good : {"000", "100", "199", "200", "404", "999"}) {
    ResponseCheck check;
    CHECK_MESSAGE(check.on_field(":status", good) == Verdict::pass, good);
  }
  ResponseCheck twice;
  CHECK(twice.on_field(":status", "200") == Verdict::pass);
  CHECK(twice.on_field(":status", "200") == Verdict::malformed);
  ResponseCheck late;
  CHECK(late.on_field("grpc-status", "0") == Verdict::pass);
  CHECK(late.on_field(":status", "200") == Verdict::malformed);
  // A dropped field counts as a regular one too.
  ResponseCheck after_dropped;
  CHECK(after_dropped.on_field("bad name", "x") == Verdict::drop);
  CHECK(after_dropped.on_field(":status", "200") == Verdict::malformed);
}

TEST_CASE("ResponseCheck: other pseudo-header fields are malformed") {
  for (std::string_view name : {":method", ":scheme", ":path", ":authority", ":protocol", ":x", ":",
                                ":Status", ":STATUS"}) {
    ResponseCheck check;
    CHECK(check.on_field(":status", "200") == Verdict::pass);
    CHECK_MESSAGE(check.on_field(name, "x") == Verdict::malformed, name);
  }
}

TEST_CASE("ResponseCheck: an invalid regular field is dropped; an uppercase name is malformed") {
  ResponseCheck check;
  CHECK(check.on_field(":status", "200") == Verdict::pass);
  CHECK(check.on_field("", "x") == Verdict::drop);
  CHECK(check.on_field("a b", "x") == Verdict::drop);
  CHECK(check.on_field("a:b", "x") == Verdict::drop);
  CHECK(check.on_field("x\x80", "x") == Verdict::drop);
  CHECK(check.on_field("x-v", "a\x01") == Verdict::drop);
  CHECK(check.on_field("x-v", "a\x7f") == Verdict::drop);
  CHECK(check.on_field("x-v", " a") == Verdict::drop);
  CHECK(check.on_field("x-v", "a\t") == Verdict::drop);
  CHECK(check.on_field("x-v", "a\r\nb") == Verdict::drop);
  CHECK(check.on_field("x-v", "a\tb \x80\xff") == Verdict::pass);
  CHECK(check.on_field("x-v", "") == Verdict::pass);
  CHECK(check.on_field("x-!#$%&'*+-.^_`|~09", "v") == Verdict::pass);
  CHECK(check.on_field("content-length", " 5") == Verdict::drop);
  CHECK(check.on_field("te", "trailers ") == Verdict::drop);
  CHECK(check.on_field("Grpc-Status", "0") == Verdict::malformed);
  ResponseCheck upper_bad;
  CHECK(upper_bad.on_field(":status", "200") == Verdict::pass);
  CHECK(upper_bad.on_field("A b", "x") == Verdict::malformed);
}

TEST_CASE("ResponseCheck: connection-specific fields are malformed; te only trailers") {
  for (std::string_view name :
       {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}) {
    ResponseCheck check;
    CHECK(check.on_field(":status", "200") == Verdict::pass);
    CHECK_MESSAGE(check.on_field(name, "x") == Verdict::malformed, name);
  }
  ResponseCheck te;
  CHECK(te.on_field(":status", "200") == Verdict::pass);
  CHECK(te.on_field("te", "trailers") == Verdict::pass);
  CHECK(te.on_field("te", "TRAILERS") == Verdict::pass);
  CHECK(te.on_field("te", "gzip") == Verdict::malformed);
  ResponseCheck host;
  CHECK(host.on_field(":status", "200") == Verdict::pass);
  CHECK(host.on_field("host", "a b") == Verdict::pass);
  CHECK(host.on_field("host", "") == Verdict::pass);
}

TEST_CASE("ResponseCheck: content-length") {
  ResponseCheck check;
  CHECK(block(check, {{":status", "200"}, {"content-length", "10"}}) == Verdict::pass);
  CHECK(check.on_field("content-length", "10") == Verdict::malformed);
  for (std::string_view bad : {"", "+1", "1a", "0x1", "9223372036854775808"}) {
    ResponseCheck c;
    CHECK(c.on_field(":status", "200") == Verdict::pass);
    CHECK_MESSAGE(c.on_field("content-length", bad) == Verdict::malformed, bad);
  }
  ResponseCheck max;
  CHECK(block(max, {{":status", "200"}, {"content-length", "9223372036854775807"}}) ==
        Verdict::pass);

  ResponseCheck exact;
  CHECK(block(exact, {{":status", "200"}, {"content-length", "10"}}) == Verdict::pass);
  CHECK(exact.on_headers_end(false));
  CHECK(exact.on_data(4));
  CHECK(exact.on_data(6));
  CHECK(exact.on_end());
  CHECK(exact.on_headers_end(true));

  ResponseCheck over;
  CHECK(block(over, {{":status", "200"}, {"content-length", "10"}}) == Verdict::pass);
  CHECK(over.on_headers_end(false));
  CHECK(over.on_data(10));
  CHECK_FALSE(over.on_data(1));

  ResponseCheck short_data;
  CHECK(block(short_data, {{":status", "200"}, {"content-length", "10"}}) == Verdict::pass);
  CHECK(short_data.on_headers_end(false));
  CHECK(short_data.on_data(9));
  CHECK_FALSE(short_data.on_end());

  ResponseCheck short_trailers;
  CHECK(block(short_trailers, {{":status", "200"}, {"content-length", "10"}}) == Verdict::pass);
  CHECK(short_trailers.on_headers_end(false));
  CHECK(short_trailers.on_data(9));
  CHECK_FALSE(short_trailers.on_headers_end(true));

  ResponseCheck headers_only;
  CHECK(block(headers_only, {{":status", "200"}, {"content-length", "1"}}) == Verdict::pass);
  CHECK_FALSE(headers_only.on_headers_end(true));

  // A length first declared in the trailers still binds the body.
  ResponseCheck in_trailers;
  CHECK(in_trailers.on_field(":status", "200") == Verdict::pass);
  CHECK(in_trailers.on_headers_end(false));
  CHECK(in_trailers.on_data(3));
  CHECK(in_trailers.on_field("content-length", "4") == Verdict::pass);
  CHECK_FALSE(in_trailers.on_headers_end(true));
  ResponseCheck in_trailers_twice;
  CHECK(block(in_trailers_twice, {{":status", "200"}, {"content-length", "3"}}) == Verdict::pass);
  CHECK(in_trailers_twice.on_headers_end(false));
  CHECK(in_trailers_twice.on_field("content-length", "3") == Verdict::malformed);
}

TEST_CASE("ResponseCheck: 204 and 304 have no body") {
  ResponseCheck no_content;
  CHECK(block(no_content, {{":status", "204"}, {"content-length", "0"}}) == Verdict::drop);
  CHECK(no_content.on_field("content-length", "0") == Verdict::malformed);
  ResponseCheck no_content_len;
  CHECK(no_content_len.on_field(":status", "204") == Verdict::pass);
  CHECK(no_content_len.on_field("content-length", "1") == Verdict::malformed);
  ResponseCheck no_content_data;
  CHECK(no_content_data.on_field(":status", "204") == Verdict::pass);
  CHECK(no_content_data.on_headers_end(false));
  CHECK_FALSE(no_content_data.on_data(1));
  ResponseCheck no_content_end;
  CHECK(no_content_end.on_field(":status", "204") == Verdict::pass);
  CHECK(no_content_end.on_headers_end(false));
  CHECK(no_content_end.on_end());
  ResponseCheck no_content_trailers;
  CHECK(no_content_trailers.on_field(":status", "204") == Verdict::pass);
  CHECK(no_content_trailers.on_headers_end(false));
  CHECK(no_content_trailers.on_field("content-length", "0") == Verdict::malformed);

  ResponseCheck not_modified;
  CHECK(block(not_modified, {{":status", "304"}, {"content-length", "7"}}) == Verdict::pass);
  CHECK(not_modified.on_headers_end(false));
  CHECK_FALSE(not_modified.on_data(1));
  ResponseCheck not_modified_end;
  CHECK(block(not_modified_end, {{":status", "304"}, {"content-length", "7"}}) == Verdict::pass);
  CHECK(not_modified_end.on_headers_end(true));
}

TEST_CASE("ResponseCheck: informational answers come before the final one") {
  ResponseCheck check;
  CHECK(block(check, {{":status", "100"}, {"x-a", "1"}}) == Verdict::pass);
  CHECK(check.on_headers_end(false));
  CHECK_FALSE(check.final_received());
  // The final answer starts afresh: :status again, first.
  CHECK(block(check, {{":status", "103"}}) == Verdict::pass);
  CHECK(check.on_headers_end(false));
  CHECK(block(check, {{":status", "200"}, {"content-length", "2"}}) == Verdict::pass);
  CHECK(check.on_headers_end(false));
  CHECK(check.final_received());
  CHECK(check.on_data(2));
  CHECK(check.on_headers_end(true));

  ResponseCheck ended;
  CHECK(ended.on_field(":status", "100") == Verdict::pass);
  CHECK_FALSE(ended.on_headers_end(true));
  ResponseCheck data;
  CHECK(data.on_field(":status", "100") == Verdict::pass);
  CHECK(data.on_headers_end(false));
  CHECK_FALSE(data.on_data(1));
  ResponseCheck data_end;
  CHECK(data_end.on_field(":status", "100") == Verdict::pass);
  CHECK(data_end.on_headers_end(false));
  CHECK_FALSE(data_end.on_end());
  ResponseCheck no_status;
  CHECK(no_status.on_field(":status", "100") == Verdict::pass);
  CHECK(no_status.on_headers_end(false));
  CHECK(no_status.on_field("grpc-status", "0") == Verdict::pass);
  CHECK_FALSE(no_status.on_headers_end(true));
  ResponseCheck length;
  CHECK(length.on_field(":status", "100") == Verdict::pass);
  CHECK(length.on_field("content-length", "0") == Verdict::malformed);
  // Before :status a length is only a regular field; the late :status is malformed.
  ResponseCheck length_first;
  CHECK(length_first.on_field("content-length", "0") == Verdict::pass);
  CHECK(length_first.on_field(":status", "100") == Verdict::malformed);
}

TEST_CASE("ResponseCheck: trailers end the stream and hold no pseudo-header field") {
  ResponseCheck check;
  CHECK(check.on_field(":status", "200") == Verdict::pass);
  CHECK(check.on_headers_end(false));
  CHECK(check.on_field(":status", "200") == Verdict::malformed);
  ResponseCheck open;
  CHECK(open.on_field(":status", "200") == Verdict::pass);
  CHECK(open.on_headers_end(false));
  CHECK(open.on_field("grpc-status", "0") == Verdict::pass);
  CHECK_FALSE(open.on_headers_end(false));
  ResponseCheck dropped;
  CHECK(dropped.on_field(":status", "200") == Verdict::pass);
  CHECK(dropped.on_headers_end(false));
  CHECK(dropped.on_field("x", "\x01") == Verdict::drop);
  CHECK(dropped.on_field("Y", "1") == Verdict::malformed);
}

}  // namespace
}  // namespace grelay
