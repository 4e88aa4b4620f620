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
};

enum class LogLevel { debug, info, warn, error };

struct AdminConfig {
  HostPort address;
  int line = 0;
};

// A certificate chain and its private key (PEM files), with the server names it serves.
struct TlsCertificate {
  // SNI names this pair answers ("api.example.com", "*.example.com"); empty for the default.
  std::vector<std::string> names;
  std::string cert;
  std::string key;
  int line = 0;
};

enum class ClientCertMode { none, optional, require };

// `tls = { ... }` of a [[listener]]: h2 over TLS, ALPN h2 only.
struct ListenerTlsConfig {
  // The first one is served when no name matches the client's SNI (or it sent none).
  std::vector<TlsCertificate> certificates;
  // CA bundle that client certificates must chain to; empty: none are asked for.
  std::string client_ca;
  ClientCertMode client_verify = ClientCertMode::none;
  int line = 0;
};

struct ListenerConfig {
  HostPort address;
  // SETTINGS_MAX_CONCURRENT_STREAMS announced to clients.
  uint32_t max_concurrent_streams = 1000;
  std::optional<ListenerTlsConfig> tls;
  // A TLS client that has not finished its handshake by then is disconnected.
  std::chrono::milliseconds handshake_timeout{10000};
  int line = 0;
};

enum class RouteMatch {
  path,     // :path equals |match| exactly ("/pkg.Svc/Method").
  service,  // :path is "/" + |match| + "/" + a method name.
  prefix,   // :path starts with |match|.
  any,      // catch-all.
};

struct RouteConfig {
  // Optional label of the route in metrics and the access log; unique when set. When empty
  // the label is what the route matches.
  std::string name;
  RouteMatch kind = RouteMatch::any;
  std::string match;
  // Optional exact :authority match (compared case-insensitively, port included if given).
  std::optional<std::string> authority;
  std::string cluster;
  // Index of |cluster| in Config::clusters, filled by validation.
  size_t cluster_index = 0;
  // Optional cap on the call's deadline.
  std::optional<std::chrono::milliseconds> timeout;
  // Optional: the client's verified certificate must carry a subjectAltName with this value.
  std::optional<std::string> client_san;
  int line = 0;
};

enum class LbPolicy { round_robin };

// `tls = { ... }` of a [[cluster]]: backends are dialled over TLS with ALPN h2.
struct ClusterTlsConfig {
  // CA bundle the backends' chains must lead to; empty: the system's default CAs.
  std::string ca;
  // Client certificate and key presented to the backends (mTLS); both or neither.
  std::string cert;
  std::string key;
  // SNI and the name verified; empty: the endpoint's host (a DNS name or an IP SAN).
  std::string server_name;
  bool verify = true;
  int line = 0;
};

struct ClusterConfig {
  std::string name;
  std::vector<HostPort> endpoints;
  LbPolicy lb = LbPolicy::round_robin;
  // Most backend connections opened to one endpoint. A new one opens when every open one is
  // at the backend's SETTINGS_MAX_CONCURRENT_STREAMS; past the cap, calls queue on the least
  // loaded connection until a stream slot frees.
  uint32_t max_connections_per_endpoint = 8;
  std::chrono::milliseconds connect_timeout{5000};
  std::optional<ClusterTlsConfig> tls;
  int line = 0;
};

struct AccessLogConfig {
  // File the JSON lines are appended to; "-" is standard output.
  std::string path;
  // Fraction of the calls (that pass |only_errors|) logged, 0 to 1.
  double sample_rate = 1.0;
  // Log only calls that did not end with OK.
  bool only_errors = false;
  int line = 0;
};

struct Config {
  // Path of the file this was loaded from ("" when built in code).
  std::string path;
  // Worker threads; 0 = one per CPU.
  uint32_t workers = 1;
  LogLevel log_level = LogLevel::info;
  std::optional<AdminConfig> admin;
  std::vector<ListenerConfig> listeners;
  std::vector<RouteConfig> routes;
  std::vector<ClusterConfig> clusters;
  std::optional<AccessLogConfig> access_log;
  // The TOML text the config was parsed from (for the admin endpoint's /config).
  std::string source;
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
