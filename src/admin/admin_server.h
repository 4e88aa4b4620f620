#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <string>

#include "core/intrusive_list.h"
#include "grelay/config.h"

namespace grelay {

// The [admin] endpoint: plain HTTP/1.1 GETs on its own loop (the process's main loop), one
// request per connection.
//   /healthz  200 "ok" while the process runs
//   /ready    200 "ready", or 503 "draining" once a drain has begun
//   POST /reload  reloads the config (when a handler is set): 200 "reloaded", or 400 with
//             the file:line error of an invalid config (500 when it could not be applied)
// Other paths get 404, other methods 405. Every answer closes the connection.
class AdminServer {
 public:
  AdminServer(uv_loop_t* loop, const AdminConfig& config) noexcept;
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

  // /ready turns 503 from now on.
  void set_draining() noexcept { draining_.store(true); }
  // Stops listening and closes every admin connection.
  void close() noexcept;

 private:
  struct Client;

  static void connection_cb(uv_stream_t* server, int status) noexcept;
  void answer(Client& client, const std::string& request_line) noexcept;

  uv_loop_t* loop_;
  const AdminConfig& config_;
  uv_tcp_t tcp_;
  bool listening_ = false;
  IntrusiveList<Client> clients_;
  std::atomic<bool> draining_{false};
  std::function<Answer()> reload_;
};

}  // namespace grelay
