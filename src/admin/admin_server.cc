#include "admin/admin_server.h"

#include <sstream>
#include <system_error>
#include <vector>

#include <toml++/toml.h>

#include "core/log.h"
#include "net/listener.h"

namespace grelay {
namespace {

// A request head larger than this is refused: probes send a few dozen bytes.
constexpr size_t max_request_head = 8192;
// What an h2c client with prior knowledge sends first.
constexpr std::string_view h2_preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const char* reason_phrase(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

bool is_secret_key(std::string_view key) noexcept {
  for (std::string_view word : {"key", "password", "secret"}) {
    if (key == word) return true;
    if (key.size() > word.size() && key.substr(key.size() - word.size()) == word &&
        key[key.size() - word.size() - 1] == '_') {
      return true;
    }
  }
  return false;
}

void redact(toml::node& node) {
  if (toml::table* table = node.as_table()) {
    std::vector<std::string> secrets;
    for (auto&& [key, value] : *table) {
      if (is_secret_key(key.str())) {
        secrets.emplace_back(key.str());
      } else {
        redact(value);
      }
    }
    for (const std::string& key : secrets)
      table->insert_or_assign(key, "<redacted>");
  } else if (toml::array* array = node.as_array()) {
    for (toml::node& element : *array)
      redact(element);
  }
}

}  // namespace

std::string redacted_config_json(const Config& config) {
  toml::table root;
  try {
    root = toml::parse(config.source, std::string_view(config.path));
  } catch (const toml::parse_error&) {
    // The running config was parsed from this text once; it parses again.
    return "{}\n";
  }
  redact(root);
  std::ostringstream out;
  out << toml::json_formatter(root) << "\n";
  return out.str();
}

struct AdminServer::Client : ListHook<Client> {
  uv_tcp_t tcp;
  uv_write_t write_req;
  AdminServer* server;
  std::string head;
  // Bytes being written, and bytes waiting for that write to finish.
  std::string writing;
  std::string pending;
  std::unique_ptr<AdminH2Session> h2;
  bool close_after_write = false;

  void close() noexcept {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp))) return;
    server->clients_.erase(*this);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp),
             [](uv_handle_t* h) { delete static_cast<Client*>(h->data); });
  }

  void write(std::string bytes) noexcept {
    pending += bytes;
    if (writing.empty()) start_write();
  }

  void start_write() noexcept {
    if (pending.empty()) {
      if (close_after_write || (h2 && h2->finished())) close();
      return;
    }
    writing = std::move(pending);
    pending.clear();
    uv_buf_t buf = uv_buf_init(writing.data(), static_cast<unsigned>(writing.size()));
    int rc = uv_write(&write_req, reinterpret_cast<uv_stream_t*>(&tcp), &buf, 1, write_cb);
    if (rc != 0) close();
  }

  static void write_cb(uv_write_t* req, int status) noexcept {
    auto* self = static_cast<Client*>(req->data);
    self->writing.clear();
    if (status < 0) {
      self->close();
      return;
    }
    self->start_write();
  }

  void send_http1(const AdminResponse& response) noexcept {
    close_after_write = true;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp));
    write("HTTP/1.1 " + std::to_string(response.status) + " " + reason_phrase(response.status) +
          "\r\nContent-Type: " + response.content_type + "\r\nContent-Length: " +
          std::to_string(response.body.size()) + "\r\nConnection: close\r\n\r\n" + response.body);
  }

  static void alloc_cb(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept {
    static thread_local char scratch[16384];
    (void)handle;
    *buf = uv_buf_init(scratch, sizeof(scratch));
  }

  static void read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* self = static_cast<Client*>(stream->data);
    if (self->close_after_write) return;
    if (nread < 0) {
      self->close();
      return;
    }
    auto* data = reinterpret_cast<const uint8_t*>(buf->base);
    auto len = static_cast<size_t>(nread);
    if (self->h2) {
      self->feed_h2(data, len);
      return;
    }
    self->head.append(buf->base, len);
    // The first bytes tell HTTP/1.1 from h2c with prior knowledge.
    std::string_view start(self->head.data(), std::min(self->head.size(), h2_preface.size()));
    if (h2_preface.substr(0, start.size()) == start) {
      if (self->head.size() < h2_preface.size()) return;
      AdminServer* server = self->server;
      self->h2 = std::make_unique<AdminH2Session>(
          [server](std::string_view method, std::string_view path) {
            return server->handle(method, path);
          },
          [server] {
            return server->draining_.load() ? ServingStatus::not_serving : ServingStatus::serving;
          });
      std::string bytes = std::move(self->head);
      self->head.clear();
      self->feed_h2(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      return;
    }
    size_t end = self->head.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (self->head.size() > max_request_head) {
        self->send_http1({431, "text/plain; charset=utf-8", "request head too large\n"});
      }
      return;
    }
    self->answer_http1(self->head.substr(0, self->head.find("\r\n")));
  }

  void feed_h2(const uint8_t* data, size_t len) noexcept {
    bool ok = h2->receive(data, len);
    if (!ok) close_after_write = true;
    write(h2->take_output());
  }

  void answer_http1(const std::string& request_line) noexcept {
    // "GET /path HTTP/1.1"
    size_t sp1 = request_line.find(' ');
    size_t sp2 = request_line.find(' ', sp1 == std::string::npos ? 0 : sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos) {
      send_http1({400, "text/plain; charset=utf-8", "bad request line\n"});
      return;
    }
    std::string method = request_line.substr(0, sp1);
    std::string target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    send_http1(server->handle(method, target.substr(0, target.find('?'))));
  }
};

AdminServer::AdminServer(uv_loop_t* loop, const AdminConfig& config, Metrics& metrics,
                         ConfigSource running) noexcept
    : loop_(loop), config_(config), metrics_(metrics), running_(std::move(running)) {}

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

AdminResponse AdminServer::handle(std::string_view method, std::string_view path) const {
  constexpr const char* text = "text/plain; charset=utf-8";
  constexpr const char* json = "application/json";
  if (path == "/reload" && reload_) {
    if (method != "POST") return {405, text, "POST /reload\n"};
    Answer answer = reload_();
    return {answer.status, text, answer.body};
  }
  if (method != "GET") return {405, text, "only GET\n"};
  if (path == "/metrics") {
    return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_.render_prometheus()};
  }
  if (path == "/healthz") return {200, text, "ok\n"};
  if (path == "/ready") {
    return draining_.load() ? AdminResponse{503, text, "draining\n"}
                            : AdminResponse{200, text, "ready\n"};
  }
  if (path == "/config") return {200, json, redacted_config_json(*running_())};
  if (path == "/clusters") return {200, json, metrics_.render_clusters()};
  return {404, text, "not found; try /metrics, /healthz, /ready, /config or /clusters\n"};
}

void AdminServer::set_draining() noexcept {
  draining_.store(true);
  // A write may close its client (and unlink it): step to the next one first.
  for (Client* client = clients_.front(); client;) {
    Client* next = IntrusiveList<Client>::next(*client);
    if (client->h2) {
      client->h2->health_changed();
      client->write(client->h2->take_output());
    }
    client = next;
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
