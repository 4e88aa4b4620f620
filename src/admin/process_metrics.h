#pragma once

#include <cstdint>
#include <string>

namespace grelay {

// What the process uses, read from /proc/self at scrape time, named as Prometheus' own
// client libraries name it (process_*), so the usual dashboards and alerts apply.
struct ProcessSample {
  double cpu_seconds = 0;       // user + system
  uint64_t resident_bytes = 0;  // RSS
  uint64_t virtual_bytes = 0;
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;           // the soft RLIMIT_NOFILE
  double start_time_seconds = 0;  // since the epoch
  // False when /proc/self/stat could not be read (then only the fd numbers are set).
  bool has_stat = false;
};

ProcessSample sample_process();
std::string render_process_metrics(const ProcessSample& sample);

}  // namespace grelay
