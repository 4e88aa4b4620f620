#pragma once

#include <uv.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "admin/admin_server.h"
#include "admin/metrics.h"
#include "app/cert_watcher.h"
#include "grelay/config.h"
#include "grelay/relay.h"

namespace grelay {

// The grelay process: one Relay per worker thread, each on its own loop with its own
// SO_REUSEPORT listening sockets, and signal handling on the main thread.
class Server {
 public:
  explicit Server(std::shared_ptr<const Config> config);
  ~Server();

  // Binds every listener, starts the workers and runs until they have all stopped.
  // Returns the process exit code.
  int run();

 private:
  struct WorkerThread;

  void open_listeners();
  void start_drain();
  void force_stop();
  // Asks every worker to reopen its access log (logrotate moved the file).
  void reopen_logs();
  static void signal_cb(uv_signal_t* handle, int signum) noexcept;
  static void drain_timer_cb(uv_timer_t* handle) noexcept;
  // Certificates and keys of TLS listeners and clusters, reread (SIGHUP, file changes).
  void reload_certificates();

  std::shared_ptr<const Config> config_;
  uv_loop_t loop_;
  uv_signal_t sigterm_;
  uv_signal_t sigint_;
  uv_signal_t sighup_;
  uv_signal_t sigusr1_;
  uv_timer_t drain_timer_;
  // listen_fds_[worker][listener]
  std::vector<std::vector<int>> listen_fds_;
  std::vector<std::unique_ptr<WorkerThread>> workers_;
  std::atomic<int> running_workers_{0};
  uv_async_t all_stopped_;
  Metrics metrics_;
  std::unique_ptr<AdminServer> admin_;
  // Shared by every worker's Relay.
  std::shared_ptr<TlsContexts> tls_;
  std::unique_ptr<CertWatcher> cert_watcher_;
  bool draining_ = false;
};

}  // namespace grelay
