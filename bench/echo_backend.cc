// echo_backend: an h2c server that answers every call as a gRPC echo. It is the demo
// backend of the README quick start and the backend of bench/bench.py.
//
//   echo_backend [--address IP] [--port N] [--threads N]
//
// Prints `listening on ADDRESS:PORT` on stdout once every socket listens; SIGINT or
// SIGTERM closes all connections and exits 0. SIGUSR1 prints `streams N resets M
// data_frames_in F data_bytes_in B data_frames_out F data_bytes_out B`: the requests begun,
// the RST_STREAM frames received, and the DATA frames (and payload bytes) received and sent
// so far, over all threads.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pthread.h>
#include <signal.h>

#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "echo_worker.h"
#include "unique_fd.h"

namespace grelay::bench {
namespace {

struct Options {
  std::string address = "127.0.0.1";
  int port = 50051;
  int threads = 1;
};

[[noreturn]] void usage(const char* error) {
  if (error != nullptr) std::fprintf(stderr, "echo_backend: %s\n", error);
  std::fprintf(error != nullptr ? stderr : stdout,
               "usage: echo_backend [--address IP] [--port N] [--threads N]\n"
               "  --address IP   address to listen on (default 127.0.0.1; IPv6 allowed)\n"
               "  --port N       port, 0 lets the OS pick (default 50051)\n"
               "  --threads N    event loops, each with its own SO_REUSEPORT socket (default 1)\n");
  std::exit(error != nullptr ? 2 : 0);
}

int parse_int(std::string_view text, int low, int high, const char* what) {
  char* end = nullptr;
  std::string copy(text);
  long value = std::strtol(copy.c_str(), &end, 10);
  if (copy.empty() || *end != '\0' || value < low || value > high) {
    usage((std::string("bad ") + what + ": '" + copy + "'").c_str());
  }
  return static_cast<int>(value);
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    if (arg == "-h" || arg == "--help") usage(nullptr);
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (arg != "--address" && arg != "--port" && arg != "--threads") {
      usage((std::string("unknown option ") + argv[i]).c_str());
    } else {
      if (i + 1 >= argc) usage((std::string("missing value for ") + argv[i]).c_str());
      value = argv[++i];
    }
    if (arg == "--address") {
      options.address = value;
    } else if (arg == "--port") {
      options.port = parse_int(value, 0, 65535, "port");
    } else if (arg == "--threads") {
      options.threads = parse_int(value, 1, 256, "thread count");
    } else {
      usage((std::string("unknown option ") + std::string(arg)).c_str());
    }
  }
  return options;
}

sockaddr_storage parse_address(const std::string& address, int port) {
  sockaddr_storage storage{};
  if (uv_ip4_addr(address.c_str(), port, reinterpret_cast<sockaddr_in*>(&storage)) != 0 &&
      uv_ip6_addr(address.c_str(), port, reinterpret_cast<sockaddr_in6*>(&storage)) != 0) {
    throw std::runtime_error("not an IP address: " + address);
  }
  return storage;
}

socklen_t address_length(const sockaddr_storage& address) {
  return address.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

int port_of(const sockaddr_storage& address) {
  return address.ss_family == AF_INET6
             ? ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port)
             : ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
}

void set_port(sockaddr_storage& address, int port) {
  if (address.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6&>(address).sin6_port = htons(static_cast<uint16_t>(port));
  } else {
    reinterpret_cast<sockaddr_in&>(address).sin_port = htons(static_cast<uint16_t>(port));
  }
}

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

// Binds one listening socket per thread to the same address with SO_REUSEPORT, so the
// kernel spreads connections over the loops. With port 0 the first socket picks the port.
std::vector<UniqueFd> open_listeners(sockaddr_storage& address, int count) {
  std::vector<UniqueFd> sockets;
  for (int i = 0; i < count; ++i) {
    UniqueFd fd(::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) throw_errno("socket");
    int on = 1;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) {
      throw_errno("setsockopt");
    }
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), address_length(address)) != 0) {
      throw_errno("bind");
    }
    if (::listen(fd.get(), SOMAXCONN) != 0) throw_errno("listen");
    if (i == 0) {
      sockaddr_storage bound{};
      socklen_t length = sizeof(bound);
      if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
        throw_errno("getsockname");
      }
      set_port(address, port_of(bound));
    }
    sockets.push_back(std::move(fd));
  }
  return sockets;
}

std::string format_address(const std::string& host, const sockaddr_storage& address) {
  std::string port = std::to_string(port_of(address));
  return address.ss_family == AF_INET6 ? "[" + host + "]:" + port : host + ":" + port;
}

int run(int argc, char** argv) {
  Options options = parse_options(argc, argv);
  // A peer that resets mid-write must cost an EPIPE, not the process.
  std::signal(SIGPIPE, SIG_IGN);
  // Blocked from the start and inherited by the workers, so a stop signal is taken only
  // by sigwait() below, even one that arrives during start-up.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigset_t blocked = stop_signals;
  sigaddset(&blocked, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);

  sockaddr_storage address = parse_address(options.address, options.port);
  std::vector<UniqueFd> sockets = open_listeners(address, options.threads);
  std::vector<std::unique_ptr<EchoWorker>> workers;
  for (UniqueFd& fd : sockets) {
    workers.push_back(std::make_unique<EchoWorker>(fd));
  }

  std::vector<std::thread> threads;
  for (auto& worker : workers) {
    threads.emplace_back([&worker] { worker->run(); });
  }

  std::printf("listening on %s\n", format_address(options.address, address).c_str());
  std::fflush(stdout);

  // SIGUSR1 prints the counters (bench.py's underattack workload and counting pass read
  // them).
  sigset_t wait_signals = stop_signals;
  sigaddset(&wait_signals, SIGUSR1);
  for (;;) {
    int signal_number = 0;
    sigwait(&wait_signals, &signal_number);
    if (signal_number != SIGUSR1) break;
    uint64_t streams = 0;
    uint64_t resets = 0;
    EchoWorker::DataCounts data;
    for (const auto& worker : workers) {
      streams += worker->streams();
      resets += worker->resets();
      EchoWorker::DataCounts counts = worker->data_counts();
      data.frames_in += counts.frames_in;
      data.bytes_in += counts.bytes_in;
      data.frames_out += counts.frames_out;
      data.bytes_out += counts.bytes_out;
    }
    std::printf("streams %" PRIu64 " resets %" PRIu64 " data_frames_in %" PRIu64
                " data_bytes_in %" PRIu64 " data_frames_out %" PRIu64 " data_bytes_out %" PRIu64
                "\n",
                streams, resets, data.frames_in, data.bytes_in, data.frames_out, data.bytes_out);
    std::fflush(stdout);
  }
  for (auto& worker : workers) {
    worker->stop();
  }
  for (auto& thread : threads) {
    thread.join();
  }
  return 0;
}

}  // namespace
}  // namespace grelay::bench

int main(int argc, char** argv) {
  try {
    return grelay::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo_backend: %s\n", e.what());
    return 1;
  }
}
