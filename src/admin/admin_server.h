#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "admin/admin_h2_session.h"
#include "admin/metrics.h"
#include "core/intrusive_list.h"
#include "grelay/config.h"

namespace grelay {

// The [admin] endpoint, on its own loop (the process's main loop). Plain GETs over HTTP/1.1
// (one request per connection) or h2c with prior knowledge (any number of requests):
//   /metrics   every counter, in the Prometheus text format
//   /healthz   200 "ok" while the process runs
//   /ready     200 "ready", or 503 "draining" once a drain has begun
//   /config    the running config as JSON, secrets redacted
//   /clusters  clusters and endpoints as JSON: active calls, connections, health, ejection
//   POST /reload  reloads the config (when a handler is set): 200 "reloaded", or 400 with
//             the file:line error of an invalid config (500 when it could not be applied)
//   grpc.health.v1.Health/Check and Watch (h2c only): SERVING, NOT_SERVING once a drain
//             has begun, for the services "" and "grelay"
// Other paths get 404, other methods 405.
class AdminServer {
 public:
  // What /config shows: the config |running| returns at each request (the one in force).
  using ConfigSource = std::function<std::shared_ptr<const Config>()>;

  // |config| and |metrics| must outlive the server.
  AdminServer(uv_loop_t* loop, const AdminConfig& config, Metrics& metrics,
              ConfigSource running) noexcept;
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and listens. Throws std::system_error. Returns the bound address ("ip:port").
  std::string start();
  struct Answer {
    int status;
    std::string body;
  };
  // What POST /reload runs (on this loop).
  void set_reload_handler(std::function<Answer()> handler) { reload_ = std::move(handler); }

  // /ready turns 503 and the health service NOT_SERVING from now on; open Watch calls are
  // told. Loop thread only.
  void set_draining() noexcept;
  // Stops listening and closes every admin connection.
  void close() noexcept;

  // The answer to |method| |path| (the path without its query).
  AdminResponse handle(std::string_view method, std::string_view path) const;

 private:
  struct Client;

  static void connection_cb(uv_stream_t* server, int status) noexcept;

  uv_loop_t* loop_;
  const AdminConfig& config_;
  Metrics& metrics_;
  ConfigSource running_;
  uv_tcp_t tcp_;
  bool listening_ = false;
  IntrusiveList<Client> clients_;
  std::atomic<bool> draining_{false};
  std::function<Answer()> reload_;
};

// |config|'s TOML source as JSON, with the value of every key named key, password or secret
// (or ending in _key, _password or _secret) replaced by "<redacted>".
std::string redacted_config_json(const Config& config);

}  // namespace grelay
