#pragma once

#include <string>

#include "core/intrusive_list.h"
#include "grelay/status.h"
#include "h2/client_session.h"

namespace grelay {

class BackendSession;
class Cluster;
class Endpoint;
class WaitList;

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
  inline void cancel_wait() noexcept;

 protected:
  ~UpstreamHandler() { cancel_wait(); }

 private:
  friend class Cluster;
  friend class WaitList;
  // The list this handler waits in (a connection's, or its cluster's while names resolve).
  WaitList* wait_list_ = nullptr;
  // The endpoint picked last for this handler; a new pick avoids it when it can. Only
  // compared, never followed.
  const Endpoint* last_endpoint_ = nullptr;
};

// Handlers waiting for a connection: a connecting backend session's, or a cluster's while its
// names resolve. Every way out of the list, UpstreamHandler::cancel_wait() included, goes
// through it, so that its owner is told when the count changes (|on_change|, if set) and
// keeps its counts of waiting calls without walking the list.
class WaitList {
 public:
  using OnChange = void (*)(void* owner) noexcept;

  explicit WaitList(OnChange on_change = nullptr, void* owner = nullptr) noexcept
      : on_change_(on_change), owner_(owner) {}
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;

  bool empty() const noexcept { return list_.empty(); }
  size_t size() const noexcept { return list_.size(); }

  void push_back(UpstreamHandler& handler) noexcept {
    handler.wait_list_ = this;
    list_.push_back(handler);
    changed();
  }
  // Unlinks and returns the first handler, or nullptr.
  UpstreamHandler* pop_front() noexcept {
    UpstreamHandler* handler = list_.pop_front();
    if (!handler) return nullptr;
    handler->wait_list_ = nullptr;
    changed();
    return handler;
  }
  void erase(UpstreamHandler& handler) noexcept {
    handler.wait_list_ = nullptr;
    list_.erase(handler);
    changed();
  }

 private:
  void changed() noexcept {
    if (on_change_) on_change_(owner_);
  }

  IntrusiveList<UpstreamHandler> list_;
  OnChange on_change_;
  void* owner_;
};

void UpstreamHandler::cancel_wait() noexcept {
  if (wait_list_) wait_list_->erase(*this);
}

}  // namespace grelay
