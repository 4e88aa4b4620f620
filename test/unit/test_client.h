#pragma once

#include <string>
#include <vector>

namespace grelay::test {

// A gRPC client over one blocking socket, with nghttp2's client session: for the tests that
// drive a Relay through real connections while the test thread runs the Relay's loop. Use it
// from a thread of its own.
class TestClient {
 public:
  // Takes ownership of |fd|, a connected socket. Reads wait at most |timeout_ms|.
  explicit TestClient(int fd, int timeout_ms = 5000);
  ~TestClient();
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  // Sends one unary call with an empty message to each of |paths| at once and waits for their
  // ends. Returns the grpc-status of each, in order: -1 for a call that got none (reset, or
  // the connection closed or timed out first).
  std::vector<int> unary(const std::vector<std::string>& paths);

 private:
  struct Session;
  int fd_;
  int timeout_ms_;
};

// A connected pair of TCP sockets on loopback: |client| for a TestClient, |server| to hand
// to Relay::serve().
struct SocketPair {
  int client = -1;
  int server = -1;
};
SocketPair tcp_pair();

}  // namespace grelay::test
