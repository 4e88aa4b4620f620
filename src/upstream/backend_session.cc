#include "upstream/backend_session.h"

#include <cstring>

#include "core/log.h"
#include "upstream/cluster.h"
#include "upstream/endpoint.h"

namespace grelay {

UpstreamHandler* BackendSession::pop_pending() noexcept {
  return pending_.pop_front();
}

void BackendSession::pending_changed(void* self) noexcept {
  static_cast<BackendSession*>(self)->recount();
}

void BackendSession::add_count_changes() noexcept {
  const size_t load_now = load();
  const size_t queued_now = queued();
  endpoint_.add_counts(static_cast<ptrdiff_t>(load_now - counted_load_),
                       static_cast<ptrdiff_t>(queued_now - counted_queued_));
  counted_load_ = load_now;
  counted_queued_ = queued_now;
}

void BackendSession::set_state(State state) noexcept {
  state_ = state;
  recount();
}

void BackendSession::on_stream_count_changed() noexcept {
  recount();
}

BackendSession::BackendSession(Endpoint& endpoint) noexcept
    : ClientSession(endpoint.context().loop, endpoint.context().pool,
                    endpoint.context().flush_queue, endpoint.context().mem),
      endpoint_(endpoint),
      ctx_(endpoint.context()) {
  ++ctx_.live_sessions;
}

BackendSession::~BackendSession() {
  // The endpoint may be gone by now; the context outlives every session.
  if (--ctx_.live_sessions == 0 && ctx_.on_all_closed) ctx_.on_all_closed(ctx_.on_all_closed_ctx);
}

void BackendSession::dial(const sockaddr* addr) noexcept {
  conn_.start_timer(static_cast<uint64_t>(endpoint_.cluster().connect_timeout.count()));
  if (const ClientTls* tls = endpoint_.tls()) {
    std::shared_ptr<const ClientTlsContext> context = tls->current();
    SSL* ssl = context->new_ssl(endpoint_.host());
    if (!ssl) {
      fail("cannot set up TLS for " + endpoint_.name());
      return;
    }
    conn_.set_tls(std::make_unique<TlsLayer>(ssl, std::move(context), endpoint_.context().pool));
  }
  state_ = State::connecting;
  int rc = conn_.connect(addr);
  if (rc != 0) fail(std::string("connect to ") + endpoint_.name() + " failed: " + uv_strerror(rc));
}

void BackendSession::on_connect(int status) noexcept {
  if (status == UV_EPROTO && conn_.tls()) {
    fail("TLS handshake with " + endpoint_.name() + " failed: " + conn_.tls()->error());
    return;
  }
  if (status != 0) {
    fail(std::string("connect to ") + endpoint_.name() + " failed: " + uv_strerror(status));
    return;
  }
  // The connect timeout runs on until the backend's SETTINGS show it speaks HTTP/2.
  if (!start()) {
    fail("cannot create an HTTP/2 session");
    return;
  }
  set_state(State::ready);
  connected_at_ms_ = last_read_ms_ = uv_now(ctx_.loop);
  while (UpstreamHandler* handler = pop_pending()) {
    handler->on_upstream_ready(*this);
    if (closed()) break;
  }
  fail_pending("backend connection closed");
}

void BackendSession::on_session_timer() noexcept {
  if (state_ == State::connecting) {
    fail(std::string("connect to ") + endpoint_.name() + " timed out");
  } else if (!settings_seen_) {
    // Calls already sent on it end as "connection lost" (UNAVAILABLE).
    fail(std::string("backend ") + endpoint_.name() +
         " accepted the connection but sent no HTTP/2 SETTINGS in time");
  }
}

void BackendSession::on_read_end(int status) noexcept {
  if (settings_seen_ || state_ != State::ready) {
    ClientSession::on_read_end(status);
    return;
  }
  // Closed before it spoke HTTP/2: as bad as a failed connect (a TLS backend that refuses
  // the relay's client certificate does this, after the handshake).
  std::string why =
      "backend " + endpoint_.name() + " closed the connection before its HTTP/2 SETTINGS (";
  if (conn_.tls() && !conn_.tls()->error().empty()) {
    why += conn_.tls()->error();
  } else {
    // A close and a reset are the same refusal; one wording keeps it logged once.
    why += status == UV_EOF || status == UV_ECONNRESET ? "closed or reset" : uv_strerror(status);
  }
  fail(why + ")");
}

void BackendSession::on_remote_settings() noexcept {
  // A new stream limit moves calls between open and queued.
  recount();
  if (settings_seen_) return;
  settings_seen_ = true;
  conn_.stop_timer();
  // Only now is the endpoint known to work: a backend may accept connections (and finish a
  // TLS handshake) and then drop them.
  endpoint_.on_connected();
}

void BackendSession::fail(const std::string& why) noexcept {
  // The endpoint logs it, once while the same failure repeats.
  endpoint_.on_connect_failed(why);
  fail_pending(why);
  close();
}

void BackendSession::fail_pending(const std::string& why) noexcept {
  while (UpstreamHandler* handler = pop_pending()) {
    handler->on_upstream_failed(StatusCode::unavailable, why);
  }
}

bool BackendSession::has_free_slot() const noexcept {
  if (!usable()) return false;
  // Before the backend's SETTINGS, nghttp2 assumes 100 concurrent streams.
  uint32_t limit = state_ == State::ready ? max_concurrent_streams() : 100;
  return load() < limit;
}

void BackendSession::attach(UpstreamHandler& handler) noexcept {
  if (state_ == State::ready) {
    handler.on_upstream_ready(*this);
    uint32_t cap = endpoint_.cluster().max_streams_per_connection;
    if (cap > 0 && streams_submitted() >= cap && state_ == State::ready) {
      GRELAY_LOG_DEBUG("backend %s: connection carried %u streams; opening a fresh one",
                       endpoint_.name().c_str(), cap);
      retire();
    }
    return;
  }
  pending_.push_back(handler);
}

void BackendSession::retire() noexcept {
  if (closed()) return;
  if (state_ == State::connecting) {
    // Nothing was sent on it: its waiting calls go elsewhere.
    set_state(State::draining);
    fail_pending("backend connection retired");
    close();
    return;
  }
  set_state(State::draining);
  close_if_drained();
}

void BackendSession::close_if_drained() noexcept {
  if (state_ != State::draining || closed() || stream_count() > 0 || !session_) return;
  // GOAWAY goes out, then the session has nothing left to do and the socket closes.
  nghttp2_session_terminate_session(session_.get(), NGHTTP2_NO_ERROR);
  schedule_send();
}

void BackendSession::on_stream_closed() noexcept {
  close_if_drained();
}

bool BackendSession::on_read(const uint8_t* data, size_t len) noexcept {
  last_read_ms_ = uv_now(ctx_.loop);
  return ClientSession::on_read(data, len);
}

void BackendSession::on_ping_ack() noexcept {
  ping_sent_ms_ = 0;
}

void BackendSession::maintain(uint64_t now) noexcept {
  if (state_ == State::connecting || closed()) return;
  const ClusterConfig& config = endpoint_.cluster();
  if (state_ == State::ready && config.max_connection_age.count() > 0 &&
      now - connected_at_ms_ >= static_cast<uint64_t>(config.max_connection_age.count())) {
    GRELAY_LOG_DEBUG("backend %s: connection reached max_connection_age; opening a fresh one",
                     endpoint_.name().c_str());
    retire();
    if (closed()) return;
  }
  if (!config.keepalive) return;
  const KeepaliveConfig& keepalive = *config.keepalive;
  if (ping_sent_ms_ != 0) {
    if (now - ping_sent_ms_ < static_cast<uint64_t>(keepalive.timeout.count())) return;
    std::string why = "keepalive PING unanswered for " + std::to_string(keepalive.timeout.count()) +
                      " ms; closing the connection";
    GRELAY_LOG_WARN("backend %s: %s", endpoint_.name().c_str(), why.c_str());
    endpoint_.on_keepalive_timeout(why);
    // Its calls end as "connection lost" (UNAVAILABLE).
    close();
    return;
  }
  if (stream_count() == 0 && !keepalive.without_calls) return;
  if (now - last_read_ms_ < endpoint_.owner().keepalive_interval_ms()) return;
  ping_sent_ms_ = now;
  ping();
}

void BackendSession::on_goaway(uint32_t error_code, std::string_view debug) noexcept {
  GRELAY_LOG_INFO("backend %s sent GOAWAY (%s%s%.*s); no new calls go to this connection",
                  endpoint_.name().c_str(), nghttp2_http2_strerror(error_code),
                  debug.empty() ? "" : ", ", static_cast<int>(debug.size()), debug.data());
  set_state(State::draining);
  if (error_code == NGHTTP2_ENHANCE_YOUR_CALM && debug == "too_many_pings") {
    endpoint_.owner().on_too_many_pings(endpoint_);
  }
}

void BackendSession::on_teardown() noexcept {
  set_state(State::draining);
  endpoint_.on_session_gone(*this);
  fail_pending("backend connection closed");
  fail_all_streams(h2_connection_lost);
}

}  // namespace grelay
