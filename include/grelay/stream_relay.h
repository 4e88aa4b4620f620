#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "grelay/export.h"

namespace grelay {

class Relay;

// A request as the relay read it, for the host's choice of who answers it. The views are valid
// during the call they are passed to.
struct RequestHead {
  std::string_view method;
  std::string_view path;
  std::string_view authority;
  std::string_view content_type;
};

// Relays streams of a host application's own server nghttp2_session: the host keeps its
// session, its loop and its socket, forwards its nghttp2 callbacks here, and the relay answers
// the streams it takes on that same session (response HEADERS, DATA, trailers, RST_STREAM),
// with the routes, clusters, retries, deadlines, limits and metrics of its Relay, as for a
// connection of the Relay's own listeners. The host answers every other stream itself.
//
// What the host's session must be (the constructor checks the first two):
// - a server session (nghttp2_session_server_new*);
// - created with nghttp2_option_set_no_auto_window_update(): the relay gives back the flow-
//   control credit of a relayed stream's request body as it forwards the bytes, so that a
//   backend that reads slowly slows its client down instead of filling the host's memory
//   (the host consumes its own streams' bytes with nghttp2_session_consume()).
// nghttp2's HTTP messaging checks may be on (its default) or off
// (nghttp2_option_set_no_http_messaging()): the relay checks the header block of every
// request stream itself (RFC 9113 section 8), those it leaves to the host included, and
// resets a malformed one before the host is told the block ended. With them off, the body
// length of the host's own streams (content-length) is the host's to check.
//
// Every callback below is meant to be called from the host's callback of the same name, for
// every stream, and returns true when the stream is (or was) the relay's: the host then does
// nothing more with that event. The relay never calls into the host's session from inside
// one of these calls except to submit frames (nghttp2 allows it) and never throws from them.
//
// The host keeps its own state of a stream (fields it noted while the relay read them) until
// the stream closes, whatever these calls return.
//
// Threads and lifetime: use it on the loop of its Relay, the one the host's session runs on.
// It refers to the Relay and to the session: destroy it before either. Destroying it resets
// every stream it holds on the session (RST_STREAM(CANCEL), sent at the host's next send) and
// cancels their backend side; the host forwards no callback to it afterwards. The Relay's
// shutdown() completes only once every StreamRelay of it is destroyed.
class GRELAY_API StreamRelay {
 public:
  struct Options {
    // The [[listener]] of the Relay's config (by index) whose limits apply to these streams
    // (metadata sizes, stream_idle_timeout) and under which they are counted in metrics. The
    // host does not need to have the Relay listen on it.
    size_t listener = 0;
    // The client's address ("ip:port"), for the access log.
    std::string peer;
    // subjectAltName values of the client's certificate, when the host terminates TLS and
    // verified it (routes with client_san match them); empty otherwise.
    std::vector<std::string> client_sans;
    // Chooses, once a request's headers are complete, whether the relay answers it. Unset:
    // every request whose content-type is application/grpc (or application/grpc+...). A
    // request whose metadata is over the listener's max_request_metadata is the relay's
    // whatever want() would say (it ends with RESOURCE_EXHAUSTED).
    std::function<bool(const RequestHead&)> want;
    // The relay put frames on the session outside the host's own callbacks (a backend
    // answered, a deadline passed, credit was given back): the host should call
    // nghttp2_session_send() (or mem_send and write) soon. Called from the loop, as the loop
    // prepares to poll or after it polled (so a few times per turn at most), never from inside
    // an nghttp2 callback; the host may destroy the StreamRelay in it. Required; what it throws
    // is logged and dropped.
    std::function<void()> on_output;
  };

  // Throws std::invalid_argument when |session| is not a server session or does not leave
  // window updates to its user, or |options| has no on_output; std::out_of_range when
  // options.listener is not a listener of the Relay's config; std::runtime_error once the
  // Relay is shutting down.
  StreamRelay(Relay& relay, nghttp2_session* session, Options options);
  ~StreamRelay();
  StreamRelay(const StreamRelay&) = delete;
  StreamRelay& operator=(const StreamRelay&) = delete;

  // The allocator the relay's own sessions use on |relay|'s loop (free lists per size class),
  // for the host to create its sessions with (nghttp2_session_server_new3()): the relayed
  // calls hold on to the header fields nghttp2 allocates, and the relay's pool serves them
  // faster than malloc. Valid while |relay| lives, on its loop's thread only; a session made
  // with it must be deleted before the Relay.
  static nghttp2_mem* session_allocator(Relay& relay) noexcept;

  // nghttp2 callbacks to forward.
  bool on_begin_headers(const nghttp2_frame* frame) noexcept;
  bool on_header(const nghttp2_frame* frame, nghttp2_rcbuf* name, nghttp2_rcbuf* value) noexcept;
  bool on_frame_recv(const nghttp2_frame* frame) noexcept;
  bool on_data_chunk_recv(int32_t stream_id, const uint8_t* data, size_t len) noexcept;
  bool on_frame_send(const nghttp2_frame* frame) noexcept;
  bool on_frame_not_send(const nghttp2_frame* frame, int lib_error) noexcept;
  bool on_stream_close(int32_t stream_id, uint32_t error_code) noexcept;

  // on_stream_close() returns true for a stream the relay took (relays() was true at some
  // point), false for the host's own streams, those the relay reset while their headers
  // arrived included.

  // True while the relay answers |stream_id|: from the end of its request headers (when the
  // relay took it) until it closes or the relay resets it.
  bool relays(int32_t stream_id) const noexcept;
  // Streams the relay keeps an entry for: those whose headers it reads, those it answers, and
  // those it reset that have not closed yet.
  size_t stream_count() const noexcept;

  // The host drains its connection: the relay takes no new stream (new ones are the host's
  // alone, unread and unchecked by the relay); the streams it holds run to their end.
  void drain() noexcept;
  // The host's drain time is over: every stream the relay answers ends now with UNAVAILABLE,
  // saying |why|; one whose header block is still arriving is reset with REFUSED_STREAM.
  void expire(const char* why) noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace grelay
