#include "upstream/dns_resolver.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>

namespace grelay {

struct DnsResolver::Poll {
  uv_poll_t handle;
  DnsResolver* owner;
  ares_socket_t fd;
};

struct DnsResolver::Query {
  DnsResolver* owner;
  uint16_t port;
  std::string host;
  Done done;
};

DnsResolver::DnsResolver(uv_loop_t* loop) noexcept : loop_(loop) {}

DnsResolver::~DnsResolver() = default;

DnsResolver* DnsResolver::create(uv_loop_t* loop, const std::optional<HostPort>& server,
                                 std::chrono::milliseconds timeout, std::string* error) {
  static std::once_flag init_once;
  std::call_once(init_once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
  auto* self = new DnsResolver(loop);
  ares_options options{};
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  options.sock_state_cb = sock_state_cb;
  options.sock_state_cb_data = self;
  options.timeout = static_cast<int>(std::clamp<int64_t>(timeout.count(), 100, 5000));
  options.tries = 2;
  char lookups[] = "b";
  if (server) {
    mask |= ARES_OPT_LOOKUPS;
    options.lookups = lookups;
  }
  int rc = ares_init_options(&self->channel_, &options, mask);
  if (rc == ARES_SUCCESS && server) {
    std::string csv = server->host.find(':') != std::string::npos
                          ? "[" + server->host + "]:" + std::to_string(server->port)
                          : server->host + ":" + std::to_string(server->port);
    rc = ares_set_servers_ports_csv(self->channel_, csv.c_str());
  }
  if (rc != ARES_SUCCESS) {
    *error = ares_strerror(rc);
    if (self->channel_) ares_destroy(self->channel_);
    delete self;
    return nullptr;
  }
  self->timer_ = new uv_timer_t;
  uv_timer_init(loop, self->timer_);
  self->timer_->data = self;
  self->open_handles_ = 1;
  return self;
}

void DnsResolver::resolve(const std::string& host, uint16_t port, Done done) {
  auto* query = new Query{this, port, host, std::move(done)};
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = ARES_AI_NOSORT;
  ares_getaddrinfo(channel_, query->host.c_str(), nullptr, &hints, answer_cb, query);
  rearm_timer();
}

void DnsResolver::answer_cb(void* arg, int status, int, ares_addrinfo* result) noexcept {
  std::unique_ptr<Query> query(static_cast<Query*>(arg));
  DnsResolver* self = query->owner;
  std::vector<sockaddr_storage> addresses;
  if (status == ARES_SUCCESS && result) {
    for (ares_addrinfo_node* node = result->nodes; node; node = node->ai_next) {
      if (node->ai_family != AF_INET && node->ai_family != AF_INET6) continue;
      sockaddr_storage addr{};
      std::memcpy(&addr, node->ai_addr,
                  std::min<size_t>(node->ai_addrlen, sizeof(sockaddr_storage)));
      if (addr.ss_family == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(query->port);
      } else {
        reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(query->port);
      }
      addresses.push_back(addr);
    }
  }
  if (result) ares_freeaddrinfo(result);
  if (self->closing_) return;
  query->done(status, status == ARES_SUCCESS ? "" : ares_strerror(status), std::move(addresses));
}

void DnsResolver::rearm_timer() noexcept {
  if (closing_) return;
  timeval tv{};
  if (ares_timeout(channel_, nullptr, &tv) == nullptr) {
    uv_timer_stop(timer_);
    return;
  }
  uint64_t ms = static_cast<uint64_t>(tv.tv_sec) * 1000 + static_cast<uint64_t>(tv.tv_usec) / 1000;
  uv_timer_start(timer_, timer_cb, ms + 1, 0);
}

void DnsResolver::timer_cb(uv_timer_t* timer) noexcept {
  auto* self = static_cast<DnsResolver*>(timer->data);
  ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  self->rearm_timer();
}

void DnsResolver::sock_state_cb(void* data, ares_socket_t fd, int readable, int writable) noexcept {
  auto* self = static_cast<DnsResolver*>(data);
  auto it = std::find_if(self->polls_.begin(), self->polls_.end(),
                         [fd](const Poll* p) { return p->fd == fd; });
  if (!readable && !writable) {
    if (it == self->polls_.end()) return;
    Poll* poll = *it;
    self->polls_.erase(it);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll->handle), close_cb);
    return;
  }
  Poll* poll = nullptr;
  if (it != self->polls_.end()) {
    poll = *it;
  } else {
    if (self->closing_) return;
    poll = new Poll{{}, self, fd};
    if (uv_poll_init_socket(self->loop_, &poll->handle, fd) != 0) {
      delete poll;
      return;
    }
    poll->handle.data = poll;
    ++self->open_handles_;
    self->polls_.push_back(poll);
  }
  uv_poll_start(&poll->handle, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
                poll_cb);
}

void DnsResolver::poll_cb(uv_poll_t* handle, int status, int events) noexcept {
  auto* poll = static_cast<Poll*>(handle->data);
  DnsResolver* self = poll->owner;
  ares_socket_t fd = poll->fd;
  // On an error let c-ares read and write, to find out and drop the socket.
  bool readable = status < 0 || (events & UV_READABLE);
  bool writable = status < 0 || (events & UV_WRITABLE);
  ares_process_fd(self->channel_, readable ? fd : ARES_SOCKET_BAD, writable ? fd : ARES_SOCKET_BAD);
  self->rearm_timer();
}

void DnsResolver::close() noexcept {
  if (closing_) return;
  closing_ = true;
  // Ends every lookup (their callbacks see closing_) and closes c-ares' sockets.
  ares_destroy(channel_);
  channel_ = nullptr;
  for (Poll* poll : polls_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&poll->handle), close_cb);
  }
  polls_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(timer_), close_cb);
}

void DnsResolver::close_cb(uv_handle_t* handle) noexcept {
  DnsResolver* self;
  if (handle->type == UV_TIMER) {
    auto* timer = reinterpret_cast<uv_timer_t*>(handle);
    self = static_cast<DnsResolver*>(timer->data);
    delete timer;
  } else {
    auto* poll = static_cast<Poll*>(handle->data);
    self = poll->owner;
    delete poll;
  }
  self->release_handle();
}

void DnsResolver::release_handle() noexcept {
  if (--open_handles_ == 0) delete this;
}

}  // namespace grelay
