#pragma once

#include <string>
#include <string_view>

namespace grelay {

// Tells a service manager what the process is doing, over the datagram socket systemd
// names in $NOTIFY_SOCKET (the sd_notify protocol: "KEY=VALUE" lines in one datagram), so a
// Type=notify unit is "started" only once grelay listens, and `systemctl reload` waits for
// the reload. Written here rather than linking libsystemd for five messages. Without
// $NOTIFY_SOCKET every call does nothing.
class ServiceNotifier {
 public:
  // Reads $NOTIFY_SOCKET once: a path, or an abstract socket name starting with '@'.
  ServiceNotifier();

  // Listening and serving.
  void ready() noexcept;
  // A reload began; ready() follows when it ended (whether or not it applied).
  void reloading() noexcept;
  // A drain began and may take |drain_ms| milliseconds (drain_timeout and the grace after
  // it): extends the unit's stop timeout by that (EXTEND_TIMEOUT_USEC), so that the config's
  // drain_timeout, not the unit's TimeoutStopSec, bounds a graceful stop.
  void stopping(uint64_t drain_ms) noexcept;
  // A free-form status line (`systemctl status` shows it).
  void status(std::string_view text) noexcept;

  // Sends |state| as is. False when there is no socket or the send failed.
  bool send(std::string_view state) noexcept;

 private:
  std::string socket_;
};

}  // namespace grelay
