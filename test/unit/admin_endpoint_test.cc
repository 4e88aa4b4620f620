#include "grelay/admin_endpoint.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "grelay/relay_group.h"

namespace {

// Sends |request| to |address| ("ip:port") from another thread while |loop| runs; returns
// everything the endpoint answered before it closed the connection.
std::string exchange(uv_loop_t& loop, const std::string& address, const std::string& request) {
  const size_t colon = address.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  REQUIRE(inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) == 1);
  std::atomic<bool> done{false};
  std::string answer;
  std::thread client([&] {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
      char buf[16384];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;)
        answer.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    done = true;
  });
  while (!done.load()) {
    uv_run(&loop, UV_RUN_NOWAIT);
    ::usleep(1000);
  }
  client.join();
  return answer;
}

std::shared_ptr<const grelay::Config> config() {
  return grelay::parse_config(R"(
[admin]
address = "127.0.0.1:0"
[[listener]]
address = "127.0.0.1:0"
)",
                              "admin.toml");
}

}  // namespace

TEST_CASE("AdminEndpoint serves its group's metrics and config, and its host's reload") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    auto group = std::make_shared<grelay::RelayGroup>(config());
    group->count_drain();
    grelay::AdminEndpoint admin(&loop, group, *group->config()->admin);
    const std::string address = admin.start();

    const std::string metrics = exchange(loop, address, "GET /metrics HTTP/1.1\r\n\r\n");
    CHECK(metrics.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(metrics.find("\r\n\r\n# HELP grelay_build_info ") != std::string::npos);
    CHECK(metrics.find("\ngrelay_drains_total 1\n") != std::string::npos);
    CHECK(exchange(loop, address, "GET /config HTTP/1.1\r\n\r\n").find("\"127.0.0.1:0\"") !=
          std::string::npos);
    CHECK(exchange(loop, address, "POST /reload HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405", 0) == 0);

    int reloads = 0;
    admin.set_reload_handler([&reloads] {
      ++reloads;
      return grelay::AdminEndpoint::Answer{200, "reloaded\n"};
    });
    CHECK(exchange(loop, address, "POST /reload HTTP/1.1\r\n\r\n").find("\r\n\r\nreloaded\n") !=
          std::string::npos);
    CHECK(reloads == 1);
    // What the host's handler throws becomes a 500, never an exception in the loop.
    admin.set_reload_handler(
        []() -> grelay::AdminEndpoint::Answer { throw std::runtime_error("disk on fire"); });
    const std::string failed = exchange(loop, address, "POST /reload HTTP/1.1\r\n\r\n");
    CHECK(failed.rfind("HTTP/1.1 500", 0) == 0);
    CHECK(failed.find("\r\n\r\ndisk on fire\n") != std::string::npos);

    admin.set_draining();
    CHECK(exchange(loop, address, "GET /ready HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 503", 0) == 0);
    admin.close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  CHECK(uv_loop_close(&loop) == 0);
}
