#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/chunk.h"
#include "net/tls_layer.h"

namespace grelay {

// Events of a Connection, implemented by the protocol session that owns it.
class ConnectionHandler {
 public:
  // An outgoing connect finished (its TLS handshake too, with TLS); |status| is 0 or a
  // negative libuv error (UV_EPROTO: the TLS handshake failed, Connection::tls() says why).
  virtual void on_connect(int status) noexcept = 0;
  // An accepted connection finished its TLS handshake.
  virtual void on_handshake_done() noexcept {}
  // Bytes arrived. Returns false to close the connection.
  virtual bool on_read(const uint8_t* data, size_t len) noexcept = 0;
  // Asked before each socket read: false leaves the bytes in the socket until the next loop
  // turn (the socket stays readable, so the next poll returns at once), so that one busy peer
  // cannot hold the loop while others wait.
  virtual bool may_read() noexcept { return true; }
  // The most bytes one socket read may take (at most read_block_size).
  virtual size_t read_size() const noexcept { return read_block_size; }
  // The peer closed (UV_EOF) or the socket failed (a negative libuv error).
  virtual void on_read_end(int status) noexcept = 0;
  // A queued write finished and the output is empty: produce more.
  virtual void on_write_done() noexcept = 0;
  // The connection timer fired.
  virtual void on_timer() noexcept = 0;
  // Every handle is closed. The handler may delete itself (and so the Connection) here.
  virtual void on_closed() noexcept = 0;

 protected:
  ~ConnectionHandler() = default;
};

// A TCP socket with an output queue and one timer. Lives inside its handler; the handler is
// freed only from on_closed(), after libuv has released both handles.
class Connection {
 public:
  Connection(uv_loop_t* loop, ChunkPool& pool, ConnectionHandler& handler) noexcept;
  ~Connection() { drop_read_block(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Accepts a pending connection from |server| and starts reading. Returns 0 or a libuv error;
  // on error the caller must still close().
  int accept(uv_stream_t* server) noexcept;
  // Adopts an already connected socket and starts reading.
  int open(uv_os_sock_t fd) noexcept;
  // Starts a connect; on_connect() reports the result (reading starts on success).
  int connect(const sockaddr* addr) noexcept;

  // Moves the socket (its TLS state and unwritten output too) to |to|, a Connection of another
  // handler not opened yet, which starts reading it; this one closes without touching the
  // socket: no FIN, no close_notify. The socket is shared through a duplicated descriptor, as
  // a libuv handle cannot change hands. Call outside this connection's read callbacks and
  // while no write is in flight (writing()). Returns 0 or a libuv error; on error nothing
  // moved, and the caller must still close() |to|.
  int hand_over(Connection& to) noexcept;

  // Makes this a TLS connection: call before connect(), or right after accept() or open()
  // (before the loop reads). output() then takes plaintext, held until the handshake is done.
  void set_tls(std::unique_ptr<TlsLayer> tls) noexcept { tls_ = std::move(tls); }
  TlsLayer* tls() const noexcept { return tls_.get(); }

  // Bytes queued for the peer. Append, then flush().
  ChunkChain& output() noexcept { return output_; }
  // Writes what output() holds: a direct write first, the rest queued with one uv_write.
  void flush() noexcept;
  // True while a queued write is in flight.
  bool writing() const noexcept { return writing_; }

  // Sends FIN once the queued output is written; reading goes on. Idempotent.
  void shutdown_write() noexcept;

  // Stops and restarts reading (backpressure when the peer does not read our output).
  void pause_reading() noexcept;
  void resume_reading() noexcept;

  // (Re)starts the timer to fire in |timeout_ms|.
  void start_timer(uint64_t timeout_ms) noexcept;
  // Makes the timer fire no later than loop time |due_ms|. A timer already due by then is left
  // as it is: restarting a libuv timer reorders its heap, and a handler whose deadlines move
  // with every request (the request headers timeout) would pay that per call. The handler's
  // on_timer() then finds nothing due and arms the timer for what is.
  void arm_timer_by(uint64_t due_ms) noexcept;
  void stop_timer() noexcept;

  // Closes both handles; on_closed() follows. Idempotent.
  void close() noexcept;
  bool closing() const noexcept { return closing_; }

  uv_loop_t* loop() const noexcept { return tcp_.loop; }

  // The peer's address as "ip:port", for logs.
  void peer_name(char* buf, size_t len) const noexcept;

 private:
  int start_reading() noexcept;
  // Writes the front of |chain| (output_, or the TLS layer's ciphertext).
  void write_chain(ChunkChain& chain) noexcept;
  void read_tls(const uint8_t* data, size_t len) noexcept;
  // Runs the TLS handshake on the input set; returns false when the connection is done for.
  bool advance_handshake() noexcept;
  bool has_output() const noexcept { return !output_.empty() || (tls_ && !tls_->wire().empty()); }
  // Hands |len| bytes of |block| to the handler, with the block set as the pool's reading one.
  bool deliver(ReadBlock* block, const uint8_t* data, size_t len) noexcept;
  // Lets go of a block taken for a read that never came.
  void drop_read_block() noexcept;

  static void alloc_cb(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;
  static void read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void write_cb(uv_write_t* req, int status) noexcept;
  static void connect_cb(uv_connect_t* req, int status) noexcept;
  static void timer_cb(uv_timer_t* timer) noexcept;
  static void close_cb(uv_handle_t* handle) noexcept;
  static void shutdown_cb(uv_shutdown_t* req, int status) noexcept;

  uv_tcp_t tcp_;
  uv_timer_t timer_;
  // When the timer fires (loop time), while it is active.
  uint64_t timer_due_ms_ = 0;
  uv_write_t write_req_;
  uv_connect_t connect_req_;
  uv_shutdown_t shutdown_req_;
  ConnectionHandler& handler_;
  ChunkChain output_;
  std::unique_ptr<TlsLayer> tls_;
  // The block of the read libuv is making (from alloc_cb to read_cb), else nullptr.
  ReadBlock* read_block_ = nullptr;
  size_t in_flight_ = 0;
  int open_handles_ = 2;
  bool writing_ = false;
  bool closing_ = false;
  bool reading_paused_ = false;
  bool shut_down_ = false;
};

}  // namespace grelay
