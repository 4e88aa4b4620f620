#pragma once

#include <string>

#include "core/intrusive_list.h"
#include "grelay/status.h"
#include "h2/client_session.h"

namespace grelay {

class BackendSession;
class Cluster;
class Endpoint;

// A stream the upstream pool is finding a connection for. The pool serves it without knowing
// what it relays.
class UpstreamHandler : public ClientStreamHandler, public ListHook<UpstreamHandler> {
 public:
  // A connection can take the stream now: call |session|.submit_request() before returning.
  virtual void on_upstream_ready(BackendSession& session) noexcept = 0;
  // No connection could be had (connect failure, timeout, no usable endpoint, circuit
  // breaker).
  virtual void on_upstream_failed(StatusCode status, const std::string& why) noexcept = 0;

  // Stops waiting for a connection, if it still does.
  void cancel_wait() noexcept {
    if (!wait_list_) return;
    wait_list_->erase(*this);
    wait_list_ = nullptr;
  }

 protected:
  ~UpstreamHandler() { cancel_wait(); }

 private:
  friend class BackendSession;
  friend class Cluster;
  // The list this handler waits in (a connection's, or its cluster's while names resolve).
  IntrusiveList<UpstreamHandler>* wait_list_ = nullptr;
  // The endpoint picked last for this handler; a new pick avoids it when it can. Only
  // compared, never followed.
  const Endpoint* last_endpoint_ = nullptr;
};

}  // namespace grelay
