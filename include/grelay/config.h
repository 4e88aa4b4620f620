#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "grelay/export.h"
#include "grelay/status.h"

namespace grelay {

// A `host:port` as written in the config. |host| is an IP literal (IPv6 without brackets)
// or a DNS name.
struct GRELAY_API HostPort {
  std::string host;
  uint16_t port = 0;

  // The text as the user wrote it, for messages.
  std::string text;

  // The same host and port, however they were written.
  bool same_address(const HostPort& other) const noexcept {
    return host == other.host && port == other.port;
  }
};

enum class LogLevel { debug, info, warn, error };

struct GRELAY_API AdminConfig {
  HostPort address;
  int line = 0;
};

// A certificate chain and its private key (PEM files), with the server names it serves.
struct GRELAY_API TlsCertificate {
  // SNI names this pair answers ("api.example.com", "*.example.com"); empty for the default.
  std::vector<std::string> names;
  std::string cert;
  std::string key;
  int line = 0;
};

enum class ClientCertMode { none, optional, require };

// `tls = { ... }` of a [[listener]]: h2 over TLS, ALPN h2 only.
struct GRELAY_API ListenerTlsConfig {
  // The first one is served when no name matches the client's SNI (or it sent none).
  std::vector<TlsCertificate> certificates;
  // CA bundle that client certificates must chain to; empty: none are asked for.
  std::string client_ca;
  ClientCertMode client_verify = ClientCertMode::none;
  int line = 0;
};

// Cross-origin access for browser calls (`cors = {...}` of a [[listener]] or [[route]]). The
// relay answers preflight OPTIONS requests itself and adds the Access-Control-* fields to the
// responses of web calls from an allowed origin; a browser on another origin gets nothing
// without it.
struct GRELAY_API CorsConfig {
  // "*", an exact origin ("https://app.example.com", a port when not the default), or a
  // wildcard host ("https://*.example.com": any sub-domain, not example.com itself).
  std::vector<std::string> allow_origins;
  // Request fields a page may send beyond those the web protocols use themselves
  // (content-type, x-grpc-web, x-user-agent, grpc-timeout, connect-*), lower case.
  std::vector<std::string> allow_headers;
  // Response fields a page may read beyond grpc-status, grpc-message and
  // grpc-status-details-bin, lower case.
  std::vector<std::string> expose_headers;
  // How long a browser may cache a preflight answer.
  std::chrono::milliseconds max_age{std::chrono::minutes(10)};
  // Access-Control-Allow-Credentials: pages may send cookies and client certificates.
  bool allow_credentials = false;
  int line = 0;
};

struct GRELAY_API ListenerConfig {
  HostPort address;
  // SETTINGS_MAX_CONCURRENT_STREAMS announced to clients.
  uint32_t max_concurrent_streams = 1000;
  std::optional<ListenerTlsConfig> tls;
  // A TLS client that has not finished its handshake by then is disconnected.
  std::chrono::milliseconds handshake_timeout{10000};
  // A client that has not sent its connection preface (and first SETTINGS) this long after
  // connecting (after the TLS handshake, with TLS) gets GOAWAY and is disconnected.
  std::chrono::milliseconds preface_timeout{10000};
  // A request header block not finished this long after it began gets the connection closed
  // with GOAWAY (no other frame can pass while a block is open).
  std::chrono::milliseconds request_headers_timeout{10000};
  // Most client connections open at once on this listener, over all workers; 0 = no limit.
  uint32_t max_connections = 0;
  // A connection with no open stream for this long gets GOAWAY and is closed; unset: never.
  std::optional<std::chrono::milliseconds> idle_timeout{std::chrono::minutes(5)};
  // Most metadata of a request, and of a response's headers or trailers, in RFC 7541 bytes
  // (name + value + 32 per field); over it the call ends with RESOURCE_EXHAUSTED.
  uint32_t max_request_metadata = 64 * 1024;
  uint32_t max_response_metadata = 64 * 1024;
  // A connection older than this gets GOAWAY (so its client reconnects, maybe elsewhere);
  // its open calls may run |max_connection_age_grace| more before being reset.
  std::optional<std::chrono::milliseconds> max_connection_age;
  std::optional<std::chrono::milliseconds> max_connection_age_grace;
  // A stream with no frame either way for this long is reset (UNAVAILABLE); off when unset.
  std::optional<std::chrono::milliseconds> stream_idle_timeout;
  // gRPC-Web (binary and text) and the Connect protocol on this listener besides gRPC, over
  // HTTP/2 and HTTP/1.1 (ALPN http/1.1 with TLS, an HTTP/1.1 request line without).
  bool web = false;
  // Cross-origin access to this listener's web calls, unless their route has its own.
  std::optional<CorsConfig> cors;
  // A Connect unary body is one message without the gRPC length prefix, so the relay holds
  // the whole of it (request without content-length, and every response) to frame it: over
  // this many bytes the call ends with RESOURCE_EXHAUSTED.
  uint32_t max_web_unary_body = 4 * 1024 * 1024;
  int line = 0;
};

enum class RouteMatch {
  path,     // :path equals |match| exactly ("/pkg.Svc/Method").
  service,  // :path is "/" + |match| + "/" + a method name.
  prefix,   // :path starts with |match|.
  any,      // catch-all.
};

// Retries of a route's calls (gRPC A6 semantics).
struct GRELAY_API RetryConfig {
  // Most attempts per call, the first included (2..10).
  uint32_t attempts = 3;
  std::vector<StatusCode> on{StatusCode::unavailable};
  std::chrono::milliseconds backoff{25};
  std::chrono::milliseconds max_backoff{250};
  // Request bytes kept for a replay; a call that sends more is no longer retried.
  size_t buffer = 64 * 1024;
  // Retry budget (a token bucket per cluster, worker and pair of these two values, shared by
  // the routes that give the same pair): failures take a token, other answers give back
  // |budget_ratio|; retries stop while at most half of |budget_tokens| is left.
  uint32_t budget_tokens = 10;
  double budget_ratio = 0.1;
};

struct GRELAY_API RouteConfig {
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
  // Overrides the listener's stream_idle_timeout for this route's calls; 0 turns it off.
  std::optional<std::chrono::milliseconds> stream_idle_timeout;
  // Cross-origin access to this route's web calls, instead of the listener's.
  std::optional<CorsConfig> cors;
  int line = 0;
  // Opt-in retries of failed attempts (`retry = {...}`).
  std::optional<RetryConfig> retry;
};

enum class LbPolicy { round_robin, least_request, random, ring_hash };

// Active health checks with grpc.health.v1.Health/Check (`health_check = {...}`).
struct GRELAY_API HealthCheckConfig {
  std::chrono::milliseconds interval{5000};
  std::chrono::milliseconds timeout{1000};
  // Consecutive results that flip an endpoint's state.
  uint32_t healthy_threshold = 1;
  uint32_t unhealthy_threshold = 2;
  // HealthCheckRequest.service ("" = the whole server).
  std::string service;
};

// Passive outlier ejection (`outlier = {...}`).
struct GRELAY_API OutlierConfig {
  // Consecutive UNAVAILABLE answers or connect failures that eject an endpoint.
  uint32_t consecutive_failures = 5;
  // The first ejection lasts this long; each further one twice as long, up to the max.
  std::chrono::milliseconds base_ejection{1000};
  std::chrono::milliseconds max_ejection{30000};
  // Most endpoints (percent of the cluster) ejected at once.
  uint32_t max_ejection_percent = 50;
};

// HTTP/2 PING keepalive on backend connections (`keepalive = {...}`).
struct GRELAY_API KeepaliveConfig {
  // A PING goes out after this long without a frame from the backend.
  std::chrono::milliseconds interval{30000};
  // A PING unanswered this long closes the connection.
  std::chrono::milliseconds timeout{10000};
  // Ping connections that carry no call too.
  bool without_calls = false;
};

// `tls = { ... }` of a [[cluster]]: backends are dialled over TLS with ALPN h2.
struct GRELAY_API ClusterTlsConfig {
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

struct GRELAY_API ClusterConfig {
  std::string name;
  std::vector<HostPort> endpoints;
  LbPolicy lb = LbPolicy::round_robin;
  // Most backend connections opened to one endpoint. A new one opens when every open one is
  // at the backend's SETTINGS_MAX_CONCURRENT_STREAMS; past the cap, calls queue on the least
  // loaded connection until a stream slot frees.
  uint32_t max_connections_per_endpoint = 8;
  std::chrono::milliseconds connect_timeout{5000};
  std::optional<ClusterTlsConfig> tls;
  // Weight of each of |endpoints|, in the same order (1 unless set).
  std::vector<uint32_t> weights;
  // Request header whose value picks the endpoint with lb = ring_hash.
  std::string hash_header;
  // DNS server for the names in |endpoints| (default: the system's).
  std::optional<HostPort> dns_server;
  std::chrono::milliseconds resolve_interval{30000};
  std::optional<HealthCheckConfig> health_check;
  std::optional<OutlierConfig> outlier;
  std::optional<KeepaliveConfig> keepalive;
  // Circuit breakers: calls waiting for a connection or stream slot, and calls in flight.
  // Over either cap a call fails at once with RESOURCE_EXHAUSTED. 0 = no cap.
  uint32_t max_pending = 0;
  uint32_t max_active = 0;
  // A backend connection older than this, or that carried this many streams, takes no new
  // calls (open ones finish) and a fresh one opens. 0 = no limit.
  std::chrono::milliseconds max_connection_age{0};
  uint32_t max_streams_per_connection = 0;
  // The most of the cluster's backend stream capacity one client connection may hold (0 to
  // 1; 1 = no bound). Calls over it fail at once with RESOURCE_EXHAUSTED.
  double max_client_share = 0.25;
  int line = 0;
};

struct GRELAY_API AccessLogConfig {
  // File the JSON lines are appended to; "-" is standard output.
  std::string path;
  // Fraction of the calls (that pass |only_errors|) logged, 0 to 1.
  double sample_rate = 1.0;
  // Log only calls that did not end with OK.
  bool only_errors = false;
  int line = 0;
};

// How the workers share the listening sockets.
enum class AcceptMode {
  reuseport,  // each worker has its own SO_REUSEPORT socket; the kernel hashes connections
  handoff,    // one acceptor on the main thread hands connections out round robin
};

struct GRELAY_API Config {
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
  std::optional<AccessLogConfig> access_log;
  // The grelay binary reloads the file when it changes (polled; a Kubernetes ConfigMap
  // volume replaces it through a symlink swap, which no directory watch of its name sees).
  bool watch_config = false;
  // The TOML text the config was parsed from (for the admin endpoint's /config).
  std::string source;
};

// Thrown by load_config and parse_config. what() is "file:line: message" (line omitted
// when unknown).
class GRELAY_API ConfigError : public std::runtime_error {
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
GRELAY_API std::shared_ptr<const Config> load_config(const std::string& path);

// Parses and validates |text| as if read from |path|. Throws ConfigError.
GRELAY_API std::shared_ptr<const Config> parse_config(std::string_view text,
                                                      const std::string& path);

}  // namespace grelay
