#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "grelay/config.h"
#include "h1/request_parser.h"
#include "h2/downstream.h"
#include "net/connection.h"
#include "net/flush_queue.h"
#include "net/listener.h"
#include "stats/peer_error.h"

namespace grelay {

class Http1Session;

// Bytes read from one HTTP/1.1 connection in one loop turn (and in one read): the rest waits
// for the next turn, after every other connection's.
inline constexpr size_t http1_read_budget = 64 * 1024;

// Makes the handler of each request of an Http1Session; told when a session is gone.
class Http1SessionOwner {
 public:
  // The handler of the request that just began (its stream id |stream_id|), or nullptr to
  // refuse it (503, connection closed).
  virtual ServerStreamHandler* on_new_request(Http1Session& session,
                                              int32_t stream_id) noexcept = 0;
  virtual void on_session_gone(Http1Session& session) noexcept = 0;

 protected:
  ~Http1SessionOwner() = default;
};

// A client connection that speaks HTTP/1.1 (listeners with web = true only; it takes them over
// from a ServerSession, Connection::hand_over()). One request at a time: each is a stream of
// its own (ids 1, 3, 5...) whose handler hears of it as of an HTTP/2 request, and pipelined
// requests wait, unparsed, until the response before them is out. Owned by itself: it deletes
// itself from on_closed() once the socket is released.
class Http1Session final : public ConnectionHandler,
                           public Flushable,
                           public Downstream,
                           private RequestParser::BodySink {
 public:
  Http1Session(uv_loop_t* loop, ChunkPool& pool, FlushQueue& flush_queue,
               Http1SessionOwner& owner) noexcept;
  ~Http1Session();
  Http1Session(const Http1Session&) = delete;
  Http1Session& operator=(const Http1Session&) = delete;

  // The connection, not yet opened: Connection::hand_over() opens it.
  Connection& connection() noexcept { return conn_; }
  // Takes over one count the caller added to |gauge| for this connection; it is given back
  // when the connection is gone.
  void hold_count(std::shared_ptr<ConnectionGauge> gauge) noexcept { gauge_ = std::move(gauge); }
  // Serves the connection under |listener| (one of |config|'s listeners: the limits of the
  // config the connection was accepted under). |input| is what the client sent before this
  // session took the connection: it is parsed first. The owner may be asked for a handler
  // within this call.
  void start(std::shared_ptr<const Config> config, const ListenerConfig& listener,
             std::string_view input) noexcept;
  // Closes the socket now; an exchange in progress ends with CANCEL.
  void close() noexcept;
  // The stream id of the exchange in progress (0 before the first request).
  int32_t stream_id() const noexcept { return stream_id_; }

  // Downstream. Fields are written when they are sent (nothing is kept by reference); a
  // response without content-length goes out chunked, its trailers as the chunked trailer
  // section (HTTP/1.0: until the connection closes, without trailers).
  int send_response(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen,
                    ServerStreamHandler* body) noexcept override;
  int send_trailers(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen) noexcept override;
  void resume(int32_t stream_id) noexcept override;
  void give_credit(int32_t stream_id, size_t n, bool peer_ended) noexcept override;
  const PeerIdentity* peer_identity() const noexcept override {
    return conn_.tls() ? conn_.tls()->peer() : nullptr;
  }
  // rebind() is not overridden: HTTP/1.1 streams carry web calls only, never plain gRPC.
  // Finishes the exchange in progress (its response says connection: close), then closes.
  void drain() noexcept override;
  // The open exchange's handler ends it now (on_expire(|why|)); the connection closes after
  // its response, or linger_ms later at the latest.
  void expire(const char* why) noexcept override;
  void close_now() noexcept override { close(); }

  void flush_now() noexcept override;

 private:
  // What arrives from the client goes to the parser (reading), waits in pending_ for the
  // exchange in progress to end (held), or is dropped (closed: the connection is closing).
  enum class Input : uint8_t { reading, held, closed };
  // The request of the exchange in progress: none yet, its head arriving, its body arriving,
  // complete.
  enum class Request : uint8_t { none, head, body, ended };
  // Its response: none yet, the body being pulled, all of it queued.
  enum class Response : uint8_t { none, body, done };
  // How the response body is delimited.
  enum class Framing : uint8_t { none, length, chunked, until_close };

  bool on_read(const uint8_t* data, size_t len) noexcept override;
  bool may_read() noexcept override;
  size_t read_size() const noexcept override { return http1_read_budget; }
  void on_read_end(int status) noexcept override;
  void on_write_done() noexcept override;
  void on_timer() noexcept override;
  void on_closed() noexcept override;
  void on_connect(int) noexcept override {}
  // RequestParser::BodySink.
  void on_body(const uint8_t* data, size_t len) noexcept override;

  bool closing() const noexcept { return conn_.closing() || lingering_; }
  // Parses |data| until the input is held or closed; returns the bytes taken.
  size_t parse(const uint8_t* data, size_t len) noexcept;
  // The first byte of a request arrived: its head must be complete in time.
  void begin_request() noexcept;
  // The request head is complete: a stream and its handler.
  void on_head() noexcept;
  // The request is complete: the next one waits for the response.
  void on_request_complete() noexcept;
  // The parser refused the request.
  void on_parse_error() noexcept;
  // Writes the response head for send_response().
  void write_head(int status, const nghttp2_nv* nva, size_t nvlen, bool body) noexcept;
  // Pulls the response body while the socket takes it. Returns true when it wrote any.
  bool pull_response() noexcept;
  // Ends the exchange once its response is queued (its handler is told NO_ERROR), and goes on
  // to the next request or closes.
  void finish_exchange() noexcept;
  // Makes the session ready for the next request.
  void next_exchange() noexcept;
  // Takes the requests that waited in pending_, now that the exchange before them is done.
  void resume_input() noexcept;
  // The exchange cannot end cleanly: its handler is told |error_code| and the connection
  // closes once what is queued is written.
  void abort_exchange(uint32_t error_code) noexcept;
  // Answers the request itself with |status| and the one line |why|, and closes. With |error|
  // the client broke a rule: counted and logged as a peer error.
  void refuse(int status, const char* why, std::optional<PeerError> error) noexcept;
  // No more requests: what is queued is written, then FIN; the socket closes at the client's
  // EOF or linger_ms after the FIN.
  void begin_close() noexcept;
  void linger_flush() noexcept;
  // Reading goes on unless the handler holds too much of the request body or pending_ is
  // full.
  void update_reading() noexcept;
  void rearm_timer() noexcept;

  Http1SessionOwner& owner_;
  FlushQueue& flush_queue_;
  Connection conn_;
  // The config the connection was accepted under (its listener is Downstream::listener()).
  std::shared_ptr<const Config> config_;
  std::shared_ptr<ConnectionGauge> gauge_;
  std::optional<RequestParser> parser_;

  // The exchange in progress.
  ServerStreamHandler* handler_ = nullptr;
  // Where the response body is pulled from (send_response()'s |body|).
  ServerStreamHandler* body_ = nullptr;
  int32_t stream_id_ = 0;
  int32_t next_stream_id_ = 1;
  Request request_ = Request::none;
  Response response_ = Response::none;
  Framing framing_ = Framing::none;
  // Body bytes the response's content-length still announces.
  uint64_t remaining_ = 0;
  // The response's trailer section (send_trailers()), written after the last chunk.
  std::string trailers_;
  // The handler's body said "wait": it calls resume().
  bool waiting_ = false;
  // send_response() could not write the head (the nghttp2 error the handler is told).
  int not_sent_ = 0;
  // Request body bytes handed to the handler and not credited back.
  size_t uncredited_ = 0;
  // The exchange's request allows another one after it, and the connection closes after the
  // exchange's response.
  // Request body bytes still dropped after an early answer before the connection closes.
  size_t discard_left_ = 0;
  bool keep_alive_ = true;
  bool close_after_ = false;
  bool head_request_ = false;
  bool http10_ = false;

  Input input_ = Input::reading;
  // Bytes of requests that wait for the exchange before them; pending_pos_ of them are taken.
  std::string pending_;
  size_t pending_pos_ = 0;
  bool draining_ = false;
  bool lingering_ = false;
  // Closing, and the FIN is queued.
  bool fin_sent_ = false;

  // Loop times (ms; 0: none): when the connection started; when the next request must begin
  // (the first request: preface_timeout, later ones: idle_timeout); when the request head
  // arriving must be complete; when an expired exchange is cut; when open exchanges expire
  // after max_connection_age_grace.
  uint64_t started_ms_ = 0;
  uint64_t wait_deadline_ms_ = 0;
  uint64_t head_deadline_ms_ = 0;
  uint64_t expire_wait_ms_ = 0;
  uint64_t expire_ms_ = 0;
  bool first_request_ = true;
  // Bytes read in loop turn |read_turn_| (FlushQueue::turn()).
  uint64_t read_turn_ = 0;
  size_t read_this_turn_ = 0;
};

}  // namespace grelay
