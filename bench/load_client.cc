// load_client: the h2c gRPC load shapes h2load cannot express, for bench/bench.py.
//
//   load_client pingpong --port N [--size B] [--count N] [--warmup N]
//   load_client hold     --port N [--connections C] [--streams S] [--size B]
//   load_client bidi     --port N [--connections C] [--streams S] [--size B]
//                        [--inflight K] [--seconds T]
//
// pingpong: one connection, one bidi stream; send one message, wait for its echo, repeat.
//           Prints round-trip percentiles.
// hold:     opens C connections and S streams on each (HEADERS plus one message, never
//           ended), waits until every stream's message came back, prints a line and holds
//           everything open until SIGINT/SIGTERM. With S = 0 the connections only exchange
//           SETTINGS.
// bidi:     C x S long-lived bidi streams, each keeping K messages in flight; prints the
//           echoed bytes per second.
//
// Results go to stdout as one JSON object per line; progress and errors to stderr. Every
// message is gRPC-framed (5-byte prefix + B payload bytes) and the server must echo it. The
// final line of each mode also counts the DATA frames (and payload bytes) received and sent.

#include <arpa/inet.h>
#include <sys/resource.h>

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include <algorithm>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "load_connection.h"

namespace grelay::bench {
namespace {

struct Options {
  std::string mode;
  std::string address = "127.0.0.1";
  int port = 0;
  int connections = 1;
  int streams = 1;
  int size = 100;
  int count = 10000;
  int warmup = 1000;
  int inflight = 16;
  int seconds = 10;
  int timeout = 120;  // Seconds before an unfinished start-up gives up.
  int connect_batch = 64;
  std::string path;
};

[[noreturn]] void usage(const char* error) {
  if (error != nullptr) std::fprintf(stderr, "load_client: %s\n", error);
  std::fprintf(error != nullptr ? stderr : stdout,
               "usage: load_client pingpong|hold|bidi --port N [options]\n"
               "  --address IP       server address (default 127.0.0.1)\n"
               "  --connections C    connections (hold, bidi; default 1)\n"
               "  --streams S        streams per connection (hold, bidi; default 1)\n"
               "  --size B           message payload bytes (default 100)\n"
               "  --count N          measured round trips (pingpong; default 10000)\n"
               "  --warmup N         unmeasured round trips first (pingpong; default 1000)\n"
               "  --inflight K       messages in flight per stream (bidi; default 16)\n"
               "  --seconds T        measured seconds (bidi; default 10)\n"
               "  --timeout T        seconds allowed to set everything up (default 120)\n"
               "  --connect-batch N  connects in progress at once (default 64)\n"
               "  --path P           :path (default /bench.Echo/Stream)\n");
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
  if (argc < 2) usage("missing mode");
  Options options;
  options.mode = argv[1];
  if (options.mode == "-h" || options.mode == "--help") usage(nullptr);
  if (options.mode != "pingpong" && options.mode != "hold" && options.mode != "bidi") {
    usage(("unknown mode " + options.mode).c_str());
  }
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") usage(nullptr);
    if (i + 1 >= argc) usage(("missing value for " + arg).c_str());
    std::string value = argv[++i];
    if (arg == "--address") {
      options.address = value;
    } else if (arg == "--port") {
      options.port = parse_int(value, 1, 65535, "port");
    } else if (arg == "--connections") {
      options.connections = parse_int(value, 1, 100000, "connections");
    } else if (arg == "--streams") {
      options.streams = parse_int(value, 0, 100000, "streams");
    } else if (arg == "--size") {
      options.size = parse_int(value, 0, 1 << 28, "size");
    } else if (arg == "--count") {
      options.count = parse_int(value, 1, 1 << 28, "count");
    } else if (arg == "--warmup") {
      options.warmup = parse_int(value, 0, 1 << 28, "warmup");
    } else if (arg == "--inflight") {
      options.inflight = parse_int(value, 1, 1 << 20, "inflight");
    } else if (arg == "--seconds") {
      options.seconds = parse_int(value, 1, 86400, "seconds");
    } else if (arg == "--timeout") {
      options.timeout = parse_int(value, 1, 86400, "timeout");
    } else if (arg == "--connect-batch") {
      options.connect_batch = parse_int(value, 1, 100000, "connect-batch");
    } else if (arg == "--path") {
      options.path = value;
    } else {
      usage(("unknown option " + arg).c_str());
    }
  }
  if (options.port == 0) usage("--port is required");
  if (options.path.empty()) options.path = "/bench.Echo/Stream";
  return options;
}

std::vector<uint8_t> framed_message(int size) {
  std::vector<uint8_t> message(5 + static_cast<size_t>(size));
  uint32_t length = htonl(static_cast<uint32_t>(size));
  std::memcpy(message.data() + 1, &length, 4);
  for (size_t i = 0; i < static_cast<size_t>(size); ++i)
    message[5 + i] = i % 251;
  return message;
}

// |text| as the inside of a JSON string.
std::string json_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  }
  return out;
}

// The DATA frame counters as JSON members (with a leading comma), for the final line of
// every mode: frames and payload bytes received from the server and sent to it, over the
// whole run (set-up and warm-up included).
std::string data_counts_json() {
  const DataFrameCounts& c = LoadConnection::data_counts();
  char text[200];
  std::snprintf(text, sizeof(text),
                ",\"data_frames_in\":%" PRIu64 ",\"data_bytes_in\":%" PRIu64
                ",\"data_frames_out\":%" PRIu64 ",\"data_bytes_out\":%" PRIu64,
                c.frames_in, c.bytes_in, c.frames_out, c.bytes_out);
  return text;
}

double seconds_since(uint64_t start_ns) {
  return static_cast<double>(uv_hrtime() - start_ns) / 1e9;
}

// What every mode shares: the loop, the connections, paced connects, a deadline timer,
// SIGINT/SIGTERM, and an orderly end that closes every handle so the loop returns.
class LoadRun : public LoadEvents {
 public:
  explicit LoadRun(const Options& options)
      : options_(options), message_(framed_message(options.size)) {}
  virtual ~LoadRun() = default;

  // Runs the loop until finish(); returns the exit code.
  int run() {
    if (uv_ip4_addr(options_.address.c_str(), options_.port, &address_) != 0) {
      std::fprintf(stderr, "load_client: bad address %s\n", options_.address.c_str());
      return 2;
    }
    settings_.authority = options_.address + ":" + std::to_string(options_.port);
    settings_.idle = options_.mode == "hold" && options_.streams == 0;
    uv_loop_init(&loop_);
    uv_timer_init(&loop_, &timer_);
    timer_.data = this;
    uv_timer_start(&timer_, on_timeout_cb, static_cast<uint64_t>(options_.timeout) * 1000, 0);
    for (uv_signal_t* handle : {&sigint_, &sigterm_}) {
      uv_signal_init(&loop_, handle);
      handle->data = this;
    }
    uv_signal_start(&sigint_, on_signal_cb, SIGINT);
    uv_signal_start(&sigterm_, on_signal_cb, SIGTERM);
    connections_.assign(static_cast<size_t>(connection_count()), nullptr);
    start_ns_ = uv_hrtime();
    connect_more();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    return exit_code_;
  }

 protected:
  virtual int connection_count() const { return options_.connections; }
  virtual void on_timeout() { fail("timed out before the load was set up"); }
  virtual void on_signal() { finish(1); }

  // Ends the run: every connection and handle is closed, then run() returns |exit_code|.
  void finish(int exit_code) {
    if (finishing_) return;
    finishing_ = true;
    exit_code_ = exit_code;
    for (LoadConnection* connection : connections_) {
      if (connection != nullptr) connection->close("finished");
    }
    for (uv_handle_t* handle :
         {reinterpret_cast<uv_handle_t*>(&timer_), reinterpret_cast<uv_handle_t*>(&sigint_),
          reinterpret_cast<uv_handle_t*>(&sigterm_)}) {
      uv_close(handle, nullptr);
    }
  }

  void fail(const std::string& why) {
    if (finishing_) return;
    std::fprintf(stderr, "load_client %s: %s\n", options_.mode.c_str(), why.c_str());
    std::printf("{\"mode\":\"%s\",\"error\":\"%s\"}\n", options_.mode.c_str(),
                json_escape(why).c_str());
    std::fflush(stdout);
    finish(1);
  }

  // Keeps up to --connect-batch connects in progress until every connection is started.
  void connect_more() {
    while (!finishing_ && started_ < connections_.size() &&
           started_ - settled_ < static_cast<size_t>(options_.connect_batch)) {
      LoadConnection* connection = LoadConnection::connect(&loop_, address_, settings_, *this);
      if (connection == nullptr) {
        fail("cannot create a connection");
        return;
      }
      connection->set_tag(started_);
      connections_[started_++] = connection;
    }
  }

  // Called by modes when a connection is ready or lost, for connect pacing.
  void settled() {
    ++settled_;
    connect_more();
  }

  void on_closed(LoadConnection& connection, std::string_view why) noexcept override {
    connections_[connection.tag()] = nullptr;
    if (finishing_) return;
    on_lost(connection, why);
  }
  virtual void on_lost(LoadConnection& connection, std::string_view why) = 0;

  void send_message(LoadConnection& connection, int32_t stream_id) {
    if (!connection.send(stream_id, message_.data(), message_.size(), false)) {
      fail("cannot queue a message");
    }
  }

  const Options& options_;
  const std::vector<uint8_t> message_;
  uv_loop_t loop_{};
  uv_timer_t timer_{};  // The set-up deadline; modes may reuse it once set up.
  std::vector<LoadConnection*> connections_;
  uint64_t start_ns_ = 0;
  bool finishing_ = false;

 private:
  static void on_timeout_cb(uv_timer_t* timer) { static_cast<LoadRun*>(timer->data)->on_timeout(); }
  static void on_signal_cb(uv_signal_t* handle, int) {
    static_cast<LoadRun*>(handle->data)->on_signal();
  }

  uv_signal_t sigint_{};
  uv_signal_t sigterm_{};
  sockaddr_in address_{};
  LoadSettings settings_;
  size_t started_ = 0;
  size_t settled_ = 0;
  int exit_code_ = 0;
};

// One connection, one stream: a message goes out only when the previous one came back.
class PingPong final : public LoadRun {
 public:
  using LoadRun::LoadRun;

 private:
  int connection_count() const override { return 1; }

  void on_ready(LoadConnection& connection) noexcept override {
    settled();
    stream_id_ = connection.open_stream(options_.path);
    if (stream_id_ < 0) {
      fail("cannot open the stream");
      return;
    }
    samples_.reserve(static_cast<size_t>(options_.count));
    send_next(connection);
  }

  void send_next(LoadConnection& connection) {
    expected_ += message_.size();
    sent_ns_ = uv_hrtime();
    if (done_ == options_.warmup) measure_start_ns_ = sent_ns_;
    send_message(connection, stream_id_);
  }

  void on_stream_data(LoadConnection& connection, int32_t stream_id,
                      size_t length) noexcept override {
    if (stream_id != stream_id_ || ending_) return;
    received_ += length;
    if (received_ < expected_) return;
    uint64_t now = uv_hrtime();
    if (done_ >= options_.warmup) samples_.push_back(now - sent_ns_);
    ++done_;
    if (done_ < options_.warmup + options_.count) {
      send_next(connection);
      return;
    }
    elapsed_ = static_cast<double>(now - measure_start_ns_) / 1e9;
    ending_ = true;
    if (!connection.send(stream_id_, nullptr, 0, true)) finish_with_report();
  }

  void on_stream_close(LoadConnection&, int32_t stream_id, bool ok) noexcept override {
    if (stream_id != stream_id_) return;
    if (!ending_) {
      fail("the stream closed after " + std::to_string(done_) + " round trips");
      return;
    }
    if (!ok) std::fprintf(stderr, "load_client pingpong: the call did not end with status 0\n");
    finish_with_report();
  }

  void on_lost(LoadConnection&, std::string_view why) override {
    if (ending_) {
      finish_with_report();
    } else {
      fail("connection lost: " + std::string(why));
    }
  }

  void on_timeout() override { fail("timed out after " + std::to_string(done_) + " round trips"); }

  double percentile_us(double fraction) const {
    size_t index = std::min(samples_.size() - 1,
                            static_cast<size_t>(fraction * static_cast<double>(samples_.size())));
    return static_cast<double>(samples_[index]) / 1e3;
  }

  void finish_with_report() {
    if (finishing_) return;
    std::sort(samples_.begin(), samples_.end());
    double sum = 0;
    for (uint64_t s : samples_)
      sum += static_cast<double>(s);
    std::printf(
        "{\"mode\":\"pingpong\",\"count\":%zu,\"message_bytes\":%zu,\"elapsed_s\":%.6f,"
        "\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"mean_us\":%.2f,\"max_us\":%.2f%s}\n",
        samples_.size(), message_.size(), elapsed_, percentile_us(0.5), percentile_us(0.99),
        percentile_us(0.999), sum / static_cast<double>(samples_.size()) / 1e3,
        static_cast<double>(samples_.back()) / 1e3, data_counts_json().c_str());
    std::fflush(stdout);
    finish(0);
  }

  int32_t stream_id_ = -1;
  uint64_t expected_ = 0;
  uint64_t received_ = 0;
  uint64_t sent_ns_ = 0;
  uint64_t measure_start_ns_ = 0;
  double elapsed_ = 0;
  int done_ = 0;
  bool ending_ = false;
  std::vector<uint64_t> samples_;
};

// Many connections and streams, opened and then held idle for a memory measurement.
class Hold final : public LoadRun {
 public:
  using LoadRun::LoadRun;

 private:
  static uint64_t key(const LoadConnection& connection, int32_t stream_id) {
    return (static_cast<uint64_t>(connection.tag()) << 32) | static_cast<uint32_t>(stream_id);
  }

  size_t wanted_streams() const {
    return static_cast<size_t>(options_.connections) * static_cast<size_t>(options_.streams);
  }

  void on_ready(LoadConnection& connection) noexcept override {
    ++ready_connections_;
    for (int i = 0; i < options_.streams; ++i) {
      int32_t id = connection.open_stream(options_.path);
      if (id < 0) {
        fail(std::string("cannot open a stream: ") + nghttp2_strerror(id));
        return;
      }
      received_[key(connection, id)] = 0;
      send_message(connection, id);
    }
    settled();
    check_complete();
  }

  void on_stream_data(LoadConnection& connection, int32_t stream_id,
                      size_t length) noexcept override {
    auto it = received_.find(key(connection, stream_id));
    if (it == received_.end()) return;
    size_t before = it->second;
    it->second += length;
    if (before < message_.size() && it->second >= message_.size()) {
      ++open_streams_;
      check_complete();
    }
  }

  void on_stream_close(LoadConnection& connection, int32_t stream_id, bool) noexcept override {
    received_.erase(key(connection, stream_id));
    if (holding_) {
      ++lost_streams_;
    } else {
      fail("a stream closed before every stream was open (" + std::to_string(open_streams_) +
           " of " + std::to_string(wanted_streams()) + " open)");
    }
  }

  void on_lost(LoadConnection&, std::string_view why) override {
    if (holding_) {
      ++lost_connections_;
      return;
    }
    fail("a connection closed before the load was set up (" + std::to_string(ready_connections_) +
         " connections ready): " + std::string(why));
  }

  void check_complete() {
    if (holding_ || ready_connections_ < static_cast<size_t>(options_.connections) ||
        open_streams_ < wanted_streams()) {
      return;
    }
    holding_ = true;
    uv_timer_stop(&timer_);
    std::printf("{\"mode\":\"hold\",\"connections\":%zu,\"streams\":%zu,\"setup_s\":%.3f}\n",
                ready_connections_, open_streams_, seconds_since(start_ns_));
    std::fflush(stdout);
    std::fprintf(stderr, "load_client hold: %zu connections, %zu streams open; holding\n",
                 ready_connections_, open_streams_);
  }

  void on_signal() override {
    if (!holding_) {
      fail("stopped before the load was set up");
      return;
    }
    std::printf(
        "{\"mode\":\"hold\",\"released\":true,\"lost_streams\":%zu,"
        "\"lost_connections\":%zu%s}\n",
        lost_streams_, lost_connections_, data_counts_json().c_str());
    std::fflush(stdout);
    finish(0);
  }

  std::unordered_map<uint64_t, size_t> received_;  // Echoed bytes per open stream.
  size_t ready_connections_ = 0;
  size_t open_streams_ = 0;
  size_t lost_streams_ = 0;
  size_t lost_connections_ = 0;
  bool holding_ = false;
};

// Long-lived bidi streams, each keeping --inflight messages on the wire.
class Bidi final : public LoadRun {
 public:
  using LoadRun::LoadRun;

 private:
  struct StreamState {
    uint64_t received = 0;
    uint64_t next_boundary = 0;
  };

  static uint64_t key(const LoadConnection& connection, int32_t stream_id) {
    return (static_cast<uint64_t>(connection.tag()) << 32) | static_cast<uint32_t>(stream_id);
  }

  void on_ready(LoadConnection& connection) noexcept override {
    for (int i = 0; i < options_.streams; ++i) {
      int32_t id = connection.open_stream(options_.path);
      if (id < 0) {
        fail(std::string("cannot open a stream: ") + nghttp2_strerror(id));
        return;
      }
      streams_[key(connection, id)].next_boundary = message_.size();
      for (int k = 0; k < options_.inflight; ++k)
        send_message(connection, id);
    }
    settled();
    if (++ready_connections_ < static_cast<size_t>(options_.connections)) return;
    // Everything is open: the measured interval starts now.
    measure_start_ns_ = uv_hrtime();
    uv_timer_stop(&timer_);
    uv_timer_start(&timer_, on_done_cb, static_cast<uint64_t>(options_.seconds) * 1000, 0);
  }

  void on_stream_data(LoadConnection& connection, int32_t stream_id,
                      size_t length) noexcept override {
    auto it = streams_.find(key(connection, stream_id));
    if (it == streams_.end()) return;
    StreamState& stream = it->second;
    stream.received += length;
    if (measure_start_ns_ != 0) bytes_ += length;
    while (stream.received >= stream.next_boundary) {
      stream.next_boundary += message_.size();
      if (measure_start_ns_ != 0) ++messages_;
      send_message(connection, stream_id);
    }
  }

  void on_stream_close(LoadConnection&, int32_t, bool) noexcept override {
    fail("a bidi stream closed during the run");
  }

  void on_lost(LoadConnection&, std::string_view why) override {
    fail("connection lost: " + std::string(why));
  }

  static void on_done_cb(uv_timer_t* timer) {
    static_cast<Bidi*>(static_cast<LoadRun*>(timer->data))->on_done();
  }

  void on_done() {
    double elapsed = seconds_since(measure_start_ns_);
    std::printf(
        "{\"mode\":\"bidi\",\"connections\":%d,\"streams\":%zu,\"message_bytes\":%zu,"
        "\"elapsed_s\":%.6f,\"messages\":%" PRIu64 ",\"bytes\":%" PRIu64 "%s}\n",
        options_.connections, streams_.size(), message_.size(), elapsed, messages_, bytes_,
        data_counts_json().c_str());
    std::fflush(stdout);
    finish(0);
  }

  std::unordered_map<uint64_t, StreamState> streams_;
  size_t ready_connections_ = 0;
  uint64_t measure_start_ns_ = 0;
  uint64_t messages_ = 0;
  uint64_t bytes_ = 0;
};

// Many held connections need many descriptors: take the hard limit.
void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace
}  // namespace grelay::bench

int main(int argc, char** argv) {
  using namespace grelay::bench;
  Options options = parse_options(argc, argv);
  raise_fd_limit();
  signal(SIGPIPE, SIG_IGN);
  if (options.mode == "pingpong") return PingPong(options).run();
  if (options.mode == "hold") return Hold(options).run();
  return Bidi(options).run();
}
