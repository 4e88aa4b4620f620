// A program that embeds grelay as its users do, built as C++17 from outside the source tree:
// against an installed libgrelay (test_install.py, with pkg-config) and with grelay as a
// meson subproject (test_subproject.py, with meson.build here).
//
// Usage: relay_one CONFIG. Parses CONFIG, relays on its own libuv loop, prints "listening on
// ADDRESS" for each listener, and on SIGTERM shuts down gracefully, prints "stopped" and
// exits 0 (1 when something failed).

#include <grelay/config.h>
#include <grelay/relay.h>
#include <grelay/status.h>
#include <grelay/version.h>
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

namespace {

// True when a ConfigError thrown inside the library is caught by its type here, which needs
// its typeinfo exported from libgrelay.so.
bool catches_config_error() {
  try {
    grelay::parse_config("workers = \"many\"\n", "bad.toml");
    std::printf("parse_config accepted a bad config\n");
  } catch (const grelay::ConfigError& e) {
    std::printf("caught grelay::ConfigError at %s:%d\n", e.file().c_str(), e.line());
    return true;
  } catch (const std::exception& e) {
    std::printf("caught '%s', but not as grelay::ConfigError\n", e.what());
  }
  return false;
}

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void on_sigterm(uv_signal_t* signal, int) noexcept {
  auto* relay = static_cast<grelay::Relay*>(signal->data);
  uv_close(reinterpret_cast<uv_handle_t*>(signal), nullptr);
  relay->shutdown(true, [] { std::printf("stopped\n"); });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: relay_one CONFIG\n");
    return 2;
  }
  // libuv writes with write(2): a client that hangs up must not kill the program.
  std::signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("grelay %s; UNAVAILABLE is %s\n", grelay::version_string,
              std::string(grelay::status_name(grelay::StatusCode::unavailable)).c_str());
  if (!catches_config_error()) return 1;

  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) return 1;
  uv_signal_t sigterm;
  try {
    auto relay =
        std::make_unique<grelay::Relay>(&loop, grelay::parse_config(read_file(argv[1]), argv[1]));
    relay->listen();
    for (const std::string& address : relay->addresses())
      std::printf("listening on %s\n", address.c_str());
    uv_signal_init(&loop, &sigterm);
    sigterm.data = relay.get();
    uv_signal_start(&sigterm, on_sigterm, SIGTERM);
    uv_run(&loop, UV_RUN_DEFAULT);
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
  return uv_loop_close(&loop) == 0 ? 0 : 1;
}
