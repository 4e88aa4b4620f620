// grelay: the gRPC relay binary.

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "app/app_paths.h"
#include "app/server.h"
#include "grelay/config.h"
#include "grelay/log.h"
#include "grelay/version.h"

namespace {

// Where `meson install` puts the config: sysconfdir/grelay/grelay.toml.
constexpr const char* default_config = GRELAY_DEFAULT_CONFIG;

void usage(std::FILE* out) {
  std::fprintf(
      out,
      "usage: grelay [-c FILE]            run the relay (default FILE: %s)\n"
      "       grelay --check [-c FILE]    validate FILE; exit 0, or 2 with file:line: message\n"
      "       grelay --version\n"
      "signals: SIGTERM/SIGINT drain and exit (a second one closes at once);\n"
      "         SIGHUP reloads the config (and TLS files) and reopens the access log;\n"
      "         SIGUSR1 reopens the access log\n",
      default_config);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = default_config;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    if (std::strcmp(arg, "-c") == 0 || std::strcmp(arg, "--config") == 0) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "grelay: %s needs a file\n", arg);
        return 2;
      }
      config_path = argv[++i];
    } else if (std::strncmp(arg, "--config=", 9) == 0) {
      config_path = arg + 9;
    } else if (std::strcmp(arg, "--check") == 0) {
      check = true;
    } else if (std::strcmp(arg, "--version") == 0) {
      std::printf("grelay %s\n", grelay::version_string);
      return 0;
    } else if (std::strcmp(arg, "-h") == 0 || std::strcmp(arg, "--help") == 0) {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "grelay: unknown argument '%s'\n", arg);
      usage(stderr);
      return 2;
    }
  }

  std::shared_ptr<const grelay::Config> config;
  try {
    config = grelay::load_config(config_path);
  } catch (const grelay::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  if (check) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }

  // The config's log_level applies from the start: Server makes the RelayGroup first thing.
  try {
    grelay::Server server(config);
    return server.run();
  } catch (const std::exception& e) {
    grelay::log_line(grelay::LogLevel::error, e.what());
    return 1;
  }
}
