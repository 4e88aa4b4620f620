#include "app/cert_watcher.h"

#include <algorithm>

#include "app/log_format.h"

namespace grelay {
namespace {

// Changes closer together than this are one rotation.
constexpr uint64_t quiet_ms = 300;

}  // namespace

CertWatcher::CertWatcher(uv_loop_t* loop, const std::vector<std::string>& files,
                         std::function<void()> on_change)
    : on_change_(std::move(on_change)) {
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
  for (const std::string& file : files) {
    size_t slash = file.rfind('/');
    std::string dir = slash == std::string::npos ? "." : file.substr(0, slash == 0 ? 1 : slash);
    std::string name = slash == std::string::npos ? file : file.substr(slash + 1);
    auto it =
        std::find_if(dirs_.begin(), dirs_.end(), [&](const auto& d) { return d->path == dir; });
    if (it != dirs_.end()) {
      (*it)->names.push_back(name);
      continue;
    }
    auto entry = std::make_unique<Dir>();
    entry->owner = this;
    entry->path = dir;
    entry->names.push_back(name);
    uv_fs_event_init(loop, &entry->handle);
    entry->handle.data = entry.get();
    int rc = uv_fs_event_start(&entry->handle, event_cb, dir.c_str(), 0);
    if (rc != 0) {
      log_format(LogLevel::warn,
                 "cannot watch %s for certificate changes (%s); send SIGHUP after a change",
                 dir.c_str(), uv_strerror(rc));
    }
    // Watching alone must not keep the process running.
    uv_unref(reinterpret_cast<uv_handle_t*>(&entry->handle));
    dirs_.push_back(std::move(entry));
  }
}

CertWatcher::~CertWatcher() = default;

void CertWatcher::event_cb(uv_fs_event_t* handle, const char* filename, int, int status) noexcept {
  auto* dir = static_cast<Dir*>(handle->data);
  CertWatcher* self = dir->owner;
  if (self->closed_ || status < 0) return;
  // No name: something changed, unknown what; reload to be safe.
  if (filename && std::find(dir->names.begin(), dir->names.end(), filename) == dir->names.end()) {
    return;
  }
  uv_timer_start(&self->timer_, timer_cb, quiet_ms, 0);
}

void CertWatcher::timer_cb(uv_timer_t* timer) noexcept {
  auto* self = static_cast<CertWatcher*>(timer->data);
  if (self->closed_) return;
  log_format(LogLevel::info, "certificate files changed: reloading them");
  self->on_change_();
}

void CertWatcher::close() noexcept {
  if (closed_) return;
  closed_ = true;
  for (auto& dir : dirs_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&dir->handle), nullptr);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

}  // namespace grelay
