#include "admin/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>

#include "admin/prometheus_text.h"

namespace grelay {
namespace {

double clock_seconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string number(double value) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", value);
  return buf;
}

uint64_t count_open_fds() {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return 0;
  uint64_t n = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  closedir(dir);
  // The directory's own descriptor was open while it was read.
  return n > 0 ? n - 1 : 0;
}

// A time in seconds counted in whole ticks (1/100 s): three decimals say all there is.
std::string ticks(double value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", value);
  return buf;
}

std::string count(uint64_t value) {
  return std::to_string(value);
}

// The process_* families, each declared once: X(member of ProcessSample, how its value is
// written, name, type, help). Those read from /proc/self/stat are left out when it could not
// be read.
#define GRELAY_PROCESS_STAT_METRICS(X)                                \
  X(cpu_seconds, number, "process_cpu_seconds_total", "counter",      \
    "Total user and system CPU time spent in seconds.")               \
  X(resident_bytes, count, "process_resident_memory_bytes", "gauge",  \
    "Resident memory size in bytes.")                                 \
  X(virtual_bytes, count, "process_virtual_memory_bytes", "gauge",    \
    "Virtual memory size in bytes.")                                  \
  X(start_time_seconds, ticks, "process_start_time_seconds", "gauge", \
    "Start time of the process since unix epoch in seconds.")
#define GRELAY_PROCESS_FD_METRICS(X)                                                  \
  X(open_fds, count, "process_open_fds", "gauge", "Number of open file descriptors.") \
  X(max_fds, count, "process_max_fds", "gauge", "Maximum number of open file descriptors.")

}  // namespace

ProcessSample sample_process() {
  ProcessSample sample;
  sample.open_fds = count_open_fds();
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) sample.max_fds = limit.rlim_cur;

  std::ifstream file("/proc/self/stat");
  std::string line;
  if (!std::getline(file, line)) return sample;
  // The command name, field 2, is in parentheses and may hold spaces: fields are counted
  // from the last ')', which is followed by field 3 (state).
  size_t close = line.rfind(')');
  if (close == std::string::npos) return sample;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  uint64_t utime = 0, stime = 0, starttime = 0, vsize = 0;
  int64_t rss_pages = 0;
  for (int n = 3; n <= 24 && fields >> field; ++n) {
    if (n == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (n == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
    if (n == 22) starttime = std::strtoull(field.c_str(), nullptr, 10);
    if (n == 23) vsize = std::strtoull(field.c_str(), nullptr, 10);
    if (n == 24) rss_pages = std::strtoll(field.c_str(), nullptr, 10);
  }
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  sample.cpu_seconds = static_cast<double>(utime + stime) / ticks;
  sample.virtual_bytes = vsize;
  sample.resident_bytes = static_cast<uint64_t>(rss_pages) * static_cast<uint64_t>(getpagesize());
  // starttime counts ticks since boot. The wall clock of the boot is now minus the time
  // since boot (CLOCK_BOOTTIME), which needs no /proc/stat (hidden by systemd's
  // ProcSubset=pid).
  sample.start_time_seconds = clock_seconds(CLOCK_REALTIME) - clock_seconds(CLOCK_BOOTTIME) +
                              static_cast<double>(starttime) / ticks;
  sample.has_stat = true;
  return sample;
}

std::string render_process_metrics(const ProcessSample& s) {
  using namespace prometheus;
  std::string out;
#define GRELAY_PROCESS_FAMILY(member, format, name, type, help) \
  family(out, name, type, help);                                \
  sample(out, name, "", format(s.member));
  if (s.has_stat) {
    GRELAY_PROCESS_STAT_METRICS(GRELAY_PROCESS_FAMILY)
  }
  GRELAY_PROCESS_FD_METRICS(GRELAY_PROCESS_FAMILY)
#undef GRELAY_PROCESS_FAMILY
  return out;
}

}  // namespace grelay
