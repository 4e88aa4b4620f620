#pragma once

#include <string>

#include "core/intrusive_list.h"
#include "grelay/status.h"
#include "h2/client_session.h"

namespace grelay {

class BackendSession;

// A stream the upstream pool is finding a connection for. The pool serves it without knowing
// what it relays.
class UpstreamHandler : public ClientStreamHandler, public ListHook<UpstreamHandler> {
 public:
  // A connection can take the stream now: call |session|.submit_request() before returning.
  virtual void on_upstream_ready(BackendSession& session) noexcept = 0;
  // No connection could be had (connect failure, timeout, no usable endpoint).
  virtual void on_upstream_failed(StatusCode status, const std::string& why) noexcept = 0;

  // Stops waiting for a connection, if it still does.
  void cancel_wait() noexcept;

 protected:
  ~UpstreamHandler() { cancel_wait(); }

 private:
  friend class BackendSession;
  // The connection this handler waits for, while it does.
  BackendSession* waiting_on_ = nullptr;
};

}  // namespace grelay
