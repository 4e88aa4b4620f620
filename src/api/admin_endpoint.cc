#include "grelay/admin_endpoint.h"

#include <exception>
#include <utility>

#include "admin/admin_server.h"
#include "api/relay_group_impl.h"
#include "grelay/relay_group.h"

namespace grelay {

AdminEndpoint::AdminEndpoint(uv_loop_t* loop, std::shared_ptr<RelayGroup> group,
                             AdminConfig address)
    : group_(std::move(group)), address_(std::move(address)) {
  RelayGroup* g = group_.get();
  server_ = std::make_unique<AdminServer>(loop, address_, g->impl_->metrics(),
                                          [g] { return g->config(); });
}

AdminEndpoint::~AdminEndpoint() = default;

std::string AdminEndpoint::start() {
  return server_->start();
}

void AdminEndpoint::set_reload_handler(std::function<Answer()> handler) {
  if (!handler) {
    server_->set_reload_handler(nullptr);
    return;
  }
  // The handler runs in a libuv read callback, which no exception may leave.
  server_->set_reload_handler([handler = std::move(handler)]() -> AdminServer::Answer {
    try {
      Answer answer = handler();
      return {answer.status, std::move(answer.body)};
    } catch (const std::exception& e) {
      return {500, std::string(e.what()) + "\n"};
    } catch (...) {
      return {500, "reload failed\n"};
    }
  });
}

void AdminEndpoint::set_draining() noexcept {
  server_->set_draining();
}

void AdminEndpoint::close() noexcept {
  server_->close();
}

}  // namespace grelay
