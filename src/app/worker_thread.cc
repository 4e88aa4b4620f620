#include "app/worker_thread.h"

#include <unistd.h>

#include "core/log.h"

namespace grelay {

void Countdown::done() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  if (left_ > 0 && --left_ == 0) cv_.notify_all();
}

bool Countdown::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return cv_.wait_for(lock, timeout, [this] { return left_ == 0; });
}

WorkerThread::WorkerThread(size_t id, std::shared_ptr<const Config> config,
                           std::vector<std::shared_ptr<ConnectionGauge>> gauges,
                           std::shared_ptr<TlsContexts> tls, std::shared_ptr<WorkerStats> stats)
    : id_(id) {
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &mailbox_async_, mailbox_cb);
  mailbox_async_.data = this;
  worker_ = std::make_unique<Worker>(&loop_, std::move(config), std::move(tls), std::move(stats));
  load_ = worker_->load();
  worker_->share_gauges(std::move(gauges));
}

WorkerThread::~WorkerThread() {
  join();
  if (worker_) {
    // Never started: release what the loop holds.
    worker_.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&mailbox_async_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
}

void WorkerThread::start(std::function<void()> on_exit) {
  on_exit_ = std::move(on_exit);
  thread_ = std::thread([this] {
    uv_run(&loop_, UV_RUN_DEFAULT);
    worker_.reset();
    uv_loop_close(&loop_);
    std::vector<Message> left;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      left.swap(mailbox_);
    }
    for (Message& message : left)
      discard(message);
    on_exit_();
  });
}

void WorkerThread::join() {
  if (thread_.joinable()) thread_.join();
}

void WorkerThread::post_config(std::shared_ptr<const Config> config,
                               std::vector<std::shared_ptr<ConnectionGauge>> gauges,
                               std::vector<std::pair<size_t, int>> listen_fds,
                               std::shared_ptr<Countdown> countdown,
                               std::shared_ptr<TlsContexts> tls,
                               std::shared_ptr<WorkerStats> stats) {
  Message message{Message::Kind::config};
  message.config = std::move(config);
  message.gauges = std::move(gauges);
  message.fds = std::move(listen_fds);
  message.countdown = std::move(countdown);
  message.tls = std::move(tls);
  message.stats = std::move(stats);
  post(std::move(message));
}

void WorkerThread::post_reopen_logs() {
  post(Message{Message::Kind::reopen_logs});
}

void WorkerThread::post_connection(int fd, size_t index) {
  Message message{Message::Kind::connection};
  message.fds.emplace_back(index, fd);
  post(std::move(message));
}

void WorkerThread::post_stop(Stop mode) {
  Message message{Message::Kind::stop};
  message.stop = mode;
  post(std::move(message));
}

void WorkerThread::post(Message message) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopped_) {
      mailbox_.push_back(std::move(message));
      uv_async_send(&mailbox_async_);
      return;
    }
  }
  discard(message);
}

void WorkerThread::discard(Message& message) noexcept {
  for (auto& [index, fd] : message.fds)
    ::close(fd);
  message.fds.clear();
  if (message.countdown) message.countdown->done();
  message.countdown.reset();
}

void WorkerThread::mailbox_cb(uv_async_t* handle) noexcept {
  auto* self = static_cast<WorkerThread*>(handle->data);
  std::vector<Message> messages;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    messages.swap(self->mailbox_);
  }
  for (Message& message : messages)
    self->handle(message);
}

void WorkerThread::handle(Message& message) noexcept {
  switch (message.kind) {
    case Message::Kind::config:
      if (!worker_->reconfigure(message.config, std::move(message.gauges), std::move(message.tls),
                                std::move(message.stats))) {
        discard(message);
        break;
      }
      for (auto& [index, fd] : message.fds) {
        int rc = worker_->listen(index, fd);
        if (rc != 0) {
          GRELAY_LOG_ERROR("worker %zu: cannot listen on %s: %s", id_,
                           message.config->listeners[index].address.text.c_str(), uv_strerror(rc));
        }
      }
      message.fds.clear();
      if (message.countdown) message.countdown->done();
      break;
    case Message::Kind::connection:
      for (auto& [index, fd] : message.fds) {
        // serve() owns |fd| from here, whatever it returns.
        int rc = worker_->serve(fd, index);
        if (rc != 0 && rc != UV_ECONNREFUSED && rc != UV_ECANCELED) {
          GRELAY_LOG_WARN("worker %zu: cannot serve a connection: %s", id_, uv_strerror(rc));
        }
      }
      message.fds.clear();
      break;
    case Message::Kind::stop: {
      auto done = [this] {
        std::lock_guard<std::mutex> lock(mutex_);
        stopped_ = true;
        uv_close(reinterpret_cast<uv_handle_t*>(&mailbox_async_), nullptr);
      };
      if (message.stop == Stop::expire) {
        worker_->expire_calls();
      } else {
        worker_->shutdown(message.stop == Stop::drain, done);
      }
      break;
    }
    case Message::Kind::reopen_logs:
      if (AccessLog* log = worker_->access_log()) log->request_reopen();
      break;
  }
}

}  // namespace grelay
