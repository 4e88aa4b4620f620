#pragma once

#include <string>

#include "core/intrusive_list.h"
#include "h2/client_session.h"
#include "upstream/upstream_handler.h"

namespace grelay {

class Endpoint;

// One h2c connection to a backend endpoint, shared by many calls. Owned by itself (deleted
// once its socket is closed); its Endpoint keeps it in a list until then.
class BackendSession final : public ClientSession, public ListHook<BackendSession> {
 public:
  enum class State { resolving, connecting, ready, draining };

  BackendSession(Endpoint& endpoint) noexcept;

  ~BackendSession();

  // Resolves |host| when it is a name, then connects to it.
  void dial(const std::string& host, uint16_t port, const sockaddr* literal) noexcept;

  // True if a new stream may go here without exceeding the backend's stream limit.
  bool has_free_slot() const noexcept;
  // Streams opened plus streams waiting for the connection.
  size_t load() const noexcept { return stream_count() + pending_.size(); }
  State state() const noexcept { return state_; }
  bool usable() const noexcept { return state_ != State::draining && !closed(); }

  // Serves |handler| now if connected, else when the connection is up.
  void attach(UpstreamHandler& handler) noexcept;

  Endpoint& endpoint() noexcept { return endpoint_; }
  // Takes no new streams from now on (stream ids used up); open ones finish.
  void retire() noexcept { state_ = State::draining; }

 private:
  void on_connect(int status) noexcept override;
  void on_timer() noexcept override;
  void on_read_end(int status) noexcept override;
  void on_goaway(uint32_t error_code) noexcept override;
  void on_remote_settings() noexcept override;
  void on_teardown() noexcept override;

  struct ResolveRequest;
  static void resolved_cb(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept;
  void connect(const sockaddr* addr) noexcept;
  void fail(const std::string& why) noexcept;
  void fail_pending(const std::string& why) noexcept;
  UpstreamHandler* pop_pending() noexcept;

  Endpoint& endpoint_;
  State state_ = State::resolving;
  IntrusiveList<UpstreamHandler> pending_;
  bool settings_seen_ = false;
  // The resolver request in flight, if any. It outlives the session when the session closes
  // first, so it is told to drop its answer.
  ResolveRequest* resolving_ = nullptr;

  friend class UpstreamHandler;
};

}  // namespace grelay
