#include "grelay/stream_relay.h"

#include <cstring>
#include <stdexcept>
#include <vector>

#include "api/relay_state.h"
#include "core/log.h"
#include "grelay/relay.h"
#include "net/tls_layer.h"
#include "relay/admission.h"
#include "relay/call.h"
#include "relay/worker.h"

// A host application's server session as a Downstream: the host forwards its nghttp2
// callbacks, the relay answers on the host's session. The same Calls as for the relay's own
// listeners carry the streams, so every status, limit and bound is the same.

namespace grelay {
namespace {

std::string_view view(nghttp2_rcbuf* buf) noexcept {
  nghttp2_vec v = nghttp2_rcbuf_get_buf(buf);
  return {reinterpret_cast<const char*>(v.base), v.len};
}

}  // namespace

// Hidden, though nested in an exported class: nothing of it is the library's API.
struct __attribute__((visibility("hidden"))) StreamRelay::Impl final : Downstream, Flushable {
  // Where a stream of the host's session stands for the relay.
  enum class State : uint8_t {
    reading,  // its request headers are arriving; the host has not been told yet
    relayed,  // the relay answers it
    dropped,  // the relay reset it: the rest of what the client sent is discarded
  };
  struct Entry {
    Call* call;
    State state;
    // The relay took the stream (it was relayed before it may have been dropped).
    bool taken;
  };

  // Streams by id: open addressing with linear probing, the ids spread by a multiplicative
  // hash so that a client's consecutive ids do not form one long probe run. No allocation per
  // stream, unlike a node-based map.
  class StreamTable {
   public:
    StreamTable() : slots_(64), shift_(32 - 6) {}

    Entry* find(int32_t id) noexcept {
      // Id 0 (the connection) marks an empty slot.
      if (id <= 0) return nullptr;
      for (size_t i = home(id);; i = next(i)) {
        if (slots_[i].id == id) return &slots_[i].entry;
        if (slots_[i].id == 0) return nullptr;
      }
    }

    void insert(int32_t id, Entry entry) {
      if ((count_ + 1) * 2 > slots_.size()) grow();
      size_t i = home(id);
      while (slots_[i].id != 0)
        i = next(i);
      slots_[i] = Slot{id, entry};
      ++count_;
    }

    void erase(int32_t id) noexcept {
      size_t i = home(id);
      while (slots_[i].id != id) {
        if (slots_[i].id == 0) return;
        i = next(i);
      }
      // Backward shift: later entries of the probe run move up, so no tombstone is left.
      for (size_t j = next(i); slots_[j].id != 0; j = next(j)) {
        const size_t k = home(slots_[j].id);
        const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays) continue;
        slots_[i] = slots_[j];
        i = j;
      }
      slots_[i] = Slot{};
      --count_;
    }

    size_t size() const noexcept { return count_; }

    template <typename Fn>
    void for_each(Fn fn) {
      for (Slot& slot : slots_) {
        if (slot.id != 0) fn(slot.id, slot.entry);
      }
    }

   private:
    struct Slot {
      int32_t id = 0;
      Entry entry{};
    };

    size_t home(int32_t id) const noexcept {
      return (static_cast<uint32_t>(id) * 0x9E3779B1u) >> shift_;
    }
    size_t next(size_t i) const noexcept { return (i + 1) & (slots_.size() - 1); }

    void grow() {
      std::vector<Slot> old(slots_.size() * 2);
      old.swap(slots_);
      --shift_;
      count_ = 0;
      for (const Slot& slot : old) {
        if (slot.id != 0) insert(slot.id, slot.entry);
      }
    }

    std::vector<Slot> slots_;
    // 32 - log2(slots_.size()): home() keeps the hash's top bits.
    unsigned shift_;
    size_t count_ = 0;
  };

  Impl(Worker& w, nghttp2_session* s, Options o) : worker(w), session(s), options(std::move(o)) {
    config = worker.snapshot()->config_ptr();
    listener_ = &config->listeners[options.listener];
    if (!options.client_sans.empty()) identity.sans = options.client_sans;
  }

  ~Impl() {
    // The host's session outlives this (its contract): the streams the relay holds are reset
    // on it, so that no client waits for an answer and no data source is left referring here.
    // nghttp2 sends the resets before any DATA, at the host's next send.
    close_now();
    session = nullptr;
    worker.flush_queue().remove(*this);
    worker.detach(*this);
  }

  Entry* find(int32_t stream_id) noexcept { return streams.find(stream_id); }

  void schedule() noexcept {
    if (session) worker.flush_queue().add(*this);
  }

  void flush_now() noexcept override {
    if (!session) return;
    try {
      options.on_output();
    } catch (...) {
      GRELAY_LOG_ERROR(
          "StreamRelay: the host's on_output threw; frames may wait for its next "
          "send");
    }
  }

  // Ends the relay's part in a stream: the Call is told (and deletes itself); what the client
  // sends on it later is discarded.
  void drop(Entry& entry, uint32_t error_code) noexcept {
    Call* call = entry.call;
    entry.call = nullptr;
    entry.state = State::dropped;
    handlers.erase(*call);
    call->on_downstream_close(error_code);
  }

  void reset(int32_t stream_id, uint32_t error_code) noexcept {
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, error_code);
    schedule();
  }

  void reject_malformed(int32_t stream_id, Entry& entry) noexcept {
    GRELAY_LOG_DEBUG("stream %d: malformed request; resetting it with PROTOCOL_ERROR", stream_id);
    reset(stream_id, NGHTTP2_PROTOCOL_ERROR);
    drop(entry, NGHTTP2_PROTOCOL_ERROR);
  }

  // The request headers are complete: the relay takes the stream, or gives it to the host.
  // Metadata over the listener's limit is refused by the relay (RESOURCE_EXHAUSTED) whoever
  // would have answered: the fields want() would read were not all kept.
  void decide(int32_t stream_id, Entry& entry) noexcept {
    const RequestHead head = entry.call->request_head();
    bool take = entry.call->request_metadata_over_limit();
    try {
      if (!take) take = options.want ? options.want(head) : is_grpc_content_type(head.content_type);
    } catch (...) {
      GRELAY_LOG_ERROR("StreamRelay: the host's want() threw; stream %d is left to the host",
                       stream_id);
    }
    if (!take) {
      Call* call = entry.call;
      streams.erase(stream_id);
      handlers.erase(*call);
      call->on_downstream_close(NGHTTP2_NO_ERROR);
      return;
    }
    entry.state = State::relayed;
    entry.taken = true;
    entry.call->on_request_headers_end();
  }

  static ssize_t read_body(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* data_flags, nghttp2_data_source* source, void*) noexcept {
    auto* self = static_cast<Impl*>(source->ptr);
    Entry* entry = self->find(stream_id);
    if (!entry || !entry->call) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    const ResponsePull pull = entry->call->pull_response(length);
    const ssize_t n = data_source_result(pull, data_flags);
    if (n > 0) {
      // The host's session frames the bytes itself: they are copied into its buffer.
      ChunkChain out(self->worker.pool());
      entry->call->write_response_body(out, pull.length);
      size_t at = 0;
      while (!out.empty()) {
        iovec iov[16];
        const int count = out.peek(iov, 16);
        size_t taken = 0;
        for (int i = 0; i < count; ++i) {
          std::memcpy(buf + at, iov[i].iov_base, iov[i].iov_len);
          at += iov[i].iov_len;
          taken += iov[i].iov_len;
        }
        out.drain(taken);
      }
    }
    return n;
  }

  // Downstream.
  int send_response(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen,
                    ServerStreamHandler* body) noexcept override {
    if (!session) return NGHTTP2_ERR_INVALID_STATE;
    nghttp2_data_provider provider;
    provider.source.ptr = this;
    provider.read_callback = read_body;
    const int rv =
        nghttp2_submit_response(session, stream_id, nva, nvlen, body ? &provider : nullptr);
    schedule();
    return rv;
  }

  int send_trailers(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen) noexcept override {
    if (!session) return NGHTTP2_ERR_INVALID_STATE;
    return nghttp2_submit_trailer(session, stream_id, nva, nvlen);
  }

  void resume(int32_t stream_id) noexcept override {
    if (!session) return;
    nghttp2_session_resume_data(session, stream_id);
    schedule();
  }

  void give_credit(int32_t stream_id, size_t n, bool peer_ended) noexcept override {
    if (!session || n == 0) return;
    // A request that ended needs no stream window: only the connection's is given back.
    if (peer_ended)
      nghttp2_session_consume_connection(session, n);
    else
      nghttp2_session_consume(session, stream_id, n);
    schedule();
  }

  const PeerIdentity* peer_identity() const noexcept override {
    return identity.sans.empty() ? nullptr : &identity;
  }

  void drain() noexcept override { draining = true; }

  void expire(const char* why) noexcept override {
    draining = true;
    streams.for_each([this, why](int32_t stream_id, Entry& entry) {
      if (!entry.call) return;
      if (entry.state == State::relayed) {
        entry.call->on_expire(why);
        return;
      }
      // Its header block is still arriving: neither the relay's nor the host's yet. The client
      // may send it again elsewhere.
      reset(stream_id, NGHTTP2_REFUSED_STREAM);
      drop(entry, NGHTTP2_REFUSED_STREAM);
    });
  }

  void close_now() noexcept override {
    draining = true;
    streams.for_each([this](int32_t stream_id, Entry& entry) {
      if (!entry.call) return;
      if (session) reset(stream_id, NGHTTP2_CANCEL);
      drop(entry, NGHTTP2_CANCEL);
    });
  }

  Worker& worker;
  nghttp2_session* session;
  Options options;
  // The config the streams' limits come from (a reload does not change them, as for a
  // listener's connection).
  std::shared_ptr<const Config> config;
  PeerIdentity identity;
  bool draining = false;
  StreamTable streams;
  // The Calls of |streams|, to expire or cancel them all.
  IntrusiveList<ServerStreamHandler> handlers;
};

StreamRelay::StreamRelay(Relay& relay, nghttp2_session* session, Options options) {
  if (!session || !nghttp2_session_check_server_session(session)) {
    throw std::invalid_argument("StreamRelay: the host's session must be a server session");
  }
  // nghttp2 refuses to take consumed bytes from a session that updates windows itself.
  if (nghttp2_session_consume_connection(session, 0) == NGHTTP2_ERR_INVALID_STATE) {
    throw std::invalid_argument(
        "StreamRelay: the host's session must be created with "
        "nghttp2_option_set_no_auto_window_update()");
  }
  if (!options.on_output) throw std::invalid_argument("StreamRelay: options.on_output is unset");
  Worker& worker = *relay.state_->worker;
  if (options.listener >= worker.config().listeners.size()) {
    throw std::out_of_range("StreamRelay: the relay's config has no listener " +
                            std::to_string(options.listener));
  }
  std::string peer = options.peer;
  const size_t listener = options.listener;
  impl_ = std::make_unique<Impl>(worker, session, std::move(options));
  if (!worker.attach(*impl_, listener, std::move(peer))) {
    impl_->session = nullptr;
    throw std::runtime_error("StreamRelay: the relay is shutting down");
  }
}

StreamRelay::~StreamRelay() = default;

nghttp2_mem* StreamRelay::session_allocator(Relay& relay) noexcept {
  return relay.state_->worker->mem();
}

bool StreamRelay::on_begin_headers(const nghttp2_frame* frame) noexcept {
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return false;
  if (impl_->draining || !impl_->session) return false;
  Call* call = impl_->worker.new_call(*impl_, frame->hd.stream_id);
  impl_->streams.insert(frame->hd.stream_id, Impl::Entry{call, Impl::State::reading, false});
  impl_->handlers.push_front(*call);
  // Until the headers are complete the host is not told the stream is the relay's: it sees the
  // same fields and may keep them for the streams it will answer itself.
  return false;
}

bool StreamRelay::on_header(const nghttp2_frame* frame, nghttp2_rcbuf* name,
                            nghttp2_rcbuf* value) noexcept {
  if (frame->hd.type != NGHTTP2_HEADERS) return false;
  Impl::Entry* entry = impl_->find(frame->hd.stream_id);
  if (!entry) return false;
  if (!entry->call) return true;
  const bool trailer = frame->headers.cat != NGHTTP2_HCAT_REQUEST;
  const std::string_view n = view(name);
  const std::string_view v = view(value);
  const FieldName f = classify_field(n);
  if (!entry->call->request_check().on_field(f, n, v, trailer)) {
    // A malformed request is the relay's to end, whoever would have answered it.
    impl_->reject_malformed(frame->hd.stream_id, *entry);
  } else if (!trailer) {
    // Request trailers carry nothing gRPC uses; only the first HEADERS block is kept.
    entry->call->on_request_header(name, value, f, n, v);
  }
  return entry->state != Impl::State::reading;
}

bool StreamRelay::on_frame_recv(const nghttp2_frame* frame) noexcept {
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return false;
  const int32_t stream_id = frame->hd.stream_id;
  Impl::Entry* entry = impl_->find(stream_id);
  if (!entry) return false;
  if (!entry->call) return true;
  const bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
  if (frame->hd.type == NGHTTP2_HEADERS) {
    if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      if (!entry->call->request_check().on_headers_end()) {
        impl_->reject_malformed(stream_id, *entry);
        return true;
      }
      impl_->decide(stream_id, *entry);
      // The host's stream now, or ended already by the relay: look it up again.
      entry = impl_->find(stream_id);
      if (!entry) return false;
      if (!entry->call) return true;
    } else if (!end_stream) {
      // Trailers end the request; a later HEADERS block that does not is malformed.
      impl_->reject_malformed(stream_id, *entry);
      return true;
    }
  }
  if (end_stream) {
    if (!entry->call->request_check().on_end()) {
      impl_->reject_malformed(stream_id, *entry);
      return true;
    }
    entry->call->on_request_end();
  }
  return true;
}

bool StreamRelay::on_data_chunk_recv(int32_t stream_id, const uint8_t* data, size_t len) noexcept {
  Impl::Entry* entry = impl_->find(stream_id);
  if (!entry) return false;
  if (entry->call && !entry->call->request_check().on_data(len)) {
    // More body than the request's content-length declared.
    impl_->reject_malformed(stream_id, *entry);
  }
  if (entry->call) {
    entry->call->on_request_data(data, len);
  } else if (impl_->session) {
    // Nobody will forward these bytes: hand the window back at once.
    nghttp2_session_consume(impl_->session, stream_id, len);
    impl_->schedule();
  }
  return true;
}

bool StreamRelay::on_frame_send(const nghttp2_frame* frame) noexcept {
  Impl::Entry* entry = impl_->find(frame->hd.stream_id);
  if (!entry || entry->state == Impl::State::reading) return false;
  // A response that ended while the client is still sending: the rest of the request is not
  // wanted, so the stream is released (with NO_ERROR, as gRPC servers do).
  if (frame->hd.type == NGHTTP2_HEADERS && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
      impl_->session &&
      nghttp2_session_get_stream_remote_close(impl_->session, frame->hd.stream_id) == 0) {
    impl_->reset(frame->hd.stream_id, NGHTTP2_NO_ERROR);
  }
  return true;
}

bool StreamRelay::on_frame_not_send(const nghttp2_frame* frame, int lib_error) noexcept {
  if (frame->hd.type != NGHTTP2_HEADERS) return false;
  Impl::Entry* entry = impl_->find(frame->hd.stream_id);
  if (!entry || entry->state == Impl::State::reading) return false;
  if (entry->call) {
    GRELAY_LOG_DEBUG("stream %d: response headers not sent (%s); resetting it", frame->hd.stream_id,
                     nghttp2_strerror(lib_error));
    entry->call->on_response_not_sent(lib_error);
  }
  if (impl_->session) impl_->reset(frame->hd.stream_id, NGHTTP2_INTERNAL_ERROR);
  return true;
}

bool StreamRelay::on_stream_close(int32_t stream_id, uint32_t error_code) noexcept {
  Impl::Entry* entry = impl_->find(stream_id);
  if (!entry) return false;
  const bool taken = entry->taken;
  Call* call = entry->call;
  impl_->streams.erase(stream_id);
  if (call) {
    impl_->handlers.erase(*call);
    call->on_downstream_close(error_code);
  }
  return taken;
}

bool StreamRelay::relays(int32_t stream_id) const noexcept {
  const Impl::Entry* entry = impl_->find(stream_id);
  return entry && entry->state == Impl::State::relayed;
}

size_t StreamRelay::stream_count() const noexcept {
  return impl_->streams.size();
}

void StreamRelay::drain() noexcept {
  impl_->drain();
}

void StreamRelay::expire(const char* why) noexcept {
  impl_->expire(why);
}

}  // namespace grelay
