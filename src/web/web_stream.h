#pragma once

#include <cstdint>
#include <forward_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/chunk.h"
#include "core/grpc_frame.h"
#include "grelay/config.h"
#include "grelay/status.h"
#include "h2/downstream.h"
#include "h2/header_list.h"
#include "net/flush_queue.h"
#include "web/web_codec.h"

namespace grelay {

// What a web stream needs of the relay around it.
class WebHost {
 public:
  // A gRPC call answering through |downstream|'s stream |stream_id|.
  virtual ServerStreamHandler* new_grpc_call(Downstream& downstream,
                                             int32_t stream_id) noexcept = 0;
  // The CORS policy of a request to |path| at |authority| on |listener| from |client| (its
  // verified certificate, or nullptr): its route's, else the listener's; nullptr when none.
  virtual const CorsConfig* cors_for(const ListenerConfig& listener, std::string_view path,
                                     std::string_view authority,
                                     const PeerIdentity* client) noexcept = 0;
  // Counts a CORS preflight answered on |downstream|.
  virtual void count_preflight(Downstream& downstream) noexcept = 0;
  virtual FlushQueue& flush_queue() noexcept = 0;
  virtual ChunkPool& pool() noexcept = 0;

 protected:
  ~WebHost() = default;
};

// The web call a POST with |content_type| is, or nullopt when it is none (plain gRPC, other
// content types, Connect unary codecs other than proto and json).
std::optional<WebContentType> web_call_kind(std::string_view method,
                                            std::string_view content_type) noexcept;

// The handler each request stream of an HTTP/2 client of a web listener starts with. It reads
// the header block, then hands the stream (Downstream::rebind) to a WebStream when it is a web
// call or a CORS preflight, else to a Call, replays the fields to it, and is gone. It is small
// and keeps the fields by reference, so a plain gRPC call on a web listener pays little.
class WebFront final : public ServerStreamHandler {
 public:
  WebFront(WebHost& host, Downstream& outer, int32_t stream_id) noexcept;

  static void* operator new(size_t size);
  static void operator delete(void* p) noexcept;

  void on_request_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value, FieldName f, std::string_view n,
                         std::string_view v) noexcept override;
  void on_request_headers_end() noexcept override;
  // The session reports a DATA frame or the end of the request only after the header block.
  void on_request_data(const uint8_t*, size_t) noexcept override {}
  void on_request_end() noexcept override {}
  void on_downstream_close(uint32_t error_code) noexcept override;
  ResponsePull pull_response(size_t length) noexcept override;
  void write_response_body(ChunkChain&, size_t) noexcept override {}
  void on_response_not_sent(int) noexcept override {}
  // Nothing to end: the stream has no call yet.
  void on_expire(const char*) noexcept override {}

 private:
  WebHost& host_;
  Downstream& outer_;
  int32_t id_;
  HeaderList fields_;
  size_t header_bytes_ = 0;
  std::string_view method_, content_type_;
  bool preflight_ = false;
};

// A web call's stream, or a request a web listener answers itself. It reads the request's
// header block and then, by its method and content-type:
//  - not a web call (only on HTTP/1.1; WebFront gives such streams to a Call on HTTP/2):
//    answers 505 for plain gRPC, 405 or 415 for others;
//  - a CORS preflight: answers it, no backend involved;
//  - gRPC-Web (binary or text) or Connect (unary or streaming): stands between the client's
//    stream and a Call, as the Call's downstream, translating framing both ways without
//    decoding a message: the request becomes gRPC (content-type, 5-byte prefix of a Connect
//    unary body, base64 of grpc-web-text, Connect-Timeout-Ms as grpc-timeout), and the answer
//    goes back in the client's protocol (trailers as a grpc-web trailer frame, a Connect
//    end-of-stream message, or a Connect unary status with its JSON error).
// Owned by the client's downstream like any stream handler: it is deleted when told the
// stream closed, after the Call it made.
class WebStream final : public ServerStreamHandler, public Downstream, public Flushable {
 public:
  WebStream(WebHost& host, Downstream& outer, int32_t stream_id) noexcept;
  ~WebStream();

  // From a per-thread cache of WebStream-sized blocks, as Calls are: one is made for every
  // request stream of a web listener, plain gRPC included.
  static void* operator new(size_t size);
  static void operator delete(void* p) noexcept;

  // ServerStreamHandler: the client's stream.
  void on_request_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value, FieldName f, std::string_view n,
                         std::string_view v) noexcept override;
  void on_request_headers_end() noexcept override;
  void on_request_data(const uint8_t* data, size_t len) noexcept override;
  void on_request_end() noexcept override;
  void on_downstream_close(uint32_t error_code) noexcept override;
  ResponsePull pull_response(size_t length) noexcept override;
  void write_response_body(ChunkChain& out, size_t length) noexcept override;
  void on_response_not_sent(int lib_error) noexcept override;
  void on_expire(const char* why) noexcept override;

  // Downstream: what the Call answers.
  int send_response(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen,
                    ServerStreamHandler* body) noexcept override;
  int send_trailers(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen) noexcept override;
  void resume(int32_t stream_id) noexcept override;
  void give_credit(int32_t stream_id, size_t n, bool peer_ended) noexcept override;
  const PeerIdentity* peer_identity() const noexcept override { return outer_.peer_identity(); }
  CallProtocol protocol() const noexcept override;
  // The worker drains and expires the client's connection, not its streams one by one: these
  // act on this stream's call only, which the client's stream outlives.
  void drain() noexcept override {}
  void expire(const char* why) noexcept override { on_expire(why); }
  void close_now() noexcept override;

  // Flushable: a Connect unary answer is collected whole before the client gets anything.
  void flush_now() noexcept override;

 private:
  enum class Mode : uint8_t {
    reading,  // the request's header block is arriving
    own,      // the relay answers the request itself (preflight, refusal)
    web,      // a web call through call_
  };
  // Where the answer to the client stands.
  enum class Answer : uint8_t {
    none,       // nothing sent yet
    streaming,  // headers sent; the body is pulled through this stream
    done,       // the answer is complete (or was reset)
  };

  // The request headers are complete: decides what the stream is.
  void dispatch() noexcept;
  void answer_preflight(std::string_view origin) noexcept;
  // Answers the request with HTTP |status| and a one-line text |reason| body.
  void answer_text(const char* status, std::string_view reason) noexcept;
  // Ends the web call with |status| in the client's protocol, the Call being forgotten
  // (cancelled upstream). Resets the stream when an answer was already under way.
  void fail(StatusCode status, std::string_view message) noexcept;
  void start_web_call() noexcept;
  // Feeds |len| request bytes to the Call, as gRPC framing.
  void forward_request(const uint8_t* data, size_t len) noexcept;
  void forward_chain(ChunkChain& chain) noexcept;
  // The 5-byte prefix of a Connect unary body of |length| bytes, to the Call.
  void send_prefix(size_t length) noexcept;
  // Gives the client back the window of request bytes no Call will credit.
  void release_request_credit() noexcept;
  // Sends response HEADERS to the client: |fields| plus the CORS fields, the stream staying
  // open for a body pulled through this stream when |body|.
  void send_headers(const char* status, NvArray& nva, bool body) noexcept;
  void add_cors(NvArray& nva) noexcept;
  // The Call's response body up to |length| bytes, translated into out_.
  void pull_from_call(size_t length) noexcept;
  // The Connect unary answer, from the whole response collected.
  void finish_connect_unary() noexcept;
  // The trailers of the response in the client's protocol, appended to out_.
  void append_end(const HeaderList& trailers) noexcept;

  // Copies fields the Call hands over for as long as they are needed here.
  const std::string& keep(std::string_view s);
  // The name or value of |nv| from the Call, copied unless the Call keeps it itself.
  std::string_view lasting(const nghttp2_nv& nv, bool name);

  WebHost& host_;
  Downstream& outer_;
  int32_t id_;
  Mode mode_ = Mode::reading;
  Answer answer_ = Answer::none;
  WebProtocol protocol_ = WebProtocol::grpc_web;
  std::string_view codec_;
  ServerStreamHandler* call_ = nullptr;

  // The request's fields as they came (referenced, not copied), then translated for the Call.
  HeaderList fields_;
  // RFC 7541 size of the request's fields so far (name + value + 32 each).
  size_t header_bytes_ = 0;
  std::string_view method_, path_, authority_, content_type_, origin_;
  std::string grpc_content_type_;
  std::string grpc_timeout_;
  std::string request_encoding_;
  int64_t content_length_ = -1;
  // The CORS policy and whether the request's origin passes it.
  const CorsConfig* cors_ = nullptr;
  bool origin_allowed_ = false;

  // Request body.
  Base64Decoder decoder_;
  ChunkChain decoded_;
  // Connect unary without content-length: the body, held until its end.
  ChunkChain held_request_;
  // The request's framing, for messages with flags no client may set.
  GrpcFrameTracker request_frames_;
  bool prefix_sent_ = false;
  // Flow-control credit the Call gives is for the gRPC bytes it got; the client's is for the
  // bytes it sent. Bytes the Call got that the client never sent (Connect prefixes), and client
  // bytes whose stream window was given back before the Call saw them (a held Connect unary
  // body), whose connection window is still to give.
  size_t synthetic_credit_ = 0;
  size_t stream_credited_ = 0;
  // grpc-web-text: client bytes and decoded bytes not yet credited.
  size_t encoded_owed_ = 0;
  size_t decoded_owed_ = 0;

  // Response.
  ChunkChain out_;
  // A Connect unary answer, collected whole.
  ChunkChain unary_answer_;
  // The Call's response framing, for messages with flags a backend may not set.
  GrpcFrameTracker response_frames_;
  Base64Encoder encoder_;
  HeaderList response_headers_;
  HeaderList response_trailers_;
  // Stable addresses: fields refer to them. Empty (no allocation) on the plain gRPC path.
  std::forward_list<std::string> kept_;
  // The Call's response ended (its last bytes were pulled); the client's answer ends once out_
  // is sent.
  bool call_ended_ = false;
  bool trailers_only_ = false;
  bool cut_ = false;
  // A pull of the Call's response waits for it to say resume().
  bool call_waiting_ = false;
};

}  // namespace grelay
