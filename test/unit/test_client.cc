#include "test_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace grelay::test {

struct TestClient::Session {
  int fd;
  std::vector<int>* statuses;
  // Stream id of each call, in order of |paths|.
  std::vector<int32_t> streams;
  size_t open = 0;
  // The empty message each request sends: a 5-byte gRPC frame header, length 0.
  static constexpr char message[5] = {0, 0, 0, 0, 0};
  std::vector<size_t> sent;

  static ssize_t send_cb(nghttp2_session*, const uint8_t* data, size_t length, int,
                         void* user_data) {
    auto* self = static_cast<Session*>(user_data);
    ssize_t n = ::send(self->fd, data, length, MSG_NOSIGNAL);
    return n < 0 ? ssize_t{NGHTTP2_ERR_CALLBACK_FAILURE} : n;
  }

  int index_of(int32_t stream_id) const {
    for (size_t i = 0; i < streams.size(); ++i) {
      if (streams[i] == stream_id) return static_cast<int>(i);
    }
    return -1;
  }

  static int header_cb(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                       void* user_data) {
    auto* self = static_cast<Session*>(user_data);
    int i = self->index_of(frame->hd.stream_id);
    if (i >= 0 && std::string_view(reinterpret_cast<const char*>(name), namelen) == "grpc-status") {
      (*self->statuses)[static_cast<size_t>(i)] =
          std::stoi(std::string(reinterpret_cast<const char*>(value), valuelen));
    }
    return 0;
  }

  static int close_cb(nghttp2_session*, int32_t, uint32_t, void* user_data) {
    --static_cast<Session*>(user_data)->open;
    return 0;
  }

  static ssize_t read_cb(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                         uint32_t* flags, nghttp2_data_source*, void* user_data) {
    auto* self = static_cast<Session*>(user_data);
    size_t& sent = self->sent[static_cast<size_t>(self->index_of(stream_id))];
    size_t n = std::min(length, sizeof(message) - sent);
    std::memcpy(buf, message + sent, n);
    sent += n;
    if (sent == sizeof(message)) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
};

TestClient::TestClient(int fd, int timeout_ms) : fd_(fd), timeout_ms_(timeout_ms) {
  timeval tv{timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

TestClient::~TestClient() {
  ::close(fd_);
}

std::vector<int> TestClient::unary(const std::vector<std::string>& paths) {
  std::vector<int> statuses(paths.size(), -1);
  Session state{fd_, &statuses, {}, 0, std::vector<size_t>(paths.size(), 0)};
  nghttp2_session_callbacks* callbacks;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_send_callback(callbacks, Session::send_cb);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, Session::header_cb);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, Session::close_cb);
  nghttp2_session* session;
  nghttp2_session_client_new(&session, callbacks, &state);
  nghttp2_session_callbacks_del(callbacks);
  nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);
  auto nv = [](const char* name, const std::string& value) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())),
                      std::strlen(name), value.size(), NGHTTP2_NV_FLAG_NONE};
  };
  const std::string post = "POST", http = "http", authority = "relay.test",
                    grpc = "application/grpc", trailers = "trailers";
  for (const std::string& path : paths) {
    const nghttp2_nv headers[] = {nv(":method", post),      nv(":scheme", http),
                                  nv(":path", path),        nv(":authority", authority),
                                  nv("content-type", grpc), nv("te", trailers)};
    nghttp2_data_provider body{};
    body.read_callback = Session::read_cb;
    int32_t id = nghttp2_submit_request(session, nullptr, headers, 6, &body, nullptr);
    state.streams.push_back(id);
    ++state.open;
  }
  uint8_t buf[16384];
  while (state.open > 0) {
    if (nghttp2_session_send(session) != 0) break;
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) break;
    if (nghttp2_session_mem_recv(session, buf, static_cast<size_t>(n)) < 0) break;
  }
  nghttp2_session_send(session);
  nghttp2_session_del(session);
  return statuses;
}

SocketPair tcp_pair() {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("tcp_pair: cannot listen on loopback");
  }
  SocketPair pair;
  pair.client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(pair.client, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    throw std::runtime_error("tcp_pair: cannot connect");
  }
  pair.server = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  ::close(listener);
  if (pair.server < 0) throw std::runtime_error("tcp_pair: cannot accept");
  return pair;
}

}  // namespace grelay::test
