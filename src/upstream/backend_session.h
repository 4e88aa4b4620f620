#pragma once

#include <string>

#include "core/intrusive_list.h"
#include "h2/client_session.h"
#include "upstream/upstream_handler.h"

namespace grelay {

class Endpoint;
struct UpstreamContext;

// One HTTP/2 connection to a backend endpoint (h2c, or h2 over TLS with the cluster's tls),
// shared by many calls. Owned by itself (deleted once its socket is closed); its Endpoint
// keeps it in a list until then.
class BackendSession final : public ClientSession, public ListHook<BackendSession> {
 public:
  enum class State { connecting, ready, draining };

  BackendSession(Endpoint& endpoint) noexcept;

  ~BackendSession();

  void dial(const sockaddr* addr) noexcept;

  // True if a new stream may go here without exceeding the backend's stream limit.
  bool has_free_slot() const noexcept;
  // Streams opened plus streams waiting for the connection.
  size_t load() const noexcept { return stream_count() + pending_.size(); }
  // Calls waiting for the connection or for a stream slot on it.
  size_t queued() const noexcept {
    size_t waiting = pending_.size();
    // Depends on the state, not on closed(): recount() runs on every state change. Streams
    // over the limit of a closing connection wait until its teardown fails them.
    if (state_ == State::ready && stream_count() > max_concurrent_streams()) {
      waiting += stream_count() - max_concurrent_streams();
    }
    return waiting;
  }
  State state() const noexcept { return state_; }
  // The backend's SETTINGS arrived (max_concurrent_streams() is its own figure).
  bool settings_seen() const noexcept { return settings_seen_; }
  bool usable() const noexcept { return state_ != State::draining && !closed(); }

  // Serves |handler| now if connected, else when the connection is up.
  void attach(UpstreamHandler& handler) noexcept;

  Endpoint& endpoint() noexcept { return endpoint_; }
  // Takes no new streams from now on; open ones finish, then the connection closes.
  void retire() noexcept;

  // Periodic upkeep (cluster timer): keepalive PINGs and their timeout, connection age.
  void maintain(uint64_t now_ms) noexcept;

 private:
  void on_connect(int status) noexcept override;
  void on_session_timer() noexcept override;
  void on_read_end(int status) noexcept override;
  void on_goaway(uint32_t error_code, std::string_view debug) noexcept override;
  void on_remote_settings() noexcept override;
  void on_ping_ack() noexcept override;
  void on_stream_closed() noexcept override;
  void on_stream_count_changed() noexcept override;
  void on_teardown() noexcept override;
  bool on_read(const uint8_t* data, size_t len) noexcept override;

  static void pending_changed(void* self) noexcept;
  // Adds the change of load() and queued() since the last call to its endpoint's counts. Runs
  // at every change of stream_count(), several times per call.
  void recount() noexcept {
    if (load() != counted_load_ || queued() != counted_queued_) add_count_changes();
  }
  void add_count_changes() noexcept;
  void set_state(State state) noexcept;
  void fail(const std::string& why) noexcept;
  void fail_pending(const std::string& why) noexcept;
  UpstreamHandler* pop_pending() noexcept;
  // Closes a draining connection once its last stream is done.
  void close_if_drained() noexcept;

  Endpoint& endpoint_;
  UpstreamContext& ctx_;
  State state_ = State::connecting;
  WaitList pending_{pending_changed, this};
  // load() and queued() as last added to the endpoint's counts.
  size_t counted_load_ = 0;
  size_t counted_queued_ = 0;
  bool settings_seen_ = false;
  uint64_t connected_at_ms_ = 0;
  uint64_t last_read_ms_ = 0;
  // When the unanswered keepalive PING went out; 0 when none is out.
  uint64_t ping_sent_ms_ = 0;
};

}  // namespace grelay
