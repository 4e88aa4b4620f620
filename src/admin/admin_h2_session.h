#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "admin/grpc_health.h"

namespace grelay {

// One answer of the admin endpoint.
struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// The admin endpoint over h2c with prior knowledge: a small nghttp2 server session that
// answers each request with what |handler| returns, and serves grpc.health.v1.Health (Check
// and Watch) for grelay itself: health_of() each service, given the process status |health|
// returns. It knows no sockets: feed it the bytes read (receive()) and write what
// take_output() returns.
class AdminH2Session {
 public:
  using Handler = std::function<AdminResponse(std::string_view method, std::string_view path)>;
  using HealthSource = std::function<ServingStatus()>;

  AdminH2Session(Handler handler, HealthSource health);
  ~AdminH2Session();
  AdminH2Session(const AdminH2Session&) = delete;
  AdminH2Session& operator=(const AdminH2Session&) = delete;

  // Processes bytes from the client (the connection preface first). False on a protocol
  // error: write what take_output() holds (a GOAWAY), then close.
  bool receive(const uint8_t* data, size_t len) noexcept;
  // Frames to send, and clears them.
  std::string take_output() noexcept;
  // True when neither side has more to say: the connection may close.
  bool finished() const noexcept;
  // The status |health| returns may have changed: every Watch whose last message says
  // otherwise gets a new one (then write what take_output() holds).
  void health_changed() noexcept;

 private:
  struct Stream {
    std::string method;
    std::string path;
    std::string content_type;
    // Request DATA, kept for gRPC calls only (a health request is a few bytes).
    std::string request;
    bool request_too_large = false;
    // The body: a plain answer, or the gRPC messages sent so far; |sent| bytes of it are out.
    AdminResponse response;
    size_t sent = 0;
    // A gRPC answer ends with trailers carrying |grpc_status|; a Watch stays open instead.
    bool grpc = false;
    bool watching = false;
    std::string service;
    ServingStatus watched = ServingStatus::unknown;
    // The body callback ran out of bytes on an open Watch and waits for resume.
    bool deferred = false;
    std::string grpc_status = "0";
  };

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) noexcept;
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                       void* user) noexcept;
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) noexcept;
  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                             void* user) noexcept;
  static int on_data_chunk(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                           size_t len, void* user) noexcept;
  static ssize_t read_body(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* data_flags, nghttp2_data_source* source, void* user) noexcept;
  void answer(int32_t stream_id) noexcept;
  // A call to grpc.health.v1.Health/|method|.
  void answer_health(int32_t stream_id, Stream& stream, std::string_view method) noexcept;
  // A gRPC answer with no message: HEADERS with END_STREAM and the status in it.
  void answer_grpc_error(int32_t stream_id, int status, std::string_view message) noexcept;
  void drain_output() noexcept;

  Handler handler_;
  HealthSource health_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, Stream> streams_;
  std::string output_;
};

}  // namespace grelay
