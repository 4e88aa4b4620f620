#include "app/worker_thread.h"

#include <unistd.h>

#include <exception>
#include <system_error>

#include "app/log_format.h"

namespace grelay {

void Countdown::done() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  if (left_ > 0 && --left_ == 0) cv_.notify_all();
}

bool Countdown::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return cv_.wait_for(lock, timeout, [this] { return left_ == 0; });
}

WorkerThread::WorkerThread(size_t id, std::shared_ptr<RelayGroup> group) : id_(id) {
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &mailbox_async_, mailbox_cb);
  mailbox_async_.data = this;
  relay_ = std::make_unique<Relay>(&loop_, std::move(group));
}

WorkerThread::~WorkerThread() {
  join();
  if (relay_) {
    // Never started: release what the loop holds.
    relay_.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&mailbox_async_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
}

void WorkerThread::start(std::function<void()> on_exit) {
  on_exit_ = std::move(on_exit);
  thread_ = std::thread([this] {
    uv_run(&loop_, UV_RUN_DEFAULT);
    final_load_ = relay_->load();
    relay_.reset();
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
                               std::vector<std::pair<size_t, int>> listen_fds,
                               std::shared_ptr<Countdown> countdown) {
  Message message{Message::Kind::config};
  message.config = std::move(config);
  message.fds = std::move(listen_fds);
  message.countdown = std::move(countdown);
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

void WorkerThread::apply_config(Message& message) noexcept {
  if (stopping_) {
    discard(message);
    return;
  }
  // The main thread reloaded the group first: the relay takes its certificates and opens
  // nothing itself, the sockets of added listeners coming with the message.
  try {
    relay_->reload(message.config, NewListeners::from_host);
  } catch (const std::exception& e) {
    log_format(LogLevel::error, "worker %zu: cannot apply the new config: %s", id_, e.what());
    discard(message);
    return;
  }
  for (auto& [index, fd] : message.fds) {
    try {
      relay_->listen_fd(index, fd);
    } catch (const std::system_error& e) {
      log_format(LogLevel::error, "worker %zu: cannot listen on %s: %s", id_,
                 message.config->listeners[index].address.text.c_str(), e.code().message().c_str());
    }
  }
  message.fds.clear();
  if (message.countdown) message.countdown->done();
}

void WorkerThread::handle(Message& message) noexcept {
  switch (message.kind) {
    case Message::Kind::config:
      apply_config(message);
      break;
    case Message::Kind::connection:
      for (auto& [index, fd] : message.fds) {
        // serve() owns |fd| from here, whatever it returns.
        int rc = relay_->serve(fd, index);
        if (rc != 0 && rc != UV_ECONNREFUSED && rc != UV_ECANCELED) {
          log_format(LogLevel::warn, "worker %zu: cannot serve a connection: %s", id_,
                     uv_strerror(rc));
        }
      }
      message.fds.clear();
      break;
    case Message::Kind::stop: {
      stopping_ = true;
      auto done = [this] {
        std::lock_guard<std::mutex> lock(mutex_);
        stopped_ = true;
        uv_close(reinterpret_cast<uv_handle_t*>(&mailbox_async_), nullptr);
      };
      if (message.stop == Stop::expire) {
        relay_->expire_calls();
      } else {
        relay_->shutdown(message.stop == Stop::drain, done);
      }
      break;
    }
    case Message::Kind::reopen_logs:
      relay_->reopen_logs();
      break;
  }
}

}  // namespace grelay
