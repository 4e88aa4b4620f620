#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "grelay/config.h"
#include "grelay/export.h"

namespace grelay {

class Worker;
class WorkerStats;
// The loaded certificates and keys of a config's TLS listeners and clusters (opaque here).
class TlsContexts;

// The relay on one libuv loop: its listeners, client connections, backend connection pools
// and calls. Use it from the loop's thread only. Relays on different loops share nothing but
// the immutable Config.
//
// libuv writes to sockets with write(2): a host process must ignore SIGPIPE
// (signal(SIGPIPE, SIG_IGN)), as the grelay binary does, or a peer that hangs up mid-write
// kills it.
class GRELAY_API Relay {
 public:
  // Loads the config's certificates (throws std::runtime_error when one fails), or uses
  // |tls|: the tls_contexts() of a Relay on another loop with the same config, so that every
  // loop serves the same certificates and resumes each other's TLS sessions.
  Relay(uv_loop_t* loop, std::shared_ptr<const Config> config,
        std::shared_ptr<TlsContexts> tls = nullptr);
  // Call only before anything was served, or after shutdown()'s |done| has run.
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Opens every [[listener]] of the config. Sockets are opened with SO_REUSEPORT, so Relays
  // on other loops may listen on the same addresses. Throws std::system_error.
  void listen();
  // Serves connections from |fd|, a socket already listening, for listener |listener_index|
  // of the config. Takes ownership of |fd|. Throws std::system_error.
  void listen_fd(size_t listener_index, int fd);
  // Serves one accepted h2c connection, as a listener would. Takes ownership of |fd|.
  // Returns 0 or a negative libuv error.
  int serve(uv_os_sock_t fd, size_t listener_index = 0);

  // Reload: new connections and calls follow |config| from now on; calls already open
  // finish on the config they started with. Its certificates are loaded first (throws
  // std::runtime_error, changing nothing, when one fails). Clusters whose settings did not
  // change keep their backend connections. Listeners at addresses |config| adds are opened
  // (throws std::system_error if one cannot be, after the switch); those it drops stop
  // accepting and their connections get GOAWAY. Ignored once shutdown() was called.
  void reload(std::shared_ptr<const Config> config);

  // The addresses listened on, as "ip:port", in the order listeners were opened.
  std::vector<std::string> addresses() const;

  // The relay's counters for its current config (an internal type, read by the grelay
  // binary's admin endpoint). They stay valid after the Relay is gone.
  std::shared_ptr<const WorkerStats> stats() const;
  // Reopens the access log file at the next flush (after logrotate moved it). Any thread.
  void reopen_logs();
  std::shared_ptr<TlsContexts> tls_contexts() const;
  // Reads every certificate, key and CA file of the config again; new TLS handshakes (on
  // every Relay sharing these contexts) use them, open connections keep theirs. A listener
  // or cluster whose new files fail to load keeps what it had, and the failure is logged.
  // Returns false if any failed. May be called from any thread, also while reload() runs on
  // the loop: it reloads the contexts of the config last switched to (taken under a lock and
  // held while they load), never reading the loop's state.
  bool reload_certificates();

  // Stops accepting. With |graceful|, clients get GOAWAY and open calls run to their end;
  // without, every connection closes now. |done| runs on the loop once every handle of the
  // relay is released.
  void shutdown(bool graceful, std::function<void()> done);

 private:
  // Hands the host's streams to |worker_|.
  friend class StreamRelay;

  std::unique_ptr<Worker> worker_;
  // The certificates of the config in force, for reload_certificates() on any thread: set on
  // the loop's thread under |tls_mutex_|.
  std::mutex tls_mutex_;
  std::shared_ptr<TlsContexts> tls_;
};

}  // namespace grelay
