#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace grelay {

// A `host:port` as written in the config. |host| is an IP literal (IPv6 without brackets)
// or a DNS name.
struct HostPort {
  std::string host;
  uint16_t port = 0;

  // The text as the user wrote it, for messages.
  std::string text;

  bool operator==(const HostPort&) const = default;
};

enum class LogLevel { debug, info, warn, error };

struct AdminConfig {
  HostPort address;
  int line = 0;
};

struct ListenerConfig {
  HostPort address;
  // SETTINGS_MAX_CONCURRENT_STREAMS announced to clients.
  uint32_t max_concurrent_streams = 1000;
  // Most client connections open at once on this listener, over all workers; 0 = no limit.
  uint32_t max_connections = 0;
  // A connection with no open stream for this long gets GOAWAY and is closed.
  std::optional<std::chrono::milliseconds> idle_timeout;
  // A connection older than this gets GOAWAY (so its client reconnects, maybe elsewhere);
  // its open calls may run |max_connection_age_grace| more before being reset.
  std::optional<std::chrono::milliseconds> max_connection_age;
  std::optional<std::chrono::milliseconds> max_connection_age_grace;
  // A stream with no frame either way for this long is reset (UNAVAILABLE); off when unset.
  std::optional<std::chrono::milliseconds> stream_idle_timeout;
  int line = 0;
};

enum class RouteMatch {
  path,     // :path equals |match| exactly ("/pkg.Svc/Method").
  service,  // :path is "/" + |match| + "/" + a method name.
  prefix,   // :path starts with |match|.
  any,      // catch-all.
};

struct RouteConfig {
  RouteMatch kind = RouteMatch::any;
  std::string match;
  // Optional exact :authority match (compared case-insensitively, port included if given).
  std::optional<std::string> authority;
  std::string cluster;
  // Index of |cluster| in Config::clusters, filled by validation.
  size_t cluster_index = 0;
  // Optional cap on the call's deadline.
  std::optional<std::chrono::milliseconds> timeout;
  // Overrides the listener's stream_idle_timeout for this route's calls; 0 turns it off.
  std::optional<std::chrono::milliseconds> stream_idle_timeout;
  int line = 0;
};

enum class LbPolicy { round_robin };

struct ClusterConfig {
  std::string name;
  std::vector<HostPort> endpoints;
  LbPolicy lb = LbPolicy::round_robin;
  // Most backend connections opened to one endpoint. A new one opens when every open one is
  // at the backend's SETTINGS_MAX_CONCURRENT_STREAMS; past the cap, calls queue on the least
  // loaded connection until a stream slot frees.
  uint32_t max_connections_per_endpoint = 8;
  std::chrono::milliseconds connect_timeout{5000};
  int line = 0;

  // Every field compares, |line| too: use same_settings() to ignore where it was written.
  bool operator==(const ClusterConfig&) const = default;
  // True when both would build the same cluster (a reload keeps its backend connections).
  bool same_settings(const ClusterConfig& other) const {
    ClusterConfig a = *this;
    a.line = other.line;
    return a == other;
  }
};

// How the workers share the listening sockets.
enum class AcceptMode {
  reuseport,  // each worker has its own SO_REUSEPORT socket; the kernel hashes connections
  handoff,    // one acceptor on the main thread hands connections out round robin
};

struct Config {
  // Path of the file this was loaded from ("" when built in code).
  std::string path;
  // Worker threads; 0 = one per CPU.
  uint32_t workers = 1;
  AcceptMode accept = AcceptMode::handoff;
  // How long open calls may run after SIGTERM/SIGINT before they are reset.
  std::chrono::milliseconds drain_timeout{30000};
  LogLevel log_level = LogLevel::info;
  std::optional<AdminConfig> admin;
  std::vector<ListenerConfig> listeners;
  std::vector<RouteConfig> routes;
  std::vector<ClusterConfig> clusters;
};

// Thrown by load_config and parse_config. what() is "file:line: message" (line omitted
// when unknown).
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string file, int line, const std::string& message);
  const std::string& file() const noexcept { return file_; }
  int line() const noexcept { return line_; }
  const std::string& message() const noexcept { return message_; }

 private:
  std::string file_;
  int line_;
  std::string message_;
};

// Reads, parses and validates the TOML file at |path|. Throws ConfigError.
std::shared_ptr<const Config> load_config(const std::string& path);

// Parses and validates |text| as if read from |path|. Throws ConfigError.
std::shared_ptr<const Config> parse_config(std::string_view text, const std::string& path);

}  // namespace grelay
