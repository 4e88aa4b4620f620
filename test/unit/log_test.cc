#include "core/log.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <regex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "grelay/log.h"

using grelay::LogLevel;

namespace {

// Sends stderr to a temporary file while alive; lines() reads what was written.
class StderrCapture {
 public:
  StderrCapture() {
    file_ = std::tmpfile();
    REQUIRE(file_ != nullptr);
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    REQUIRE(saved_ >= 0);
    REQUIRE(::dup2(::fileno(file_), STDERR_FILENO) >= 0);
  }
  ~StderrCapture() {
    restore();
    std::fclose(file_);
  }

  std::vector<std::string> lines() {
    restore();
    std::vector<std::string> out;
    std::rewind(file_);
    std::string line;
    for (int c; (c = std::fgetc(file_)) != EOF;) {
      if (c == '\n') {
        out.push_back(line);
        line.clear();
      } else {
        line.push_back(static_cast<char>(c));
      }
    }
    // A trailing piece without a newline would be a malformed line; keep it visible.
    if (!line.empty()) out.push_back(line + "<no newline>");
    return out;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }

  std::FILE* file_ = nullptr;
  int saved_ = -1;
};

// Restores the default level when a test ends.
struct LevelGuard {
  ~LevelGuard() { grelay::set_log_level(LogLevel::info); }
};

// Sends every line to a sink of its own while alive, as an embedding host would.
class SinkCapture {
 public:
  SinkCapture() {
    grelay::set_log_sink([this](LogLevel level, std::string_view message) {
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.emplace_back(level, std::string(message));
    });
  }
  ~SinkCapture() { grelay::set_log_sink(nullptr); }

  std::vector<std::pair<LogLevel, std::string>> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<LogLevel, std::string>> lines_;
};

const std::regex line_format(
    R"(ts=\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z level=(debug|info|warn|error) msg=".*"( suppressed=\d+)?)");

// "ts=2026-11-21T07:50:00.123Z level=" precedes the level word.
constexpr size_t timestamp_len = 34;

}  // namespace

TEST_CASE("log_message writes one timestamped line with the level word") {
  LevelGuard guard;
  grelay::set_log_level(LogLevel::debug);
  StderrCapture capture;
  grelay::log_message(LogLevel::info, "listening on %s:%d", "127.0.0.1", 50050);
  grelay::log_message(LogLevel::debug, "d");
  grelay::log_message(LogLevel::warn, "w");
  grelay::log_message(LogLevel::error, "e %d%%", 5);
  const auto lines = capture.lines();
  REQUIRE(lines.size() == 4);
  for (const auto& line : lines) {
    CAPTURE(line);
    CHECK(std::regex_match(line, line_format));
  }
  CHECK(lines[0].substr(timestamp_len) == R"(info msg="listening on 127.0.0.1:50050")");
  CHECK(lines[1].substr(timestamp_len) == R"(debug msg="d")");
  CHECK(lines[2].substr(timestamp_len) == R"(warn msg="w")");
  CHECK(lines[3].substr(timestamp_len) == R"(error msg="e 5%")");
}

TEST_CASE("log levels below the threshold are dropped") {
  LevelGuard guard;
  CHECK_FALSE(grelay::log_enabled(LogLevel::debug));  // The default is info.
  CHECK(grelay::log_enabled(LogLevel::info));
  grelay::set_log_level(LogLevel::warn);
  CHECK_FALSE(grelay::log_enabled(LogLevel::info));
  CHECK(grelay::log_enabled(LogLevel::warn));
  CHECK(grelay::log_enabled(LogLevel::error));

  StderrCapture capture;
  grelay::log_message(LogLevel::info, "dropped");
  GRELAY_LOG_DEBUG("dropped");
  GRELAY_LOG_INFO("dropped");
  GRELAY_LOG_WARN("kept %d", 1);
  GRELAY_LOG_ERROR("kept %d", 2);
  const auto lines = capture.lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].substr(timestamp_len) == R"(warn msg="kept 1")");
  CHECK(lines[1].substr(timestamp_len) == R"(error msg="kept 2")");
}

TEST_CASE("log macros do not evaluate their arguments when the level is disabled") {
  LevelGuard guard;
  grelay::set_log_level(LogLevel::error);
  int evaluated = 0;
  auto count = [&evaluated] { return ++evaluated; };
  StderrCapture capture;
  GRELAY_LOG_DEBUG("%d", count());
  GRELAY_LOG_INFO("%d", count());
  GRELAY_LOG_WARN("%d", count());
  CHECK(evaluated == 0);
  GRELAY_LOG_ERROR("%d", count());
  CHECK(evaluated == 1);
  CHECK(capture.lines().size() == 1);
}

TEST_CASE("log_message replaces control characters so a message stays on one line") {
  StderrCapture capture;
  grelay::log_message(LogLevel::error, "bad path %s", "/a\nforged\r\x1b[31m\x1f\x7f\t~");
  const auto lines = capture.lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].substr(timestamp_len) == R"(error msg="bad path /a?forged??[31m???~")");
}

TEST_CASE("log_message cuts a long message but still ends the line") {
  StderrCapture capture;
  const std::string big(10000, 'x');
  grelay::log_message(LogLevel::error, "%s", big.c_str());
  grelay::log_message(LogLevel::error, "after");
  const auto lines = capture.lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].size() < 4096);
  CHECK(lines[0].size() > 4000);
  CHECK(lines[0].find_first_not_of('x', timestamp_len + 11) == lines[0].size() - 1);
  CHECK(lines[1].substr(timestamp_len) == R"(error msg="after")");
}

TEST_CASE("log_message leaves errno as it was") {
  StderrCapture capture;
  errno = ERANGE;
  grelay::log_message(LogLevel::error, "x");
  CHECK(errno == ERANGE);
  CHECK(capture.lines().size() == 1);
}

TEST_CASE("log_message leaves errno as it was even when the write fails") {
  std::fflush(stderr);
  const int saved = ::dup(STDERR_FILENO);
  REQUIRE(saved >= 0);
  // A read-only stderr makes write(2) fail with EBADF.
  const int read_only = ::open("/dev/null", O_RDONLY);
  REQUIRE(read_only >= 0);
  REQUIRE(::dup2(read_only, STDERR_FILENO) >= 0);
  errno = ERANGE;
  grelay::log_message(LogLevel::error, "lost");
  const int after = errno;
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(read_only);
  CHECK(after == ERANGE);
}

TEST_CASE("log_message escapes quotes and backslashes so the msg field stays one value") {
  StderrCapture capture;
  grelay::log_message(LogLevel::error, "path %s", "/a\"b\\c");
  const auto lines = capture.lines();
  REQUIRE(lines.size() == 1);
  CHECK(std::regex_match(lines[0], line_format));
  CHECK(lines[0].substr(timestamp_len) == R"(error msg="path /a\"b\\c")");
}

TEST_CASE("LogRateLimit lets a site write a few lines per second and counts the rest") {
  grelay::LogRateLimit limit;
  uint64_t suppressed = 99;
  int allowed = 0;
  for (int i = 0; i < 25; ++i) {
    if (limit.allow(5000, &suppressed)) {
      ++allowed;
      CHECK(suppressed == 0);
    }
  }
  CHECK(allowed == static_cast<int>(grelay::LogRateLimit::default_per_second));
  // The next second lets lines through again; the first reports what was held back.
  REQUIRE(limit.allow(6001, &suppressed));
  CHECK(suppressed == 25 - grelay::LogRateLimit::default_per_second);
  REQUIRE(limit.allow(6002, &suppressed));
  CHECK(suppressed == 0);
}

TEST_CASE("repeated warnings from one site are rate-limited with a suppressed count") {
  StderrCapture capture;
  for (int i = 0; i < 30; ++i)
    GRELAY_LOG_WARN("backend down %d", i);
  const auto lines = capture.lines();
  // All 30 usually fall within one second; a second boundary may let up to 10 more through.
  CHECK(lines.size() >= grelay::LogRateLimit::default_per_second);
  CHECK(lines.size() <= 2 * grelay::LogRateLimit::default_per_second);
  CHECK(lines[0].substr(timestamp_len) == R"(warn msg="backend down 0")");
}

TEST_CASE("a host's log sink gets each line at or above the level set, and stderr none") {
  LevelGuard guard;
  grelay::set_log_level(LogLevel::warn);
  StderrCapture capture;
  std::vector<std::pair<LogLevel, std::string>> lines;
  {
    SinkCapture sink;
    grelay::log_line(LogLevel::info, "dropped");
    GRELAY_LOG_INFO("dropped %d", 2);
    grelay::log_line(LogLevel::warn, "kept");
    GRELAY_LOG_ERROR("relay error %d", 7);
    // Text from the network cannot forge a line in the host's log either.
    grelay::log_line(LogLevel::error, "bad path /a\nforged\x1b");
    lines = sink.lines();
  }
  CHECK(capture.lines().empty());
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == std::pair<LogLevel, std::string>(LogLevel::warn, "kept"));
  CHECK(lines[1] == std::pair<LogLevel, std::string>(LogLevel::error, "relay error 7"));
  CHECK(lines[2] == std::pair<LogLevel, std::string>(LogLevel::error, "bad path /a?forged?"));
}

TEST_CASE("a sink hears how many lines a site held back") {
  SinkCapture sink;
  grelay::log_message_suppressed(LogLevel::error, 12, "backend %s down", "b1");
  const auto lines = sink.lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].second == "backend b1 down (12 suppressed)");
}

TEST_CASE("log lines go back to stderr once the sink is cleared") {
  StderrCapture capture;
  {
    SinkCapture sink;
    grelay::log_line(LogLevel::error, "to the sink");
    CHECK(sink.lines().size() == 1);
  }
  grelay::log_line(LogLevel::error, "to \"stderr\"");
  const auto lines = capture.lines();
  REQUIRE(lines.size() == 1);
  CHECK(std::regex_match(lines[0], line_format));
  CHECK(lines[0].substr(timestamp_len) == R"(error msg="to \"stderr\"")");
}

TEST_CASE("a sink that throws loses its line, and the caller goes on") {
  int calls = 0;
  grelay::set_log_sink([&calls](LogLevel, std::string_view) {
    ++calls;
    throw std::runtime_error("host's logger is down");
  });
  errno = ERANGE;
  grelay::log_line(LogLevel::error, "one");
  GRELAY_LOG_ERROR("two");
  CHECK(errno == ERANGE);
  grelay::set_log_sink(nullptr);
  CHECK(calls == 2);
}

TEST_CASE("the host's level holds over configs' log_level until use_config_log_level()") {
  LevelGuard guard;
  grelay::set_log_level(LogLevel::error);
  grelay::apply_config_log_level(LogLevel::debug);
  CHECK(grelay::log_level() == LogLevel::error);
  grelay::use_config_log_level();
  // Nothing changes until a config is applied again.
  CHECK(grelay::log_level() == LogLevel::error);
  grelay::apply_config_log_level(LogLevel::debug);
  CHECK(grelay::log_level() == LogLevel::debug);
  CHECK(grelay::log_enabled(LogLevel::debug));
  grelay::apply_config_log_level(LogLevel::warn);
  CHECK(grelay::log_level() == LogLevel::warn);
}
