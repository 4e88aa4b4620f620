#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace grelay {

// RFC 9113 §5.1 for what a client sends on streams that are gone. The server sessions let
// nghttp2 forget a stream as soon as it closes (no_closed_streams: otherwise nghttp2 keeps up to
// max_concurrent_streams closed stream objects, a few hundred bytes each, per connection), and
// nghttp2 then drops any frame on a stream id it does not know. This keeps what the RFC needs in
// a couple of hundred bytes: how each of the last closed streams ended, and the stream ids the
// client skipped, which closed without ever having been open (RFC 9113 §5.1.1). A stream closed
// longer ago than that is forgotten, and frames on it are dropped as before.
//
// nghttp2 drops DATA on an unknown stream before calling back, so the check sits in front of
// nghttp2_session_mem_recv: receive() reads the frame headers of what the client sent and hands
// the bytes to nghttp2 in one piece, split only before a frame that may land on a closed stream,
// so that the check sees the stream states nghttp2 will.
class ClosedStreams {
 public:
  // The session the checks act on.
  class Host {
   public:
    // Hands |len| bytes to nghttp2_session_mem_recv and returns what it returned.
    virtual ssize_t take(const uint8_t* data, size_t len) noexcept = 0;
    // True if the session still serves |stream_id|: the stream is open, and stays open while
    // nghttp2 takes input unless a frame of the client on it ends it.
    virtual bool serving(int32_t stream_id) noexcept = 0;
    // Stream error: RST_STREAM(STREAM_CLOSED) on |stream_id|.
    virtual void reset_closed(int32_t stream_id) noexcept = 0;
    // Connection error: GOAWAY(|error_code|) naming the last stream taken, then the close. |why|
    // is for the log.
    virtual void fail(uint32_t error_code, const char* why) noexcept = 0;

   protected:
    ~Host() = default;
  };

  // How a stream closed, which says what a DATA or HEADERS frame arriving on it later means.
  enum class Ending : uint8_t {
    // The relay reset it. The client may have sent frames before it saw the reset: ignored.
    relay_reset,
    // The client reset it: a stream error STREAM_CLOSED.
    client_reset,
    // Both sides ended it with END_STREAM: a connection error STREAM_CLOSED.
    ended,
    // A frame after the client's reset got RST_STREAM(STREAM_CLOSED); the relay has reset the
    // stream too, so later frames are ignored and one stream costs at most one answer.
    answered,
  };

  // What a DATA or HEADERS frame on a stream nghttp2 no longer knows calls for.
  enum class Verdict : uint8_t {
    take,            // hand it to nghttp2, which ignores it
    stream_error,    // RST_STREAM(STREAM_CLOSED)
    closed_error,    // connection error STREAM_CLOSED
    protocol_error,  // connection error PROTOCOL_ERROR (HEADERS on a stream never opened)
  };

  // Hands |len| bytes read from the client to nghttp2 through |host|, acting on the frames that
  // land on closed streams. Returns |len|, or the negative error of nghttp2. After a connection
  // error, the rest is dropped.
  ssize_t receive(Host& host, const uint8_t* data, size_t len) noexcept;

  // The session sent RST_STREAM on |stream_id| (on_frame_send; nghttp2 closes the stream next).
  void on_reset_sent(int32_t stream_id) noexcept { reset_sent_ = stream_id; }
  // The client's RST_STREAM on |stream_id| (on_frame_recv: before nghttp2 closes the stream, or
  // on a stream already closed).
  void on_reset_received(int32_t stream_id) noexcept;
  // nghttp2 closed |stream_id| (on_stream_close).
  void on_close(int32_t stream_id) noexcept;

  // What DATA, or HEADERS when |headers|, on |stream_id| calls for, |stream_id| being below every
  // id the client may still open and not open any more.
  Verdict check(int32_t stream_id, bool headers) const noexcept;

  // Closed streams remembered: enough for the frames a client sends right after a stream ends,
  // in 4 bytes each.
  static constexpr size_t remembered_streams = 32;
  // Runs of skipped stream ids remembered; a client that follows the RFC skips none.
  static constexpr size_t remembered_gaps = 4;

 private:
  struct Gap {
    uint32_t first;
    uint32_t last;
  };

  uint32_t* find(int32_t stream_id) noexcept;
  const uint32_t* find(int32_t stream_id) const noexcept {
    return const_cast<ClosedStreams*>(this)->find(stream_id);
  }
  void remember(int32_t stream_id, Ending how) noexcept;
  // For a DATA or HEADERS frame of the client on a stream the batch did not open, read ahead of
  // nghttp2: true if nghttp2 may take it as it is. The session serves most such streams, and
  // nghttp2 knows them when it gets to the frame; for the others the verdict stands, unless a
  // frame of the batch may end the stream.
  bool passes(Host& host, uint8_t type, int32_t id) noexcept;
  // Acts on a frame passes() refused, once nghttp2 has taken what comes before it; false after
  // a connection error.
  bool judge(Host& host, uint8_t type, int32_t id) noexcept;
  // A HEADERS frame opens |stream_id|, at or above next_id_.
  void open(uint32_t stream_id) noexcept {
    if (stream_id > next_id_) skipped(stream_id);
    // 2^31 + 1 at most: no stream id reaches it.
    next_id_ = stream_id + 2;
  }
  // Remembers the ids from next_id_ to below |stream_id| as closed without having been open.
  void skipped(uint32_t stream_id) noexcept;
  // Everything handed to nghttp2 so far has been processed: a new batch starts.
  void start_batch() noexcept {
    batch_first_ = next_id_;
    batch_gap_ = false;
    ended_ = 0;
  }
  static uint64_t bit(int32_t stream_id) noexcept {
    return uint64_t{1} << ((static_cast<uint32_t>(stream_id) >> 1) & 63);
  }

  // The last closed streams, the oldest overwritten first, each (stream id >> 1) << 2 | Ending:
  // the client's stream ids are odd, so the shift loses nothing.
  uint32_t closed_[remembered_streams] = {};
  Gap gaps_[remembered_gaps] = {};
  // The lowest stream id the client may still open.
  uint32_t next_id_ = 1;
  // The stream of the last RST_STREAM sent and of the last one received: nghttp2 closes the
  // stream right after either, so on_close() learns from them who reset it.
  int32_t reset_sent_ = 0;
  int32_t reset_received_ = 0;

  // Reading frame headers. The client's preface comes first.
  uint32_t payload_left_ = 0;
  uint8_t preface_left_ = 24;
  uint8_t head_size_ = 0;
  uint8_t head_[9] = {};
  uint8_t closed_next_ = 0;
  uint8_t closed_count_ = 0;
  uint8_t gap_next_ = 0;
  uint8_t gap_count_ = 0;
  bool failed_ = false;

  // The batch: the frames handed to nghttp2 in one piece. Streams the batch opens are those at
  // or above batch_first_, unless it skipped ids; ended_ has the bit() of every stream a frame of
  // the batch may end. nghttp2 closes a stream while taking input only on such a frame, so other
  // streams keep, through the batch, the state they have when it is read.
  bool batch_gap_ = false;
  uint32_t batch_first_ = 1;
  uint64_t ended_ = 0;
};

}  // namespace grelay
