#include "admin/process_metrics.h"

#include <doctest/doctest.h>
#include <time.h>

#include <string>

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("sample_process reads this process's figures from /proc") {
  const grelay::ProcessSample s = grelay::sample_process();
  REQUIRE(s.has_stat);
  // The test runner holds at least stdin, stdout and stderr.
  CHECK(s.open_fds >= 3);
  CHECK(s.max_fds >= s.open_fds);
  CHECK(s.resident_bytes > 0);
  CHECK(s.virtual_bytes >= s.resident_bytes);
  CHECK(s.cpu_seconds >= 0);
  // It started in the past, and not before this machine booted (a day is far more than any
  // test run takes).
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  CHECK(s.start_time_seconds <= static_cast<double>(now.tv_sec) + 1);
  CHECK(s.start_time_seconds > static_cast<double>(now.tv_sec) - 86400);
}

TEST_CASE("render_process_metrics names the figures as Prometheus clients do") {
  grelay::ProcessSample s;
  s.has_stat = true;
  s.cpu_seconds = 1.5;
  s.resident_bytes = 4096;
  s.virtual_bytes = 8192;
  s.open_fds = 7;
  s.max_fds = 1024;
  s.start_time_seconds = 1700000000.25;
  const std::string out = grelay::render_process_metrics(s);
  CHECK(contains(out, "# TYPE process_cpu_seconds_total counter\n"));
  CHECK(contains(out, "process_cpu_seconds_total 1.5\n"));
  CHECK(contains(out, "process_resident_memory_bytes 4096\n"));
  CHECK(contains(out, "process_virtual_memory_bytes 8192\n"));
  CHECK(contains(out, "process_start_time_seconds 1700000000.250\n"));
  CHECK(contains(out, "process_open_fds 7\n"));
  CHECK(contains(out, "process_max_fds 1024\n"));

  // Without /proc/self/stat only the descriptor figures are known.
  s.has_stat = false;
  const std::string fds_only = grelay::render_process_metrics(s);
  CHECK_FALSE(contains(fds_only, "process_cpu_seconds_total"));
  CHECK(contains(fds_only, "process_open_fds 7\n"));
}
