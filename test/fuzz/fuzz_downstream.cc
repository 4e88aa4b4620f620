// Fuzzes what a hostile client can send: the input is written, as raw bytes, to a Relay
// serving one end of a socketpair. No backend ever answers: most are unreachable (port 1),
// and one is a socket the harness listens on but never reads, so calls end in relay-made
// statuses, retries across endpoints, deadlines, connect timeouts and client resets, and
// request bodies are still spliced onto a backend connection.
//
// Input layout: one flags byte, then the bytes the client sends.
//   bits 0-2  7: the bytes alone on a gRPC listener; 6: the HTTP/2 client preface, then the
//             bytes, on a listener with web protocols on (gRPC-Web, Connect); 5: the bytes
//             alone on that web listener (an HTTP/1.1 client); else the preface and the bytes
//             on the gRPC listener
//   bit 3     keep the write side open for 20 loop turns after the last byte, so backend
//             failures reach calls while the client is still there
//   bits 4-5  how the bytes are cut into writes, one write per loop turn (see chunk_sizes)
//   bit 6     once every byte is written, start a graceful shutdown (GOAWAY) while the
//             client is still connected; the forced shutdown at the end follows it
//   bit 7     keep the write side open for 3 ms after the last byte instead, so that 1 ms
//             deadlines and connect timeouts fire too

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/log.h"
#include "grelay/config.h"
#include "grelay/relay.h"

namespace {

// SILENT_PORT is replaced by the port of the silent backend.
constexpr std::string_view fuzz_config_text = R"toml(
[[listener]]
address = "127.0.0.1:0"
max_concurrent_streams = 100

[[route]]
service = "fuzz.Deadline"
cluster = "silent"
timeout = "1ms"

[[route]]
prefix = "/fuzz."
authority = "fuzz.example"
cluster = "pair"

[[route]]
prefix = "/silent."
cluster = "silent"

# The catch-all for the authority the seeds use; calls for other authorities that match no
# route above get UNIMPLEMENTED.
[[route]]
none = true
authority = "fuzz.example"
cluster = "refused"

[[cluster]]
name = "refused"
endpoints = ["127.0.0.1:1"]

[[cluster]]
name = "pair"
endpoints = ["127.0.0.1:1", "[::1]:1"]
connect_timeout = "1ms"

[[cluster]]
name = "silent"
endpoints = ["127.0.0.1:SILENT_PORT"]
connect_timeout = "2ms"
max_connections_per_endpoint = 2
)toml";

constexpr std::string_view client_preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Bytes per write; 0 means everything at once.
constexpr size_t chunk_sizes[4] = {0, 1, 9, 100};

// Loop turns while the client talks, and after it half-closes.
constexpr int max_client_turns = 4000;
constexpr int linger_turns = 20;
constexpr uint64_t linger_ms = 3;
constexpr int max_shutdown_turns = 1000;

std::shared_ptr<const grelay::Config> fuzz_config;
// The same with web = true on the listener.
std::shared_ptr<const grelay::Config> fuzz_web_config;
// The silent backend: the kernel completes connects to it, nobody reads or answers.
int silent_fd = -1;
// GRELAY_FUZZ_DUMP=FILE: what the relay answered to the last input run is left in FILE.
const char* dump_path = nullptr;
FILE* dump_file = nullptr;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_downstream: %s\n", what);
  std::abort();
}

// Opens the silent backend's listening socket and returns its port.
uint16_t open_silent_backend() {
  silent_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (silent_fd < 0 || ::bind(silent_fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(silent_fd, 64) != 0 ||
      ::getsockname(silent_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    fail("cannot listen for the silent backend");
  }
  return ntohs(addr.sin_port);
}

// Drops the connections the relay made to the silent backend, so none pile up in the kernel.
void drain_silent_backend() {
  for (;;) {
    int fd = ::accept4(silent_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    ::close(fd);
  }
}

void print_handle(uv_handle_t* handle, void*) {
  std::fprintf(stderr, "  open handle: %s%s\n", uv_handle_type_name(uv_handle_get_type(handle)),
               uv_is_closing(handle) ? " (closing)" : "");
}

// The client end of the socketpair: sends the input and drains the relay's answers.
class Client {
 public:
  Client(int fd, std::string_view preface, std::string_view body, size_t chunk)
      : fd_(fd), preface_(preface), body_(body), chunk_(chunk) {}
  ~Client() { ::close(fd_); }

  bool done_writing() const { return preface_.empty() && body_.empty(); }
  bool relay_closed() const { return relay_closed_; }

  void write_some() {
    std::string_view& next = preface_.empty() ? body_ : preface_;
    if (next.empty()) return;
    size_t n = chunk_ == 0 ? next.size() : std::min(chunk_, next.size());
    ssize_t written = ::send(fd_, next.data(), n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (written > 0) {
      next.remove_prefix(static_cast<size_t>(written));
    } else if (written < 0 && errno != EAGAIN && errno != EINTR) {
      // The relay has closed: nothing more can be sent.
      preface_ = {};
      body_ = {};
    }
  }

  void half_close() {
    if (!half_closed_) ::shutdown(fd_, SHUT_WR);
    half_closed_ = true;
  }

  void wait_readable(int timeout_us) {
    pollfd pfd{fd_, POLLIN, 0};
    timespec timeout{0, timeout_us * 1000L};
    ::ppoll(&pfd, 1, &timeout, nullptr);
  }

  void read_all() {
    char buffer[65536];
    for (;;) {
      ssize_t n = ::recv(fd_, buffer, sizeof(buffer), MSG_DONTWAIT);
      if (n > 0) {
        if (dump_file) std::fwrite(buffer, 1, static_cast<size_t>(n), dump_file);
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) relay_closed_ = true;
      return;
    }
  }

 private:
  int fd_;
  std::string_view preface_;
  std::string_view body_;
  size_t chunk_;
  bool half_closed_ = false;
  bool relay_closed_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // As the grelay binary does: a write to a closed socket is an error, not a signal.
  std::signal(SIGPIPE, SIG_IGN);
  // Backend connect failures are logged at warn on every input; keep the output readable.
  // GRELAY_FUZZ_LOG=debug logs everything (and so fuzzes the log formatting too).
  const char* level = std::getenv("GRELAY_FUZZ_LOG");
  grelay::set_log_level(level && std::string_view(level) == "debug" ? grelay::LogLevel::debug
                                                                    : grelay::LogLevel::error);
  dump_path = std::getenv("GRELAY_FUZZ_DUMP");
  std::string text(fuzz_config_text);
  constexpr std::string_view placeholder = "SILENT_PORT";
  text.replace(text.find(placeholder), placeholder.size(), std::to_string(open_silent_backend()));
  fuzz_config = grelay::parse_config(text, "fuzz_downstream.toml");
  constexpr std::string_view listener = "max_concurrent_streams = 100\n";
  text.replace(text.find(listener), listener.size(),
               std::string(listener) +
                   "web = true\nmax_web_unary_body = 4096\n"
                   "cors = { allow_origins = [\"http://page.example\", \"https://*.example\"], "
                   "allow_headers = [\"x-fuzz\"] }\n");
  fuzz_web_config = grelay::parse_config(text, "fuzz_downstream_web.toml");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  const unsigned door = flags & 0x07;
  const bool send_preface = door != 7 && door != 5;
  const bool web = door == 6 || door == 5;
  const bool linger = (flags & 0x08) != 0;
  const bool linger_long = (flags & 0x80) != 0;
  const size_t chunk = chunk_sizes[(flags >> 4) & 0x03];
  const bool graceful = (flags & 0x40) != 0;

  if (dump_path) dump_file = std::fopen(dump_path, "wb");
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) fail("socketpair");

  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) fail("uv_loop_init");
  {
    grelay::Relay relay(&loop, web ? fuzz_web_config : fuzz_config);
    Client client(fds[1], send_preface ? client_preface : std::string_view(), body, chunk);
    // The relay owns fds[0] from here, whether serve() succeeds or not.
    relay.serve(fds[0]);

    bool done = false;
    auto on_done = [&done] { done = true; };
    bool draining = false;
    // Turns and loop time since the last byte was written.
    int quiet_turns = 0;
    std::optional<uint64_t> quiet_since;
    for (int turn = 0; turn < max_client_turns && !client.relay_closed(); ++turn) {
      client.write_some();
      if (client.done_writing()) {
        uv_update_time(&loop);
        if (!quiet_since) quiet_since = uv_now(&loop);
        bool waited = linger_long ? uv_now(&loop) - *quiet_since >= linger_ms
                                  : !linger || ++quiet_turns > linger_turns;
        if (waited) client.half_close();
      }
      uv_run(&loop, UV_RUN_NOWAIT);
      // Waiting for the relay's answer (at most 100 us) keeps long lingers from spinning.
      if (linger_long && client.done_writing()) client.wait_readable(100);
      client.read_all();
      // The relay has read every byte by now: streams are open when GOAWAY goes out.
      if (graceful && !draining && client.done_writing()) {
        relay.shutdown(true, on_done);
        draining = true;
      }
    }

    // Whatever a graceful shutdown left open closes now.
    if (!done) relay.shutdown(false, on_done);
    for (int turn = 0; turn < max_shutdown_turns && !done; ++turn) {
      uv_run(&loop, UV_RUN_NOWAIT);
      client.read_all();
    }
    if (!done) fail("Relay::shutdown(false) did not finish");
  }
  drain_silent_backend();
  // Whatever the relay closed must be gone now; one more turn runs pending close callbacks.
  uv_run(&loop, UV_RUN_NOWAIT);
  if (uv_loop_close(&loop) != 0) {
    uv_walk(&loop, print_handle, nullptr);
    fail("handles left open on the loop after shutdown");
  }
  if (dump_file) std::fclose(dump_file);
  dump_file = nullptr;
  return 0;
}
