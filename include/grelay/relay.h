#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "grelay/config.h"
#include "grelay/export.h"
#include "grelay/metrics.h"

namespace grelay {

class RelayGroup;

// How many client connections a Relay took, and how many are open (readable from any
// thread, to see how connections spread over loops).
struct RelayLoad {
  uint64_t accepted = 0;
  uint64_t open_connections = 0;
};

// Who opens the sockets of the listeners a reload adds.
enum class NewListeners {
  open,       // the relay opens them (SO_REUSEPORT), as listen() does
  from_host,  // the host hands them to listen_fd(), or their connections to serve()
};

// The relay on one libuv loop: its listeners, client connections, backend connection pools
// and calls. Use it from the loop's thread only, but for the calls said to be thread safe.
// Relays on different loops share nothing but the immutable Config, and what their
// RelayGroup shares when they have one.
//
// libuv writes to sockets with write(2): a host process must ignore SIGPIPE
// (signal(SIGPIPE, SIG_IGN)), as the grelay binary does, or a peer that hangs up mid-write
// kills it.
class GRELAY_API Relay {
 public:
  // A relay of its own: loads the config's certificates (throws std::runtime_error when one
  // fails) and applies its log_level (grelay/log.h).
  Relay(uv_loop_t* loop, std::shared_ptr<const Config> config);
  // A relay of |group| (grelay/relay_group.h), on the group's config: it serves the group's
  // certificates, counts each listener's connections with the other relays of the group
  // (max_connections bounds them together), and its counters add to the group's metrics.
  Relay(uv_loop_t* loop, std::shared_ptr<RelayGroup> group);
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
  // Serves one accepted connection (h2c, or h2 over TLS as the listener says), as listener
  // |listener_index| would. Takes ownership of |fd|. Returns 0 or a negative libuv error:
  // UV_ECANCELED once shutdown() was called, UV_ECONNREFUSED at the listener's
  // max_connections.
  int serve(uv_os_sock_t fd, size_t listener_index = 0);

  // Reload: new connections and calls follow |config| from now on; calls already open
  // finish on the config they started with. Its certificates are loaded first (throws
  // std::runtime_error, changing nothing, when one fails); a relay of a group takes the
  // group's, reloading the group first if it has not seen |config|. Clusters whose settings
  // did not change keep their backend connections. Listeners at addresses |config| drops
  // stop accepting and their connections get GOAWAY; those it adds are opened (throws
  // std::system_error if one cannot be, after the switch), or, with NewListeners::from_host,
  // left to the host. The config's log_level is applied. Ignored once shutdown() was called.
  void reload(std::shared_ptr<const Config> config, NewListeners added = NewListeners::open);

  // The addresses listened on, as "ip:port", in the order listeners were opened.
  std::vector<std::string> addresses() const;

  // The relay's counters, over every config it served (grelay/metrics.h), as a struct and
  // in the Prometheus text exposition format (version 0.0.4, the families of the grelay
  // binary's /metrics). Thread safe.
  RelayMetrics metrics() const;
  std::string prometheus_text() const;
  // Connections taken and open. Thread safe.
  RelayLoad load() const noexcept;

  // Reopens the access log file at the next flush (after logrotate moved it). Thread safe.
  void reopen_logs();
  // Reads every certificate, key and CA file again, of the config in force and of earlier
  // ones still in use; new TLS handshakes (on every Relay of the group, if it has one) use
  // them, open connections keep theirs. A listener or cluster whose new files fail to load
  // keeps what it had, and the failure is logged. Returns false if any failed. Thread safe,
  // also while reload() runs on the loop.
  bool reload_certificates();

  // Stops accepting. With |graceful|, clients get GOAWAY and open calls run to their end;
  // without, every connection closes now (also after a graceful start). |done| runs on the
  // loop once every handle of the relay is released.
  void shutdown(bool graceful, std::function<void()> done);
  // During a graceful shutdown, when the host's patience ends: every open call ends now with
  // UNAVAILABLE ("relay is shutting down: drain_timeout reached"), and each connection closes
  // once its statuses are out.
  void expire_calls() noexcept;

 private:
  // Hands the host's streams to the relay's worker (state_).
  friend class StreamRelay;

  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace grelay
