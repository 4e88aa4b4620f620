#pragma once

#include <uv.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "app/acceptor.h"
#include "app/cert_watcher.h"
#include "app/service_notifier.h"
#include "app/worker_thread.h"
#include "grelay/admin_endpoint.h"
#include "grelay/config.h"
#include "grelay/relay_group.h"

namespace grelay {

// The grelay process, over the public API: a RelayGroup, and worker threads each running one
// of its Relays on its own loop; the listening sockets (one SO_REUSEPORT socket per worker,
// or one acceptor on the main thread handing connections out); the admin endpoint; signals,
// reload and drain on the main thread.
class Server {
 public:
  explicit Server(std::shared_ptr<const Config> config);
  ~Server();

  // Binds every listener, starts the workers and runs until they have all stopped.
  // Returns the process exit code.
  int run();

  struct ReloadResult {
    bool ok = false;
    // False when the file was valid but could not be applied (e.g. a port is taken).
    bool config_error = false;
    // "file:line: message" when !ok.
    std::string error;
  };
  // Reads and validates the config file again (here, off the data path) and, if it is valid,
  // hands the new config to every worker: new calls follow it, open calls finish on the
  // config they started with. An invalid file changes nothing. SIGHUP and POST /reload.
  ReloadResult reload();

  // Successful and failed reloads so far (main thread).
  uint64_t reloads() const noexcept { return reloads_; }
  uint64_t reload_failures() const noexcept { return reload_failures_; }

 private:
  // One listener of the config in force.
  struct ListenerState {
    bool open = false;
    std::string bound;
    // Handoff mode: the socket watched on the main loop.
    Acceptor* acceptor = nullptr;
  };

  // Opens the sockets of |listener| (|index| in |config|): one per worker for reuseport,
  // else one acceptor. Puts worker sockets in |worker_fds|. Throws ConfigError with the
  // listener's line.
  ListenerState open_listener(const Config& config, size_t index,
                              std::vector<std::vector<std::pair<size_t, int>>>& worker_fds);
  void hand_out(int fd, size_t listener_index) noexcept;
  // reload() without telling the service manager (reload() wraps it in RELOADING/READY).
  ReloadResult apply_reload();
  void start_drain();
  void force_stop();
  void close_main_handles();
  // Asks every worker to reopen its access log (logrotate moved the file).
  void reopen_logs();
  // Certificates and keys of TLS listeners and clusters, reread (SIGHUP, file changes), for
  // every config still in use.
  void reload_certificates();
  // Watches the certificate files of the config in force (replacing the watch of an earlier
  // config).
  void watch_certificates();
  static void signal_cb(uv_signal_t* handle, int signum) noexcept;
  static void config_poll_cb(uv_fs_poll_t* handle, int status, const uv_stat_t* prev,
                             const uv_stat_t* curr) noexcept;
  static void drain_timer_cb(uv_timer_t* handle) noexcept;

  std::shared_ptr<const Config> config_;
  // What the workers' Relays share: certificates, listener counts, metrics.
  std::shared_ptr<RelayGroup> group_;
  size_t worker_count_ = 1;
  bool handoff_ = false;
  uv_loop_t loop_;
  uv_signal_t sigterm_;
  uv_signal_t sigint_;
  uv_signal_t sighup_;
  uv_signal_t sigusr1_;
  uv_timer_t drain_timer_;
  // watch_config: the config file's stat, polled (it follows symlinks, so a ConfigMap's
  // atomic swap of its ..data link shows as a new inode).
  uv_fs_poll_t config_poll_;
  bool polling_config_ = false;
  std::vector<ListenerState> listeners_;
  std::vector<std::unique_ptr<WorkerThread>> workers_;
  size_t next_worker_ = 0;
  std::atomic<int> running_workers_{0};
  uv_async_t all_stopped_;
  std::unique_ptr<AdminEndpoint> admin_;
  std::unique_ptr<CertWatcher> cert_watcher_;
  // Watchers of earlier configs, closed; freed with the Server.
  std::vector<std::unique_ptr<CertWatcher>> closed_watchers_;
  ServiceNotifier notifier_;
  bool draining_ = false;
  // After the drain timeout: calls were told to end; the next timer expiry closes everything.
  bool expired_ = false;
  uint64_t reloads_ = 0;
  uint64_t reload_failures_ = 0;
};

}  // namespace grelay
