#include "admin/admin_server.h"

#include <system_error>

#include "core/log.h"
#include "net/listener.h"

namespace grelay {
namespace {

// A request head larger than this is refused: probes send a few dozen bytes.
constexpr size_t max_request_head = 8192;

}  // namespace

struct AdminServer::Client : ListHook<Client> {
  uv_tcp_t tcp;
  uv_write_t write_req;
  AdminServer* server;
  std::string head;
  std::string response;
  bool answered = false;

  void close() noexcept {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp))) return;
    server->clients_.erase(*this);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp),
             [](uv_handle_t* h) { delete static_cast<Client*>(h->data); });
  }

  void send(const char* status, const std::string& body) noexcept {
    answered = true;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp));
    response = std::string("HTTP/1.1 ") + status +
               "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    uv_buf_t buf = uv_buf_init(response.data(), static_cast<unsigned>(response.size()));
    int rc = uv_write(&write_req, reinterpret_cast<uv_stream_t*>(&tcp), &buf, 1,
                      [](uv_write_t* req, int) { static_cast<Client*>(req->data)->close(); });
    if (rc != 0) close();
  }

  static void alloc_cb(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept {
    static thread_local char scratch[4096];
    (void)handle;
    *buf = uv_buf_init(scratch, sizeof(scratch));
  }

  static void read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* self = static_cast<Client*>(stream->data);
    if (self->answered) return;
    if (nread < 0) {
      self->close();
      return;
    }
    self->head.append(buf->base, static_cast<size_t>(nread));
    size_t end = self->head.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (self->head.size() > max_request_head)
        self->send("431 Request Header Fields Too Large", "request head too large\n");
      return;
    }
    self->server->answer(*self, self->head.substr(0, self->head.find("\r\n")));
  }
};

AdminServer::AdminServer(uv_loop_t* loop, const AdminConfig& config) noexcept
    : loop_(loop), config_(config) {}

std::string AdminServer::start() {
  sockaddr_storage addr{};
  if (!make_sockaddr(config_.address.host, config_.address.port, addr)) {
    throw std::system_error(EINVAL, std::generic_category(),
                            "admin address " + config_.address.text);
  }
  int fd = open_listen_socket(reinterpret_cast<sockaddr*>(&addr), 128);
  if (fd < 0) {
    throw std::system_error(-fd, std::generic_category(),
                            "cannot listen on admin address " + config_.address.text);
  }
  socket_local_address(fd, addr);
  uv_tcp_init(loop_, &tcp_);
  tcp_.data = this;
  listening_ = true;
  int rc = uv_tcp_open(&tcp_, fd);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&tcp_), 128, connection_cb);
  if (rc != 0) {
    throw std::system_error(-rc, std::generic_category(),
                            "cannot listen on admin address " + config_.address.text);
  }
  return sockaddr_to_string(reinterpret_cast<sockaddr*>(&addr));
}

void AdminServer::connection_cb(uv_stream_t* server, int status) noexcept {
  auto* self = static_cast<AdminServer*>(server->data);
  if (status < 0) return;
  auto* client = new Client();
  client->server = self;
  uv_tcp_init(self->loop_, &client->tcp);
  client->tcp.data = client;
  client->write_req.data = client;
  self->clients_.push_back(*client);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&client->tcp)) != 0 ||
      uv_read_start(reinterpret_cast<uv_stream_t*>(&client->tcp), Client::alloc_cb,
                    Client::read_cb) != 0) {
    client->close();
  }
}

void AdminServer::answer(Client& client, const std::string& request_line) noexcept {
  // "GET /path HTTP/1.1"
  size_t sp1 = request_line.find(' ');
  size_t sp2 = request_line.find(' ', sp1 == std::string::npos ? 0 : sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos) {
    client.send("400 Bad Request", "bad request line\n");
    return;
  }
  std::string method = request_line.substr(0, sp1);
  std::string target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  if (target == "/reload" && reload_) {
    if (method != "POST") {
      client.send("405 Method Not Allowed", "POST /reload\n");
      return;
    }
    Answer answer = reload_();
    const char* status = answer.status == 200   ? "200 OK"
                         : answer.status == 400 ? "400 Bad Request"
                                                : "500 Internal Server Error";
    client.send(status, answer.body);
    return;
  }
  if (method != "GET") {
    client.send("405 Method Not Allowed", "only GET\n");
    return;
  }
  if (target == "/healthz") {
    client.send("200 OK", "ok\n");
  } else if (target == "/ready") {
    if (draining_.load())
      client.send("503 Service Unavailable", "draining\n");
    else
      client.send("200 OK", "ready\n");
  } else {
    client.send("404 Not Found", "not found; try /healthz or /ready\n");
  }
}

void AdminServer::close() noexcept {
  if (!listening_) return;
  listening_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), nullptr);
  while (Client* client = clients_.front())
    client->close();
}

}  // namespace grelay
