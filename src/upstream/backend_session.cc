#include "upstream/backend_session.h"

#include <cstring>

#include "core/log.h"
#include "net/listener.h"
#include "upstream/endpoint.h"

namespace grelay {

struct BackendSession::ResolveRequest {
  uv_getaddrinfo_t req;
  BackendSession* session;
  uint16_t port;
};

void UpstreamHandler::cancel_wait() noexcept {
  if (!waiting_on_) return;
  waiting_on_->pending_.erase(*this);
  waiting_on_ = nullptr;
}

UpstreamHandler* BackendSession::pop_pending() noexcept {
  UpstreamHandler* handler = pending_.pop_front();
  if (handler) handler->waiting_on_ = nullptr;
  return handler;
}

BackendSession::BackendSession(Endpoint& endpoint) noexcept
    : ClientSession(endpoint.context().loop, endpoint.context().pool,
                    endpoint.context().flush_queue, endpoint.context().mem),
      endpoint_(endpoint) {
  ++endpoint_.context().live_sessions;
}

BackendSession::~BackendSession() {
  UpstreamContext& ctx = endpoint_.context();
  if (--ctx.live_sessions == 0 && ctx.on_all_closed) ctx.on_all_closed(ctx.on_all_closed_ctx);
}

void BackendSession::dial(const std::string& host, uint16_t port,
                          const sockaddr* literal) noexcept {
  conn_.start_timer(static_cast<uint64_t>(endpoint_.cluster().connect_timeout.count()));
  if (const ClientTls* tls = endpoint_.tls()) {
    std::shared_ptr<const ClientTlsContext> context = tls->current();
    SSL* ssl = context->new_ssl(host);
    if (!ssl) {
      fail("cannot set up TLS for " + endpoint_.name());
      return;
    }
    conn_.set_tls(std::make_unique<TlsLayer>(ssl, std::move(context), endpoint_.context().pool));
  }
  if (literal) {
    connect(literal);
    return;
  }
  auto* request = new ResolveRequest{{}, this, port};
  request->req.data = request;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(endpoint_.context().loop, &request->req, resolved_cb, host.c_str(),
                          nullptr, &hints);
  if (rc != 0) {
    delete request;
    fail(std::string("cannot resolve ") + host + ": " + uv_strerror(rc));
    return;
  }
  resolving_ = request;
}

void BackendSession::resolved_cb(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept {
  auto* request = static_cast<ResolveRequest*>(req->data);
  BackendSession* self = request->session;
  uint16_t port = request->port;
  if (self) self->resolving_ = nullptr;
  delete request;
  if (!self) {
    uv_freeaddrinfo(res);
    return;
  }
  if (status != 0 || !res) {
    uv_freeaddrinfo(res);
    self->fail(std::string("cannot resolve ") + self->endpoint_.name() + ": " +
               uv_strerror(status));
    return;
  }
  sockaddr_storage addr{};
  std::memcpy(&addr, res->ai_addr, res->ai_addrlen);
  uv_freeaddrinfo(res);
  if (addr.ss_family == AF_INET6)
    reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(port);
  else
    reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(port);
  self->connect(reinterpret_cast<sockaddr*>(&addr));
}

void BackendSession::connect(const sockaddr* addr) noexcept {
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
  state_ = State::ready;
  while (UpstreamHandler* handler = pop_pending()) {
    handler->on_upstream_ready(*this);
    if (closed()) break;
  }
  fail_pending("backend connection closed");
}

void BackendSession::on_timer() noexcept {
  if (state_ == State::resolving || state_ == State::connecting) {
    fail(std::string("connect to ") + endpoint_.name() + " timed out");
  } else if (!settings_seen_) {
    // Calls already sent on it end as "connection lost" (UNAVAILABLE).
    fail(std::string("backend ") + endpoint_.name() +
         " accepted the connection but sent no HTTP/2 SETTINGS in time");
  }
}

void BackendSession::on_read_end(int status) noexcept {
  if (settings_seen_ || state_ != State::ready) {
    H2Session::on_read_end(status);
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
  if (settings_seen_) return;
  settings_seen_ = true;
  conn_.stop_timer();
  // Only now is the endpoint known to work: a backend may accept connections (and finish a
  // TLS handshake) and then drop them.
  endpoint_.on_connected();
}

void BackendSession::fail(const std::string& why) noexcept {
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
    return;
  }
  handler.waiting_on_ = this;
  pending_.push_back(handler);
}

void BackendSession::on_goaway(uint32_t error_code) noexcept {
  GRELAY_LOG_INFO("backend %s sent GOAWAY (%s); no new calls go to this connection",
                  endpoint_.name().c_str(), nghttp2_http2_strerror(error_code));
  state_ = State::draining;
}

void BackendSession::on_teardown() noexcept {
  if (resolving_) resolving_->session = nullptr;
  resolving_ = nullptr;
  state_ = State::draining;
  endpoint_.on_session_gone(*this);
  fail_pending("backend connection closed");
  fail_all_streams(h2_connection_lost);
}

}  // namespace grelay
