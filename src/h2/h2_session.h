#pragma once

#include <nghttp2/nghttp2.h>

#include <initializer_list>
#include <memory>
#include <vector>

#include "core/chunk.h"
#include "net/connection.h"
#include "net/flush_queue.h"

namespace grelay {

struct NgSessionDeleter {
  void operator()(nghttp2_session* session) const noexcept { nghttp2_session_del(session); }
};
using NgSessionPtr = std::unique_ptr<nghttp2_session, NgSessionDeleter>;

struct NgCallbacksDeleter {
  void operator()(nghttp2_session_callbacks* cbs) const noexcept {
    nghttp2_session_callbacks_del(cbs);
  }
};
using NgCallbacksPtr = std::unique_ptr<nghttp2_session_callbacks, NgCallbacksDeleter>;

struct NgOptionDeleter {
  void operator()(nghttp2_option* option) const noexcept { nghttp2_option_del(option); }
};
using NgOptionPtr = std::unique_ptr<nghttp2_option, NgOptionDeleter>;

// Windows and frame sizes both sessions announce. The stream window bounds what the relay
// buffers per stream in each direction; the connection window bounds it per connection.
inline constexpr int32_t stream_window_size = 1 << 20;
inline constexpr int32_t connection_window_size = 16 << 20;
inline constexpr uint32_t max_frame_size = 16384;
// Output held per connection before DATA production pauses until the socket drains.
inline constexpr size_t output_high_water = 256 * 1024;
// Output held per connection before the relay stops reading the peer until the socket drains.
inline constexpr size_t read_pause_output = 1024 * 1024;

// Callbacks every session table shares: frame output to the connection and NO_COPY DATA.
void set_common_callbacks(nghttp2_session_callbacks* cbs) noexcept;

// One HTTP/2 connection: the socket, the nghttp2 session and the send loop between them.
// Owned by itself: it deletes itself from on_closed() once the socket is released.
class H2Session : public ConnectionHandler, public Flushable {
 public:
  H2Session(uv_loop_t* loop, ChunkPool& pool, FlushQueue& flush_queue, nghttp2_mem* mem,
            bool eager_connection_window) noexcept;
  virtual ~H2Session();
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  nghttp2_session* ng() const noexcept { return session_.get(); }
  Connection& connection() noexcept { return conn_; }
  uv_loop_t* loop() const noexcept { return conn_.loop(); }
  ChunkPool& pool() noexcept { return pool_; }

  // Produce and write frames at the end of this loop turn.
  void schedule_send() noexcept;
  // Grants the peer window for |n| bytes of |stream_id| written to the other side. Each
  // stream's window bounds what the relay buffers for it. On a session with an eager
  // connection window (backend connections, shared by many clients) the connection window
  // was already granted when the DATA arrived, so one client's stalled stream never starves
  // another's; elsewhere (a client's own connection) it is granted here too, which bounds
  // what one client makes the relay buffer. With |peer_ended| the peer has ended its side of
  // the stream and sends no more DATA on it, so only the connection window is granted.
  void consume(int32_t stream_id, size_t n, bool peer_ended = false) noexcept;
  // For on_data_chunk_recv callbacks: grants the connection window at once if eager.
  void on_data_received(size_t n) noexcept;
  // Closes the socket now; streams are told through on_teardown().
  void close() noexcept;
  bool closed() const noexcept { return conn_.closing(); }

  void flush_now() noexcept override;

  // Appends a DATA payload of |length| bytes taken from |source| to the output, right after
  // its frame header.
  virtual void write_body(nghttp2_data_source* source, ChunkChain& out, size_t length) noexcept = 0;

  // For data read callbacks: true when the socket is backed up and |stream_id| must wait. The
  // stream is resumed once the output drains. Streams are remembered by id, never by pointer,
  // so one that closes meanwhile is simply not found.
  bool pause_if_backed_up(int32_t stream_id) noexcept;

 protected:
  // Creates the nghttp2 session (server or client side) with |callbacks|, and queues the
  // SETTINGS both sides share plus |extra| and the connection window. False on failure.
  bool start_session(bool server, const nghttp2_session_callbacks* callbacks,
                     std::initializer_list<nghttp2_settings_entry> extra) noexcept;

  // The socket is gone: fail every stream. The session is deleted right after.
  virtual void on_teardown() noexcept = 0;

  // A stream's user data (its handler). The last stream looked up is remembered: the
  // callbacks of one frame, and of every field of a header block, ask for the same stream,
  // and nghttp2 finds it by a hash lookup each time. Every change of a stream's user data
  // goes through set_stream_data() so the remembered one stays true.
  void* stream_data(int32_t stream_id) noexcept {
    if (stream_id != cached_stream_id_) {
      cached_stream_id_ = stream_id;
      cached_stream_data_ = nghttp2_session_get_stream_user_data(session_.get(), stream_id);
    }
    return cached_stream_data_;
  }
  void set_stream_data(int32_t stream_id, void* data) noexcept {
    nghttp2_session_set_stream_user_data(session_.get(), stream_id, data);
    if (stream_id == cached_stream_id_) cached_stream_data_ = data;
  }
  // A new stream got its user data from nghttp2 (at submit time).
  void forget_stream_data(int32_t stream_id) noexcept {
    if (stream_id == cached_stream_id_) cached_stream_id_ = 0;
  }

  // Hands |len| bytes read from the peer to nghttp2 and returns what
  // nghttp2_session_mem_recv returned; a session may look at them on the way.
  virtual ssize_t receive(const uint8_t* data, size_t len) noexcept {
    return nghttp2_session_mem_recv(session_.get(), data, len);
  }

  bool on_read(const uint8_t* data, size_t len) noexcept override;
  void on_read_end(int status) noexcept override;
  void on_write_done() noexcept override;
  void on_closed() noexcept override;
  void on_connect(int) noexcept override {}
  void on_timer() noexcept override {}

  Connection conn_;
  NgSessionPtr session_;
  // The worker's allocator for nghttp2 (SessionAllocator), shared by its sessions.
  nghttp2_mem* mem_;

 private:
  friend struct H2SessionCallbacks;

  // Resumes the streams paused by pause_if_backed_up(). Returns true if there were any.
  bool resume_paused() noexcept;

  ChunkPool& pool_;
  FlushQueue& flush_queue_;
  std::vector<int32_t> paused_streams_;
  const bool eager_connection_window_;
  int32_t cached_stream_id_ = 0;
  void* cached_stream_data_ = nullptr;
};

}  // namespace grelay
