#include "core/grpc_timeout.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

using namespace std::chrono_literals;
using grelay::format_grpc_timeout;
using grelay::max_grpc_timeout;
using grelay::parse_grpc_timeout;
using std::chrono::nanoseconds;

TEST_CASE("parse_grpc_timeout accepts every unit") {
  CHECK(parse_grpc_timeout("7n") == nanoseconds(7));
  CHECK(parse_grpc_timeout("7u") == nanoseconds(7'000));
  CHECK(parse_grpc_timeout("7m") == nanoseconds(7'000'000));
  CHECK(parse_grpc_timeout("7S") == nanoseconds(7s));
  CHECK(parse_grpc_timeout("7M") == nanoseconds(7min));
  CHECK(parse_grpc_timeout("7H") == nanoseconds(7h));
}

TEST_CASE("parse_grpc_timeout accepts 1 to 8 digits, leading zeros and zero") {
  CHECK(parse_grpc_timeout("1S") == nanoseconds(1s));
  CHECK(parse_grpc_timeout("12345678m") == nanoseconds(12345678ms));
  CHECK(parse_grpc_timeout("99999999n") == nanoseconds(99999999));
  CHECK(parse_grpc_timeout("99999999u") == nanoseconds(99999999us));
  CHECK(parse_grpc_timeout("99999999S") == nanoseconds(99999999s));
  CHECK(parse_grpc_timeout("00000001S") == nanoseconds(1s));
  CHECK(parse_grpc_timeout("0S") == nanoseconds(0));
  CHECK(parse_grpc_timeout("00000000H") == nanoseconds(0));
}

TEST_CASE("parse_grpc_timeout rejects 9 or more digits") {
  CHECK_FALSE(parse_grpc_timeout("123456789n").has_value());
  CHECK_FALSE(parse_grpc_timeout("000000001S").has_value());
  CHECK_FALSE(parse_grpc_timeout("1234567890123456789012S").has_value());
}

TEST_CASE("parse_grpc_timeout rejects malformed values") {
  for (const char* text :
       {"",    "S",   "n",   "1",   "12345678", "1s",   "1h",   "1U",   "1N",  "1x", "1ms",
        "1 S", " 1S", "1S ", "-1S", "+1S",      "1.5S", "1,5S", "0x1S", "1SS", "S1", "１S"}) {
    CAPTURE(text);
    CHECK_FALSE(parse_grpc_timeout(text).has_value());
  }
  // An embedded NUL is not a digit.
  CHECK_FALSE(parse_grpc_timeout(std::string_view("1\0S", 3)).has_value());
  CHECK_FALSE(parse_grpc_timeout(std::string_view("1S\0", 3)).has_value());
}

TEST_CASE("parse_grpc_timeout clamps values past max_grpc_timeout instead of overflowing") {
  CHECK(max_grpc_timeout == nanoseconds(100000h));
  // 99999999H is about 3.6e20 ns, past int64.
  CHECK(parse_grpc_timeout("99999999H") == max_grpc_timeout);
  CHECK(parse_grpc_timeout("100000H") == max_grpc_timeout);
  CHECK(parse_grpc_timeout("99999H") == nanoseconds(99999h));
  CHECK(parse_grpc_timeout("100001H") == max_grpc_timeout);
  CHECK(parse_grpc_timeout("2562048H") == max_grpc_timeout);
  CHECK(parse_grpc_timeout("6000000M") == max_grpc_timeout);
  CHECK(parse_grpc_timeout("6000001M") == max_grpc_timeout);
  CHECK(parse_grpc_timeout("5999999M") == nanoseconds(5999999min));
  CHECK(parse_grpc_timeout("99999999M") == max_grpc_timeout);
  // The largest S value fits unclamped (27777 hours).
  CHECK(parse_grpc_timeout("99999999S") < max_grpc_timeout);
}

TEST_CASE("format_grpc_timeout writes a non-positive duration as 1n") {
  CHECK(format_grpc_timeout(nanoseconds(0)) == "1n");
  CHECK(format_grpc_timeout(nanoseconds(-1)) == "1n");
  CHECK(format_grpc_timeout(-5s) == "1n");
  CHECK(format_grpc_timeout(nanoseconds::min()) == "1n");
}

TEST_CASE("format_grpc_timeout uses the coarsest unit that is exact") {
  CHECK(format_grpc_timeout(nanoseconds(1)) == "1n");
  CHECK(format_grpc_timeout(nanoseconds(999)) == "999n");
  CHECK(format_grpc_timeout(1us) == "1u");
  CHECK(format_grpc_timeout(nanoseconds(1500)) == "1500n");
  CHECK(format_grpc_timeout(1ms) == "1m");
  CHECK(format_grpc_timeout(1s) == "1S");
  CHECK(format_grpc_timeout(1500ms) == "1500m");
  CHECK(format_grpc_timeout(90s) == "90S");
  CHECK(format_grpc_timeout(1min) == "1M");
  CHECK(format_grpc_timeout(1h) == "1H");
  CHECK(format_grpc_timeout(120min) == "2H");
  CHECK(format_grpc_timeout(nanoseconds(99999999)) == "99999999n");
  CHECK(format_grpc_timeout(100000h) == "100000H");
}

TEST_CASE("format_grpc_timeout rounds up to the finest unit that fits 8 digits") {
  // 100000001 ns needs 9 digits in n; u rounds it up.
  CHECK(format_grpc_timeout(nanoseconds(100'000'001)) == "100001u");
  CHECK(format_grpc_timeout(nanoseconds(123'456'789'012)) == "123457m");
  CHECK(format_grpc_timeout(nanoseconds(1'234'567'891)) == "1234568u");
  // 99999999.5 us rounds up to 100000000u, 9 digits, so m.
  CHECK(format_grpc_timeout(nanoseconds(99'999'999'500)) == "100000m");
  // Just past 99999999 S with a nanosecond: M, rounded up.
  CHECK(format_grpc_timeout(nanoseconds(99'999'999'000'000'001)) == "1666667M");
  // The largest duration still formats (in hours, rounded up).
  CHECK(format_grpc_timeout(nanoseconds::max()) == "2562048H");
}

TEST_CASE("format_grpc_timeout output parses back to the same or a slightly later value") {
  // A deterministic spread of magnitudes from 1 ns to about 100000 hours.
  uint64_t state = 0x9e3779b97f4a7c15u;
  for (int i = 0; i < 20000; ++i) {
    state = state * 6364136223846793005u + 1442695040888963407u;
    const int bits = 1 + static_cast<int>((state >> 33) % 58);
    const int64_t ns = 1 + static_cast<int64_t>((state >> 3) & ((uint64_t{1} << bits) - 1));
    const nanoseconds d(std::min<int64_t>(ns, max_grpc_timeout.count()));
    const std::string text = format_grpc_timeout(d);
    CAPTURE(d.count());
    CAPTURE(text);
    REQUIRE(text.size() >= 2);
    REQUIRE(text.size() <= 9);
    const auto parsed = parse_grpc_timeout(text);
    REQUIRE(parsed.has_value());
    CHECK(*parsed >= d);
    // The loss is below the chosen unit, which is at most 1000 times a unit in which |d| needs
    // 9 digits; so it is under 1000 / 99999999 of |d|.
    CHECK((*parsed - d).count() <= d.count() / 99'999);
  }
}

TEST_CASE("format_grpc_timeout is exact for values an 8-digit unit can hold") {
  for (nanoseconds d :
       {nanoseconds(1), nanoseconds(12345678), nanoseconds(87654321000), nanoseconds(3s),
        nanoseconds(59min), nanoseconds(99999h), nanoseconds(99999999ms), nanoseconds(99999999s)}) {
    CAPTURE(d.count());
    CHECK(parse_grpc_timeout(format_grpc_timeout(d)) == d);
  }
}

TEST_CASE("parse then format keeps the value") {
  for (const char* text : {"1n", "1u", "1m", "1S", "1M", "1H", "1500m", "99999999n", "99999999u",
                           "99999999m", "99999999S", "5999999M", "100000H"}) {
    CAPTURE(text);
    const auto parsed = parse_grpc_timeout(text);
    REQUIRE(parsed.has_value());
    CHECK(parse_grpc_timeout(format_grpc_timeout(*parsed)) == parsed);
  }
}
