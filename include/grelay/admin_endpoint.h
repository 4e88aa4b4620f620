#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "grelay/config.h"
#include "grelay/export.h"

namespace grelay {

class AdminServer;
class RelayGroup;

// The admin endpoint of a RelayGroup, as the grelay binary serves it at [admin] address:
// plain GETs over HTTP/1.1 (one request per connection) or h2c with prior knowledge.
//   /metrics   the group's metrics in the Prometheus text format (RelayGroup::prometheus_text)
//   /healthz   200 "ok"
//   /ready     200 "ready", or 503 "draining" after set_draining()
//   /config    the group's config as JSON, secrets redacted (the TOML it was parsed from: {}
//              for a config built in code)
//   /clusters  clusters and endpoints as JSON: active calls, connections, health, ejection
//   POST /reload  the host's reload handler, when it set one
//   grpc.health.v1.Health/Check and Watch (h2c only): SERVING, NOT_SERVING once draining,
//              for the services "" and "grelay"
// It runs on |loop|, any loop of the host's (the binary's main loop); use it from that loop's
// thread.
class GRELAY_API AdminEndpoint {
 public:
  AdminEndpoint(uv_loop_t* loop, std::shared_ptr<RelayGroup> group, AdminConfig address);
  // Call before start(), or after close() once the loop has run the close callbacks.
  ~AdminEndpoint();
  AdminEndpoint(const AdminEndpoint&) = delete;
  AdminEndpoint& operator=(const AdminEndpoint&) = delete;

  // Binds and listens. Returns the bound address ("ip:port"). Throws std::system_error.
  std::string start();

  // What POST /reload answers: an HTTP status and a text body.
  struct Answer {
    int status = 200;
    std::string body;
  };
  // Sets what POST /reload runs, on the loop. An exception it throws is answered with 500
  // and its what().
  void set_reload_handler(std::function<Answer()> handler);

  // /ready turns 503 and the health service NOT_SERVING from now on; open Watch calls are
  // told.
  void set_draining() noexcept;
  // Stops listening and closes every admin connection.
  void close() noexcept;

 private:
  std::shared_ptr<RelayGroup> group_;
  AdminConfig address_;
  std::unique_ptr<AdminServer> server_;
};

}  // namespace grelay
