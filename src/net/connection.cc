#include "net/connection.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include <cstdio>

#include "core/log.h"

namespace grelay {
namespace {

constexpr int max_write_iov = 64;

// Ciphertext made per write: plaintext beyond it stays in the output chain, so the sessions'
// high-water marks see what the socket has not taken yet.
constexpr size_t tls_seal_limit = 256 * 1024;

Connection* from(uv_handle_t* handle) {
  return static_cast<Connection*>(handle->data);
}

}  // namespace

Connection::Connection(uv_loop_t* loop, ChunkPool& pool, ConnectionHandler& handler) noexcept
    : handler_(handler), output_(pool) {
  uv_tcp_init(loop, &tcp_);
  uv_timer_init(loop, &timer_);
  tcp_.data = this;
  timer_.data = this;
  write_req_.data = this;
  connect_req_.data = this;
}

int Connection::accept(uv_stream_t* server) noexcept {
  int rc = uv_accept(server, reinterpret_cast<uv_stream_t*>(&tcp_));
  if (rc != 0) return rc;
  return start_reading();
}

int Connection::open(uv_os_sock_t fd) noexcept {
  int rc = uv_tcp_open(&tcp_, fd);
  if (rc != 0) return rc;
  return start_reading();
}

int Connection::hand_over(Connection& to) noexcept {
  if (closing_ || writing_) return UV_EBUSY;
  uv_os_fd_t fd = -1;
  int rc = uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd);
  if (rc != 0) return rc;
  // Closing this handle's descriptor then leaves the socket open through the copy: nothing is
  // sent to the peer, and libuv drops the old descriptor from its poll set before closing it.
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return uv_translate_sys_error(errno);
  rc = uv_tcp_open(&to.tcp_, copy);
  if (rc != 0) {
    ::close(copy);
    return rc;
  }
  to.tls_ = std::move(tls_);
  output_.move_to(to.output_, output_.size());
  close();
  rc = to.start_reading();
  if (rc == 0 && to.has_output()) to.flush();
  return rc;
}

int Connection::connect(const sockaddr* addr) noexcept {
  return uv_tcp_connect(&connect_req_, &tcp_, addr, connect_cb);
}

int Connection::start_reading() noexcept {
  uv_tcp_nodelay(&tcp_, 1);
  return uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), alloc_cb, read_cb);
}

void Connection::pause_reading() noexcept {
  if (closing_ || reading_paused_) return;
  reading_paused_ = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
}

void Connection::resume_reading() noexcept {
  if (closing_ || !reading_paused_) return;
  reading_paused_ = false;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), alloc_cb, read_cb);
}

void Connection::alloc_cb(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept {
  if (!from(handle)->handler_.may_read()) {
    // libuv answers an empty buffer with UV_ENOBUFS and reads nothing.
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  // Each read lands in a block of the pool: the session may keep views of its DATA payloads
  // (ChunkChain::append_read), and the block goes back once nothing holds it.
  Connection* self = from(handle);
  if (self->read_block_ == nullptr) self->read_block_ = self->output_.pool().get_block();
  buf->base = reinterpret_cast<char*>(self->read_block_->data);
  buf->len = std::min(self->handler_.read_size(), read_block_size);
}

bool Connection::deliver(ReadBlock* block, const uint8_t* data, size_t len) noexcept {
  ChunkPool& pool = output_.pool();
  pool.set_reading(block);
  const bool keep = handler_.on_read(data, len);
  pool.set_reading(nullptr);
  return keep;
}

void Connection::drop_read_block() noexcept {
  if (read_block_ != nullptr) ChunkPool::release(std::exchange(read_block_, nullptr));
}

void Connection::read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
  Connection* self = from(reinterpret_cast<uv_handle_t*>(stream));
  // The block goes back to the pool after each read (an idle connection holds none), unless
  // a view of its bytes keeps it.
  ReadBlock* block = std::exchange(self->read_block_, nullptr);
  if (self->closing_) {
    if (block != nullptr) ChunkPool::release(block);
    return;
  }
  if (nread > 0) {
    const auto* data = reinterpret_cast<const uint8_t*>(buf->base);
    if (self->tls_) {
      self->read_tls(data, static_cast<size_t>(nread));
    } else if (!self->deliver(block, data, static_cast<size_t>(nread))) {
      self->close();
    }
    ChunkPool::release(block);
    return;
  }
  if (block != nullptr) ChunkPool::release(block);
  // The handler's read budget for this loop turn is spent; the bytes wait in the socket.
  if (nread == UV_ENOBUFS) return;
  if (nread < 0) {
    uv_read_stop(stream);
    self->handler_.on_read_end(static_cast<int>(nread));
  }
}

void Connection::read_tls(const uint8_t* data, size_t len) noexcept {
  TlsLayer& tls = *tls_;
  tls.set_input(data, len);
  if (!tls.established() && !advance_handshake()) {
    tls.set_input(nullptr, 0);
    return;
  }
  // Records are gathered into one block, so the session parses them in one go (and may keep
  // views of it, as of a cleartext read).
  const size_t limit = std::min(handler_.read_size(), read_block_size);
  for (bool more = tls.established(); more && !closing_;) {
    ReadBlock* plain = output_.pool().get_block();
    size_t filled = 0;
    long n = 0;
    while (filled < limit && (n = tls.read(plain->data + filled, limit - filled)) > 0) {
      filled += static_cast<size_t>(n);
    }
    const bool keep = filled == 0 || deliver(plain, plain->data, filled);
    ChunkPool::release(plain);
    if (!keep) {
      close();
      break;
    }
    if (n < 0 && !closing_) {
      char peer[64];
      peer_name(peer, sizeof(peer));
      GRELAY_LOG_DEBUG("TLS connection with %s ends: %s", peer, tls.error().c_str());
      handler_.on_read_end(UV_EOF);
    }
    more = n > 0;
  }
  tls.set_input(nullptr, 0);
  // Alerts and session tickets, if the session wrote nothing itself.
  if (!closing_ && !tls.wire().empty()) flush();
}

bool Connection::advance_handshake() noexcept {
  TlsLayer& tls = *tls_;
  TlsLayer::Step step = tls.handshake();
  bool server = SSL_is_server(tls.ssl()) == 1;
  if (step == TlsLayer::Step::failed) {
    if (server) {
      char peer[64];
      peer_name(peer, sizeof(peer));
      GRELAY_LOG_DEBUG("TLS handshake with %s failed: %s", peer, tls.error().c_str());
    }
    // The alert for the peer goes out first, if the socket takes it now.
    flush();
    if (closing_) return false;
    if (server) {
      handler_.on_read_end(UV_EPROTO);
    } else {
      handler_.on_connect(UV_EPROTO);
    }
    return false;
  }
  flush();
  if (step == TlsLayer::Step::more || closing_) return !closing_;
  if (server) {
    handler_.on_handshake_done();
  } else {
    handler_.on_connect(0);
  }
  return !closing_;
}

void Connection::flush() noexcept {
  if (closing_ || writing_) return;
  if (tls_) {
    for (;;) {
      if (!tls_->seal(output_, tls_seal_limit)) {
        GRELAY_LOG_DEBUG("TLS write failed: %s", tls_->error().c_str());
        output_.clear();
        tls_->wire().clear();
        handler_.on_read_end(UV_EPROTO);
        return;
      }
      if (tls_->wire().empty()) return;
      write_chain(tls_->wire());
      if (closing_ || writing_ || output_.empty() || !tls_->established()) return;
    }
  }
  if (output_.empty()) return;
  write_chain(output_);
}

void Connection::write_chain(ChunkChain& chain) noexcept {
  iovec iov[max_write_iov];
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  int n = chain.peek(iov, max_write_iov);
  int written = uv_try_write(stream, reinterpret_cast<uv_buf_t*>(iov), n);
  if (written > 0) chain.drain(static_cast<size_t>(written));
  if (written < 0 && written != UV_EAGAIN) {
    chain.clear();
    output_.clear();
    handler_.on_read_end(written);
    return;
  }
  if (chain.empty()) return;
  // The rest goes out with one queued write. Its bytes stay in |chain| (appends never move
  // them) and are dropped in write_cb.
  n = chain.peek(iov, max_write_iov);
  in_flight_ = 0;
  for (int i = 0; i < n; ++i)
    in_flight_ += iov[i].iov_len;
  int rc = uv_write(&write_req_, stream, reinterpret_cast<uv_buf_t*>(iov), n, write_cb);
  if (rc != 0) {
    chain.clear();
    output_.clear();
    handler_.on_read_end(rc);
    return;
  }
  writing_ = true;
}

void Connection::write_cb(uv_write_t* req, int status) noexcept {
  auto* self = static_cast<Connection*>(req->data);
  self->writing_ = false;
  ChunkChain& chain = self->tls_ ? self->tls_->wire() : self->output_;
  chain.drain(self->in_flight_);
  self->in_flight_ = 0;
  if (self->closing_) return;
  if (status < 0) {
    chain.clear();
    self->output_.clear();
    self->handler_.on_read_end(status);
    return;
  }
  if (self->has_output()) {
    self->flush();
    if (self->writing_) return;
  }
  self->handler_.on_write_done();
}

void Connection::connect_cb(uv_connect_t* req, int status) noexcept {
  auto* self = static_cast<Connection*>(req->data);
  if (self->closing_) return;
  if (status == 0) status = self->start_reading();
  if (status == 0 && self->tls_) {
    // Reported once the handshake is done (or failed); this sends the ClientHello.
    self->advance_handshake();
    return;
  }
  self->handler_.on_connect(status);
}

void Connection::shutdown_write() noexcept {
  if (closing_ || shut_down_) return;
  shut_down_ = true;
  // A failure leaves the socket as it is; close() follows anyway.
  uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_), shutdown_cb);
}

void Connection::shutdown_cb(uv_shutdown_t*, int) noexcept {
  // Nothing to do: close() comes from the handler (EOF, or its timer). A close while the
  // request is pending runs this with UV_ECANCELED before the handles' close callbacks.
}

void Connection::start_timer(uint64_t timeout_ms) noexcept {
  if (closing_) return;
  timer_due_ms_ = uv_now(timer_.loop) + timeout_ms;
  uv_timer_start(&timer_, timer_cb, timeout_ms, 0);
}

void Connection::arm_timer_by(uint64_t due_ms) noexcept {
  if (closing_) return;
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_)) && timer_due_ms_ <= due_ms) return;
  const uint64_t now = uv_now(timer_.loop);
  start_timer(due_ms > now ? due_ms - now : 0);
}

void Connection::stop_timer() noexcept {
  uv_timer_stop(&timer_);
}

void Connection::timer_cb(uv_timer_t* timer) noexcept {
  Connection* self = from(reinterpret_cast<uv_handle_t*>(timer));
  if (!self->closing_) self->handler_.on_timer();
}

void Connection::close() noexcept {
  if (closing_) return;
  if (tls_ && tls_->established() && !writing_ && tls_->wire().empty()) {
    // close_notify, best effort: only when nothing else waits to go out before it.
    tls_->shutdown();
    iovec iov[4];
    int n = tls_->wire().peek(iov, 4);
    if (n > 0)
      uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), reinterpret_cast<uv_buf_t*>(iov), n);
  }
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), close_cb);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), close_cb);
}

void Connection::close_cb(uv_handle_t* handle) noexcept {
  Connection* self = from(handle);
  if (--self->open_handles_ > 0) return;
  // A write cancelled by the close has run its callback before this one.
  self->output_.clear();
  if (self->tls_) self->tls_->wire().clear();
  self->drop_read_block();
  self->handler_.on_closed();
}

void Connection::peer_name(char* buf, size_t len) const noexcept {
  sockaddr_storage ss{};
  int namelen = sizeof(ss);
  if (len == 0) return;
  buf[0] = '\0';
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &namelen) != 0) {
    std::snprintf(buf, len, "?");
    return;
  }
  char ip[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    uv_ip6_name(sa, ip, sizeof(ip));
    std::snprintf(buf, len, "[%s]:%u", ip, ntohs(sa->sin6_port));
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    uv_ip4_name(sa, ip, sizeof(ip));
    std::snprintf(buf, len, "%s:%u", ip, ntohs(sa->sin_port));
  }
}

}  // namespace grelay
