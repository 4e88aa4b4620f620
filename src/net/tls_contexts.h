#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "grelay/config.h"
#include "net/tls_context.h"

namespace grelay {

// The TLS contexts of every listener and cluster of a config, loaded once per process and
// shared by all workers (so a session ticket from one worker resumes on another). Thread
// safe.
class TlsContexts {
 public:
  // Loads every file. Throws std::runtime_error naming the listener or cluster on failure.
  // With |previous| (the contexts of the config this one replaces), listeners at the same
  // address keep its session ticket keys.
  explicit TlsContexts(const Config& config, const TlsContexts* previous = nullptr);
  TlsContexts(const TlsContexts&) = delete;
  TlsContexts& operator=(const TlsContexts&) = delete;

  // nullptr for a plaintext listener or cluster.
  const ServerTls* listener(size_t index) const noexcept {
    return index < listeners_.size() ? listeners_[index].get() : nullptr;
  }
  const ClientTls* cluster(size_t index) const noexcept {
    return index < clusters_.size() ? clusters_[index].get() : nullptr;
  }

  // Reads every certificate, key and CA file again. New handshakes use what loaded; open
  // connections keep what they had. A listener or cluster whose files fail to load keeps its
  // current context, and the failure is logged. Returns the number of such failures.
  size_t reload();

  // Every file the contexts are read from (to watch them for changes).
  std::vector<std::string> files() const;

  // A certificate grelay presents (a listener's, or a cluster's client certificate), as
  // loaded now.
  struct Certificate {
    // "listener" or "cluster", and the listener's address or the cluster's name.
    std::string kind;
    std::string name;
    std::string file;
    // notAfter, in seconds since the epoch.
    int64_t not_after = 0;
  };
  std::vector<Certificate> certificates() const;

 private:
  std::vector<std::unique_ptr<ServerTls>> listeners_;
  std::vector<std::string> listener_names_;
  // Whether each listener serves HTTP/1.1 too (web = true): its contexts offer http/1.1.
  std::vector<bool> listener_http1_;
  std::vector<std::unique_ptr<ClientTls>> clusters_;
  std::vector<std::string> cluster_names_;
  // One reload at a time.
  std::mutex reload_mutex_;
};

}  // namespace grelay
