#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace grelay {

// Watches certificate and key files and calls |on_change| once they changed. It watches
// their directories, not the files, so a file replaced by a rename (the usual way to rotate)
// is seen too; a burst of changes (certificate, then key) ends in one call, after a short
// quiet period.
class CertWatcher {
 public:
  CertWatcher(uv_loop_t* loop, const std::vector<std::string>& files,
              std::function<void()> on_change);
  ~CertWatcher();
  CertWatcher(const CertWatcher&) = delete;
  CertWatcher& operator=(const CertWatcher&) = delete;

  // Closes the handles. The object may be destroyed once the loop has run their close
  // callbacks (after uv_run returns).
  void close() noexcept;

 private:
  struct Dir {
    CertWatcher* owner;
    std::string path;
    // Names of the watched files in this directory.
    std::vector<std::string> names;
    uv_fs_event_t handle;
  };

  static void event_cb(uv_fs_event_t* handle, const char* filename, int events,
                       int status) noexcept;
  static void timer_cb(uv_timer_t* timer) noexcept;

  std::vector<std::unique_ptr<Dir>> dirs_;
  uv_timer_t timer_;
  std::function<void()> on_change_;
  bool closed_ = false;
};

}  // namespace grelay
