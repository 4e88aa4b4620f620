#pragma once

#include <uv.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "grelay/config.h"
#include "grelay/relay.h"
#include "grelay/relay_group.h"

namespace grelay {

// Counts the workers that have yet to apply a reload, so that the main thread reports a
// reload done only once every worker follows the new config.
class Countdown {
 public:
  explicit Countdown(size_t n) noexcept : left_(n) {}
  void done() noexcept;
  // True once every worker is done, false after |timeout|.
  bool wait_for(std::chrono::milliseconds timeout);

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  size_t left_;
};

// A thread running one grelay::Relay of the process's RelayGroup on its own loop. The main
// thread talks to it only through its mailbox (a queue under a mutex plus a uv_async_t): new
// configs, accepted sockets handed over, stop requests. The mutex is shared by this worker
// and the main thread alone and is taken per message, never per call.
class WorkerThread {
 public:
  enum class Stop { drain, expire, close_now };

  // A Relay of |group|, on the group's config. Throws as Relay's constructor does.
  WorkerThread(size_t id, std::shared_ptr<RelayGroup> group);
  // Joins the thread.
  ~WorkerThread();
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;

  // Before start() only: the relay serves listening socket |fd| for listener |index|. Throws
  // std::system_error.
  void listen(size_t index, int fd) { relay_->listen_fd(index, fd); }
  // Runs the loop on a new thread; |on_exit| runs on that thread once the loop has ended.
  void start(std::function<void()> on_exit);
  void join();

  size_t id() const noexcept { return id_; }
  // How many connections the worker took. Main thread, after join(): what it had at its end.
  RelayLoad load() const noexcept { return relay_ ? relay_->load() : final_load_; }

  // Any thread. Reload: the relay switches to |config| (which the group was reloaded to) and
  // serves |listen_fds| (pairs of listener index in |config| and socket) for the listeners it
  // adds, then counts down |countdown| (also when it has stopped and drops the message).
  void post_config(std::shared_ptr<const Config> config,
                   std::vector<std::pair<size_t, int>> listen_fds,
                   std::shared_ptr<Countdown> countdown);
  // Any thread. Hands over accepted socket |fd| of listener |index| (of the config posted
  // last). The socket is closed if the worker has stopped.
  void post_connection(int fd, size_t index);
  void post_stop(Stop mode);
  // Any thread. The worker reopens its access log file (logrotate moved it).
  void post_reopen_logs();

 private:
  struct Message {
    enum class Kind { config, connection, stop, reopen_logs };
    explicit Message(Kind k) noexcept : kind(k) {}
    Kind kind;
    std::shared_ptr<const Config> config;
    std::vector<std::pair<size_t, int>> fds;
    std::shared_ptr<Countdown> countdown;
    Stop stop = Stop::drain;
  };

  void post(Message message);
  static void mailbox_cb(uv_async_t* handle) noexcept;
  void handle(Message& message) noexcept;
  void apply_config(Message& message) noexcept;
  // Closes the sockets of a message that is not handled, and counts it down.
  static void discard(Message& message) noexcept;

  size_t id_;
  uv_loop_t loop_;
  uv_async_t mailbox_async_;
  std::unique_ptr<Relay> relay_;
  // Once a stop was handled, configs are dropped (the relay would ignore them).
  bool stopping_ = false;
  RelayLoad final_load_;
  std::thread thread_;
  std::function<void()> on_exit_;

  std::mutex mutex_;
  std::vector<Message> mailbox_;
  // Set once the worker closed |mailbox_async_|; later posts are discarded.
  bool stopped_ = false;
};

}  // namespace grelay
