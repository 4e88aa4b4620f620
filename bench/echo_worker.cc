#include "echo_worker.h"

#include <stdexcept>
#include <string>

#include "echo_connection.h"

namespace grelay::bench {

namespace {

void check(int rc, const char* what) {
  if (rc != 0) throw std::runtime_error(std::string(what) + ": " + uv_strerror(rc));
}

}  // namespace

UvLoop::UvLoop() {
  check(uv_loop_init(&loop_), "uv_loop_init");
}

UvLoop::~UvLoop() {
  uv_walk(
      &loop_,
      [](uv_handle_t* handle, void*) {
        if (!uv_is_closing(handle)) uv_close(handle, nullptr);
      },
      nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

EchoWorker::EchoWorker(UniqueFd& listen_fd) : read_buffer_(new char[read_buffer_size]) {
  // Handles initialised here are closed by ~UvLoop if a later step throws.
  check(uv_async_init(loop(), &stop_, on_stop_cb), "uv_async_init");
  stop_.data = this;
  check(uv_tcp_init(loop(), &listener_), "uv_tcp_init");
  listener_.data = this;
  check(uv_tcp_open(&listener_, listen_fd.get()), "uv_tcp_open");
  listen_fd.release();  // Closed with the listener handle from now on.
  check(uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), SOMAXCONN, on_connection_cb),
        "uv_listen");
}

void EchoWorker::run() noexcept {
  uv_run(loop(), UV_RUN_DEFAULT);
}

void EchoWorker::stop() noexcept {
  uv_async_send(&stop_);
}

void EchoWorker::on_stop_cb(uv_async_t* async) noexcept {
  static_cast<EchoWorker*>(async->data)->on_stop();
}

// Closes every handle so that run() returns; connections free themselves as they close.
void EchoWorker::on_stop() noexcept {
  uv_walk(
      loop(),
      [](uv_handle_t* handle, void* arg) {
        auto* worker = static_cast<EchoWorker*>(arg);
        if (uv_is_closing(handle)) return;
        bool is_connection =
            handle->type == UV_TCP && handle != reinterpret_cast<uv_handle_t*>(&worker->listener_);
        if (is_connection) {
          static_cast<EchoConnection*>(handle->data)->close();
        } else {
          uv_close(handle, nullptr);
        }
      },
      this);
}

void EchoWorker::on_connection_cb(uv_stream_t* listener, int status) noexcept {
  // A failed accept (for example EMFILE) costs that connection only.
  if (status != 0) return;
  EchoConnection::accept(*static_cast<EchoWorker*>(listener->data), listener);
}

}  // namespace grelay::bench
