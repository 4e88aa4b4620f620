#pragma once

#include <nghttp2/nghttp2.h>

#include <initializer_list>
#include <memory>
#include <vector>

#include "core/chunk.h"
#include "core/token_bucket.h"
#include "net/connection.h"
#include "net/flush_queue.h"
#include "stats/peer_error.h"

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
// What one loop turn takes from one connection. Reads are large (read_block_size, 256 KiB, on
// backend connections; ServerSession::read_size() on client ones), so that a stream of large
// DATA frames costs few syscalls; the work they make is bounded by
// frames instead: nghttp2 gets a read receive_slice bytes at a time, and once
// frame_budget_per_turn frames were handled the rest of the read waits for the next turn,
// after every other connection had its turn (FlushQueue::defer_input), and the socket is not
// read meanwhile. A flood of empty or 1-byte frames from one peer, client or backend, thus
// delays other connections' calls by at most about 5,700 frames (under 1 ms of work) a turn,
// however large the reads.
inline constexpr size_t read_budget_per_turn = 256 * 1024;
inline constexpr uint32_t frame_budget_per_turn = 4096;
inline constexpr size_t receive_slice = 16 * 1024;

// Budgets every connection keeps (docs/config.md, "Budgets at the edge"). Empty DATA frames (no
// payload, no END_STREAM) in a row: a client or backend has no use for more than a few.
inline constexpr uint16_t max_empty_frames_in_a_row = 100;
// Most CONTINUATION frames after one HEADERS: 8 carry 128 KiB of header block at the default
// frame size, twice the metadata the relay forwards.
inline constexpr size_t max_continuations = 8;
// The largest max_request_metadata / max_response_metadata the config allows.
inline constexpr size_t max_metadata_limit = 1024 * 1024;
// How long a connection closed for abuse waits for its GOAWAY to be written and for the peer's
// EOF before the socket is closed.
inline constexpr uint64_t linger_ms = 1000;

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
  // Grants |n| bytes of the stream's window only; consume(stream_id, n, true) grants the
  // connection's part later.
  void consume_stream(int32_t stream_id, size_t n) noexcept;
  // For on_data_chunk_recv callbacks: grants the connection window at once if eager.
  void on_data_received(size_t n) noexcept;
  // Closes the socket now; streams are told through on_teardown().
  void close() noexcept;
  // The socket is closing, or the connection was closed for abuse and only waits for its
  // GOAWAY to be written: either way it carries no more HTTP/2.
  bool closed() const noexcept { return conn_.closing() || lingering_; }

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
  // Runs at the start of each flush, before nghttp2 produces frames.
  virtual void before_send() noexcept {}

  // A stream's user data (its handler). The last stream looked up is remembered: the
  // callbacks of one frame, and of every field of a header block, ask for the same stream,
  // and nghttp2 finds it by a hash lookup each time. Every change of a stream's user data
  // goes through set_stream_data() so the remembered one stays true, except on the stream's
  // close, where clear_closing_stream_data() clears the remembered one only.
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
  // For on_stream_close callbacks: nghttp2 frees the stream when the callback returns (the
  // sessions keep no closed streams), so its user data is cleared here only, where lookups
  // made while its handler hears of the close find it. Those lookups must be of this stream:
  // a handler told of its stream's close never looks up another one of this session.
  void clear_closing_stream_data(int32_t stream_id) noexcept {
    cached_stream_id_ = stream_id;
    cached_stream_data_ = nullptr;
  }

  // Closes the connection because the peer broke a budget or a rule: a GOAWAY with |code| and
  // |debug| goes out behind the frames already written (nghttp2's queue, which may hold a
  // flood of acknowledgements, is dropped), |why| is counted and logged, and the socket
  // closes once the peer had the GOAWAY (its EOF) or after linger_ms. Input is discarded
  // meanwhile. Call outside nghttp2 callbacks; inside them, use abuse().
  void close_for(PeerError why, uint32_t code, const char* debug) noexcept;
  // For nghttp2 callbacks: remembers why the connection must close and returns the value the
  // callback returns so that nghttp2 stops; the read or flush that called nghttp2 then closes
  // it with close_for().
  int abuse(PeerError why, uint32_t code, const char* debug) noexcept;
  // Checks a received frame against the budgets every session keeps: empty DATA frames in a
  // row, and SETTINGS and PING frames. Returns 0, or abuse()'s value. A DATA frame with a
  // payload or a HEADERS frame, nearly every frame of a call, only ends a run of empty ones.
  int check_budgets(const nghttp2_frame& frame) noexcept {
    ++frames_this_turn_;
    if ((frame.hd.type == NGHTTP2_DATA && frame.hd.length > frame.data.padlen) ||
        frame.hd.type == NGHTTP2_HEADERS) {
      empty_frames_ = 0;
      return 0;
    }
    return check_other_budgets(frame);
  }
  // For on_frame_send callbacks: a GOAWAY went out; one nghttp2 sent for an error of the peer
  // is reported as a protocol error.
  void on_goaway_sent(const nghttp2_frame& frame) noexcept;
  // The side of the relay this connection's peer is on (for reports).
  virtual PeerSide side() const noexcept = 0;
  // The connection timer fired (not while lingering).
  virtual void on_session_timer() noexcept {}
  bool lingering() const noexcept { return lingering_; }
  // Hands |len| bytes read from the peer to nghttp2 and returns what
  // nghttp2_session_mem_recv returned; a session may look at them on the way.
  virtual ssize_t receive(const uint8_t* data, size_t len) noexcept {
    return nghttp2_session_mem_recv(session_.get(), data, len);
  }

  bool on_read(const uint8_t* data, size_t len) noexcept override;
  bool may_read() noexcept override;
  void resume_kept_input() noexcept override;
  void on_read_end(int status) noexcept override;
  void on_write_done() noexcept override;
  void on_closed() noexcept override;
  void on_connect(int) noexcept override {}
  void on_timer() noexcept final;

  Connection conn_;
  NgSessionPtr session_;
  // The worker's allocator for nghttp2 (SessionAllocator), shared by its sessions.
  nghttp2_mem* mem_;

 private:
  // check_budgets() for the frames that may break one.
  int check_other_budgets(const nghttp2_frame& frame) noexcept;
  friend struct H2SessionCallbacks;

  // A new loop turn resets the per-turn budgets.
  void start_turn() noexcept;
  // Hands nghttp2 up to |len| bytes, a slice at a time, while this turn's frame budget lasts.
  // Returns the bytes taken (all of them once the session failed or lingers).
  size_t feed(const uint8_t* data, size_t len) noexcept;
  // Keeps |len| bytes for a later turn, holding the read block they are in (or a copy).
  void keep(const uint8_t* data, size_t len);
  void drop_kept() noexcept;
  // After input: writes what it made, and stops reading a peer that does not read its answers.
  void after_input() noexcept;
  // Resumes the streams paused by pause_if_backed_up(). Returns true if there were any.
  bool resume_paused() noexcept;
  // nghttp2 failed with |rv| (reading or writing): closes the connection, with the GOAWAY
  // that fits.
  void fail_session(int rv) noexcept;
  // Lingering: shuts the write side once the output is written.
  void linger_flush() noexcept;

  ChunkPool& pool_;
  FlushQueue& flush_queue_;
  std::vector<int32_t> paused_streams_;
  const bool eager_connection_window_;
  int32_t cached_stream_id_ = 0;
  void* cached_stream_data_ = nullptr;
  // Bytes read and frames received in loop turn |read_turn_| (FlushQueue::turn()).
  uint64_t read_turn_ = 0;
  size_t read_this_turn_ = 0;
  uint32_t frames_this_turn_ = 0;
  // Input waiting for a later turn, oldest first.
  struct Kept {
    ReadBlock* block;
    const uint8_t* data;
    size_t len;
  };
  std::vector<Kept> kept_;
  // Kept input waits for the output to drain below output_high_water, not for the next turn.
  bool input_waits_for_output_ = false;
  // SETTINGS and PING frames: 1000 at once, 100 a second more, and one more for each DATA
  // frame the relay sends (a gRPC client's flow-control PINGs follow the data it receives).
  TokenBucket<1000, 100> control_budget_;
  uint16_t empty_frames_ = 0;
  // Why a callback stopped nghttp2 (abuse()), for the read or flush that called it.
  struct Abuse {
    PeerError why = PeerError::protocol_error;
    uint32_t code = 0;
    const char* debug = nullptr;
  } abuse_;
  bool abused_ = false;
  // Closed for abuse: waiting for the GOAWAY to be written and the peer to go.
  bool lingering_ = false;
};

}  // namespace grelay
