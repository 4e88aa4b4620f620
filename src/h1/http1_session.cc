#include "h1/http1_session.h"

#include <algorithm>

#include "core/log.h"
#include "h1/framing.h"
#include "h2/h2_session.h"

namespace grelay {
namespace {

// Budgets of an HTTP/1.1 connection (docs/config.md, "HTTP/1.1"); the others are the
// listener's settings and the ones every connection keeps (h2/h2_session.h).
//
// The request line: 8 KiB is what common servers take and far more than any gRPC or Connect
// path needs.
constexpr size_t max_request_line = 8 * 1024;
// Field lines of a request head (and of a chunked body's trailers): browsers send 10 to 20.
constexpr size_t max_request_fields = 100;
// Request body bytes the handler may hold without giving credit back (as an HTTP/2 stream's
// window bounds them): over it the socket is not read until it does.
constexpr size_t max_uncredited_body = 64 * 1024;
// Request body bytes read and dropped after the answer ended early (a client still sending
// what the answer did not wait for), before the connection is closed instead: a browser's
// request body is seldom larger, and the cost is reading, nothing is kept.
constexpr size_t max_discarded_body = 1024 * 1024;
// Bytes of pipelined requests kept while the exchange before them runs: over it the socket
// is not read until they are taken.
constexpr size_t max_pending_input = 64 * 1024;
// A pending_ buffer grown past this is given back once empty.
constexpr size_t kept_pending_capacity = 16 * 1024;

}  // namespace

Http1Session::Http1Session(uv_loop_t* loop, ChunkPool& pool, FlushQueue& flush_queue,
                           Http1SessionOwner& owner) noexcept
    : owner_(owner), flush_queue_(flush_queue), conn_(loop, pool, *this) {}

Http1Session::~Http1Session() {
  flush_queue_.remove(*this);
}

void Http1Session::start(std::shared_ptr<const Config> config, const ListenerConfig& listener,
                         std::string_view input) noexcept {
  config_ = std::move(config);
  listener_ = &listener;
  RequestLimits limits;
  limits.max_line = max_request_line;
  // The header section in raw bytes (line ends included), bounded as an HTTP/2 request's
  // metadata is.
  limits.max_section = listener.max_request_metadata;
  limits.max_fields = max_request_fields;
  parser_.emplace(limits);
  started_ms_ = uv_now(conn_.loop());
  // A client that sends nothing is dropped as an HTTP/2 one that sends no preface is.
  wait_deadline_ms_ = started_ms_ + static_cast<uint64_t>(listener.preface_timeout.count());
  if (!input.empty()) {
    const size_t taken = parse(reinterpret_cast<const uint8_t*>(input.data()), input.size());
    if (input_ == Input::held) pending_.assign(input.substr(taken));
  }
  if (closing()) return;
  rearm_timer();
  update_reading();
  flush_queue_.add(*this);
}

void Http1Session::close() noexcept {
  flush_queue_.remove(*this);
  conn_.close();
}

// --- input ---------------------------------------------------------------------------------

bool Http1Session::may_read() noexcept {
  const uint64_t turn = flush_queue_.turn();
  if (turn != read_turn_) {
    read_turn_ = turn;
    read_this_turn_ = 0;
  }
  return read_this_turn_ < http1_read_budget;
}

bool Http1Session::on_read(const uint8_t* data, size_t len) noexcept {
  read_this_turn_ += len;
  switch (input_) {
    case Input::closed:
      // Closing: what the client still sends is dropped until its EOF.
      return true;
    case Input::held:
      pending_.append(reinterpret_cast<const char*>(data), len);
      break;
    case Input::reading: {
      const size_t taken = parse(data, len);
      if (input_ == Input::held && taken < len) {
        pending_.append(reinterpret_cast<const char*>(data + taken), len - taken);
      }
      break;
    }
  }
  if (!closing()) {
    update_reading();
    flush_queue_.add(*this);
  }
  return true;
}

size_t Http1Session::parse(const uint8_t* data, size_t len) noexcept {
  size_t taken = 0;
  // After a head the parser goes on even with no byte left: a request without a body ends
  // right there.
  bool again = false;
  while ((taken < len || again) && input_ == Input::reading && !closing()) {
    again = false;
    if (request_ == Request::none) begin_request();
    const RequestParser::Step step = parser_->feed(data + taken, len - taken, *this);
    taken += step.taken;
    switch (step.stop) {
      case RequestParser::Stop::more:
        break;
      case RequestParser::Stop::head:
        on_head();
        again = true;
        break;
      case RequestParser::Stop::end:
        on_request_complete();
        break;
      case RequestParser::Stop::error:
        on_parse_error();
        return len;
    }
  }
  return taken;
}

void Http1Session::begin_request() noexcept {
  request_ = Request::head;
  wait_deadline_ms_ = 0;
  head_deadline_ms_ =
      uv_now(conn_.loop()) + static_cast<uint64_t>(listener_->request_headers_timeout.count());
  // The one deadline this adds: armed alone, and seldom restarted (arm_timer_by()).
  conn_.arm_timer_by(head_deadline_ms_);
}

void Http1Session::on_head() noexcept {
  const Http1Head& head = parser_->head();
  head_deadline_ms_ = 0;
  first_request_ = false;
  request_ = Request::body;
  head_request_ = head.head_method;
  http10_ = head.minor == 0;
  keep_alive_ = head.keep_alive && !draining_;
  stream_id_ = next_stream_id_;
  // Stream ids are 31 bits, as on HTTP/2: the last one ends the connection.
  if (stream_id_ >= INT32_MAX - 1) {
    keep_alive_ = false;
  } else {
    next_stream_id_ += 2;
  }
  close_after_ = !keep_alive_;
  ServerStreamHandler* handler = owner_.on_new_request(*this, stream_id_);
  if (!handler) {
    refuse(503, "the relay takes no new request", std::nullopt);
    return;
  }
  handler_ = handler;
  handler->on_request_header(nullptr, nullptr, FieldName::method, ":method", head.method);
  handler->on_request_header(nullptr, nullptr, FieldName::scheme, ":scheme",
                             conn_.tls() ? "https" : "http");
  handler->on_request_header(nullptr, nullptr, FieldName::path, ":path", head.path);
  handler->on_request_header(nullptr, nullptr, FieldName::authority, ":authority", head.authority);
  for (const RequestField& f : head.fields) {
    handler->on_request_header(nullptr, nullptr, classify_field(f.name), f.name, f.value);
  }
  handler->on_request_headers_end();
  if (closing() || handler_ != handler) return;
  // The client waits for a word before it sends the body; none if the answer came already.
  if (head.expect_continue && response_ == Response::none) {
    static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
    conn_.output().append(go_on.data(), go_on.size());
    flush_queue_.add(*this);
  }
}

void Http1Session::on_body(const uint8_t* data, size_t len) noexcept {
  if (len == 0) return;
  if (!handler_) {
    // The exchange is over: its body is dropped, up to a bound.
    if (response_ == Response::done && len > discard_left_) {
      close_after_ = true;
      begin_close();
      return;
    }
    discard_left_ -= std::min(len, discard_left_);
    return;
  }
  uncredited_ += len;
  handler_->on_request_data(data, len);
}

void Http1Session::on_request_complete() noexcept {
  // The next request waits (unparsed) for this exchange to end.
  input_ = Input::held;
  const bool discarded = !handler_ && request_ == Request::body && response_ == Response::done;
  if (request_ == Request::body) request_ = Request::ended;
  if (handler_) handler_->on_request_end();
  // The rest of an answered request is read: the connection serves the next one.
  if (discarded) next_exchange();
  flush_queue_.add(*this);
}

void Http1Session::on_parse_error() noexcept {
  const RequestError error = parser_->error();
  refuse(request_error_status(error), parser_->reason(),
         error == RequestError::uri_too_long || error == RequestError::fields_too_large
             ? PeerError::head_too_large
             : PeerError::bad_request);
}

void Http1Session::give_credit(int32_t stream_id, size_t n, bool) noexcept {
  if (stream_id != stream_id_ || !handler_) return;
  const bool was_over = uncredited_ > max_uncredited_body;
  uncredited_ -= std::min(n, uncredited_);
  if (was_over && uncredited_ <= max_uncredited_body) update_reading();
}

void Http1Session::update_reading() noexcept {
  if (conn_.closing()) return;
  bool read = true;
  if (input_ == Input::reading && uncredited_ > max_uncredited_body) read = false;
  if (input_ == Input::held && pending_.size() - pending_pos_ >= max_pending_input) read = false;
  if (read) {
    conn_.resume_reading();
  } else {
    conn_.pause_reading();
  }
}

void Http1Session::flush_now() noexcept {
  if (conn_.closing()) return;
  if (lingering_) {
    linger_flush();
    return;
  }
  if (not_sent_ != 0 && handler_) {
    // As HTTP/2 tells it: the head was not sent, then the stream is reset.
    const int error = not_sent_;
    not_sent_ = 0;
    handler_->on_response_not_sent(error);
    abort_exchange(NGHTTP2_INTERNAL_ERROR);
    return;
  }
  for (;;) {
    const bool pulled = pull_response();
    if (closing()) return;
    finish_exchange();
    if (closing()) return;
    // The next requests wait while the output is backed up: a client that sends requests and
    // never reads the answers cannot make the relay queue them.
    if (input_ == Input::held && !handler_ && request_ == Request::none &&
        conn_.output().size() < output_high_water) {
      resume_input();
      if (closing()) return;
      continue;
    }
    conn_.flush();
    if (closing()) return;
    // The socket took everything at once: the body may go on in this turn.
    if (pulled && !conn_.writing() && conn_.output().empty() && response_ == Response::body &&
        !waiting_) {
      continue;
    }
    break;
  }
}

void Http1Session::finish_exchange() noexcept {
  if (!handler_ || response_ != Response::done) return;
  ServerStreamHandler* handler = handler_;
  handler_ = nullptr;
  body_ = nullptr;
  // The handler may delete itself in it.
  handler->on_downstream_close(NGHTTP2_NO_ERROR);
  if (close_after_ || draining_) {
    begin_close();
    return;
  }
  if (request_ != Request::ended) {
    // The answer did not wait for the whole request, and its head told the client the
    // connection stays open: the rest of the request is read and dropped (up to
    // max_discarded_body), and the next request follows it.
    discard_left_ = max_discarded_body;
    uncredited_ = 0;
    update_reading();
    return;
  }
  next_exchange();
}

void Http1Session::next_exchange() noexcept {
  request_ = Request::none;
  response_ = Response::none;
  framing_ = Framing::none;
  trailers_.clear();
  waiting_ = false;
  uncredited_ = 0;
  expire_wait_ms_ = 0;
  if (listener_->idle_timeout) {
    wait_deadline_ms_ =
        uv_now(conn_.loop()) + static_cast<uint64_t>(listener_->idle_timeout->count());
    rearm_timer();
  }
}

void Http1Session::resume_input() noexcept {
  parser_->next();
  input_ = Input::reading;
  if (pending_pos_ < pending_.size()) {
    const size_t taken = parse(reinterpret_cast<const uint8_t*>(pending_.data()) + pending_pos_,
                               pending_.size() - pending_pos_);
    pending_pos_ += taken;
  }
  if (pending_pos_ >= pending_.size() || input_ == Input::closed) {
    if (pending_.capacity() > kept_pending_capacity) {
      std::string().swap(pending_);
    } else {
      pending_.clear();
    }
    pending_pos_ = 0;
  }
  update_reading();
}

void Http1Session::abort_exchange(uint32_t error_code) noexcept {
  if (ServerStreamHandler* handler = handler_) {
    handler_ = nullptr;
    body_ = nullptr;
    handler->on_downstream_close(error_code);
  }
  // No head went out (the handler's could not be written): the client gets an answer still.
  if (response_ == Response::none) {
    append_error_response(conn_.output(), 502, "the response could not be written");
  }
  begin_close();
}

void Http1Session::refuse(int status, const char* why, std::optional<PeerError> error) noexcept {
  if (closing()) return;
  char peer[64];
  conn_.peer_name(peer, sizeof(peer));
  if (error) {
    report_peer_error(PeerSide::client, *error, peer, why);
  } else {
    GRELAY_LOG_DEBUG("HTTP/1.1 client %s: %d (%s); closing", peer, status, why);
  }
  // A request the handler had is over for it, as a malformed HTTP/2 stream is.
  if (ServerStreamHandler* handler = handler_) {
    handler_ = nullptr;
    body_ = nullptr;
    handler->on_downstream_close(NGHTTP2_PROTOCOL_ERROR);
  }
  // Once a response head is out, the answer can only be cut.
  if (response_ == Response::none) append_error_response(conn_.output(), status, why);
  begin_close();
}

void Http1Session::begin_close() noexcept {
  if (closing()) return;
  lingering_ = true;
  input_ = Input::closed;
  pending_.clear();
  pending_pos_ = 0;
  head_deadline_ms_ = wait_deadline_ms_ = expire_wait_ms_ = expire_ms_ = 0;
  // The last answer waits for a client that reads slowly as long as an idle connection would
  // (an open HTTP/2 stream waits as long for a client that does not read).
  conn_.stop_timer();
  if (listener_ && listener_->idle_timeout) {
    conn_.start_timer(static_cast<uint64_t>(listener_->idle_timeout->count()));
  }
  // What the client still sends is read (and dropped) until its EOF: closing with unread
  // input would send RST, which can make the client drop the answer unread.
  conn_.resume_reading();
  linger_flush();
}

void Http1Session::linger_flush() noexcept {
  conn_.flush();
  if (fin_sent_ || conn_.closing() || conn_.writing() || !conn_.output().empty()) return;
  // The answer is out: FIN, then the client's EOF, or linger_ms.
  fin_sent_ = true;
  conn_.shutdown_write();
  conn_.start_timer(linger_ms);
}

// --- the worker's calls, timers, teardown ---------------------------------------------------

void Http1Session::drain() noexcept {
  if (closing()) return;
  draining_ = true;
  // Between requests: nothing to finish.
  if (!handler_ && request_ == Request::none) {
    begin_close();
    return;
  }
  // The response, unless its head is out, says connection: close.
  close_after_ = true;
}

void Http1Session::expire(const char* why) noexcept {
  if (closing()) return;
  draining_ = true;
  close_after_ = true;
  if (!handler_) {
    begin_close();
    return;
  }
  // The handler ends its response now (its status, or a cut); an exchange still open linger_ms
  // later is cut (on_timer()).
  expire_wait_ms_ = uv_now(conn_.loop()) + linger_ms;
  rearm_timer();
  handler_->on_expire(why);
  flush_queue_.add(*this);
}

void Http1Session::rearm_timer() noexcept {
  if (closing() || !listener_) return;
  uint64_t next = UINT64_MAX;
  for (uint64_t due : {wait_deadline_ms_, head_deadline_ms_, expire_wait_ms_, expire_ms_}) {
    if (due != 0) next = std::min(next, due);
  }
  if (listener_->max_connection_age && !draining_) {
    next =
        std::min(next, started_ms_ + static_cast<uint64_t>(listener_->max_connection_age->count()));
  }
  // Nothing due: a timer still armed fires once for nothing.
  if (next != UINT64_MAX) conn_.arm_timer_by(next);
}

void Http1Session::on_timer() noexcept {
  if (lingering_) {
    close();
    return;
  }
  const uint64_t now = uv_now(conn_.loop());
  if (expire_wait_ms_ != 0 && now >= expire_wait_ms_) {
    GRELAY_LOG_DEBUG("HTTP/1.1 exchange still open after its expiry; closing the connection");
    close();
    return;
  }
  if (head_deadline_ms_ != 0 && now >= head_deadline_ms_) {
    refuse(408, "request headers timeout", PeerError::headers_timeout);
    return;
  }
  if (wait_deadline_ms_ != 0 && now >= wait_deadline_ms_) {
    if (first_request_) {
      char peer[64];
      conn_.peer_name(peer, sizeof(peer));
      report_peer_error(PeerSide::client, PeerError::preface_timeout, peer, "no request in time");
    } else {
      GRELAY_LOG_DEBUG("HTTP/1.1 client connection idle for its idle_timeout: closing");
    }
    begin_close();
    return;
  }
  if (expire_ms_ != 0 && now >= expire_ms_) {
    expire_ms_ = 0;
    expire("connection closed: max_connection_age_grace is over");
    return;
  }
  if (!draining_ && listener_->max_connection_age &&
      now >= started_ms_ + static_cast<uint64_t>(listener_->max_connection_age->count())) {
    GRELAY_LOG_DEBUG(
        "HTTP/1.1 client connection reached max_connection_age: closing after "
        "the exchange in progress");
    if (listener_->max_connection_age_grace && handler_) {
      expire_ms_ = now + static_cast<uint64_t>(listener_->max_connection_age_grace->count());
    }
    drain();
    if (closing()) return;
  }
  rearm_timer();
}

void Http1Session::on_read_end(int) noexcept {
  // The client went (or the socket failed): an exchange in progress ends with CANCEL.
  close();
}

void Http1Session::on_write_done() noexcept {
  flush_now();
}

void Http1Session::on_closed() noexcept {
  if (gauge_) gauge_->open.fetch_sub(1, std::memory_order_relaxed);
  gauge_.reset();
  if (ServerStreamHandler* handler = handler_) {
    handler_ = nullptr;
    handler->on_downstream_close(NGHTTP2_CANCEL);
  }
  owner_.on_session_gone(*this);
  delete this;
}

}  // namespace grelay
