#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "grelay/config.h"

namespace grelay {

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// The certificates of one TLS listener, loaded: one SSL_CTX per pair, the first the default,
// the others picked by the client's SNI. Immutable once built, so every worker thread shares
// it; a reload builds a new one. Connections keep theirs alive (a shared_ptr each), so an
// old context lives until its last connection is gone.
class ServerTlsContext {
 public:
  // Loads every file of |config|. Returns nullptr and sets |error| when one fails. With
  // |previous|, its session ticket keys are kept, so tickets issued before a reload resume.
  // ALPN selects h2, or (with |http1|: a listener with web calls) http/1.1 for a client that
  // does not offer h2.
  static std::shared_ptr<const ServerTlsContext> create(const ListenerTlsConfig& config,
                                                        const ServerTlsContext* previous,
                                                        bool http1, std::string& error);

  // A new server-side SSL object, or nullptr when out of memory.
  SSL* new_ssl() const noexcept;
  // The notAfter time (seconds since the epoch) of each certificate, in config order.
  std::vector<int64_t> not_after() const;

 private:
  ServerTlsContext() = default;

  // The context serving |name| (lowercase), or nullptr when none names it.
  SSL_CTX* find(std::string_view name) const noexcept;

  static int client_hello_cb(SSL* ssl, int* alert, void* arg) noexcept;
  static int servername_cb(SSL* ssl, int* alert, void* arg) noexcept;
  static int alpn_select_cb(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                            const unsigned char* in, unsigned int inlen, void* arg) noexcept;

  std::vector<SslCtxPtr> contexts_;
  // Each SNI name (lowercase; "*.domain" for wildcards) with the index of its context.
  std::vector<std::pair<std::string, size_t>> names_;
};

// A cluster's client-side TLS setup, loaded: CA, optional client certificate. Immutable and
// shared like ServerTlsContext.
class ClientTlsContext {
 public:
  static std::shared_ptr<const ClientTlsContext> create(const ClusterTlsConfig& config,
                                                        std::string& error);

  // A client-side SSL object for a backend whose address has host |host|: SNI and the name
  // verified are the configured server_name, else |host|. nullptr when out of memory.
  SSL* new_ssl(const std::string& host) const noexcept;
  // The notAfter time (seconds since the epoch) of the client certificate; -1 without one.
  int64_t not_after() const;

 private:
  ClientTlsContext() = default;

  SslCtxPtr ctx_;
  std::string server_name_;
  bool verify_ = true;
};

// The current context of one listener or cluster, swapped by reload(). Thread safe: workers
// read it at each new connection while the main thread reloads.
template <typename Context, typename Settings>
class TlsSource {
 public:
  TlsSource(Settings settings, std::shared_ptr<const Context> context)
      : settings_(std::move(settings)), context_(std::move(context)) {}

  std::shared_ptr<const Context> current() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return context_;
  }
  void replace(std::shared_ptr<const Context> context) {
    std::lock_guard<std::mutex> lock(mutex_);
    context_ = std::move(context);
  }
  const Settings& settings() const noexcept { return settings_; }

 private:
  const Settings settings_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Context> context_;
};

using ServerTls = TlsSource<ServerTlsContext, ListenerTlsConfig>;
using ClientTls = TlsSource<ClientTlsContext, ClusterTlsConfig>;

}  // namespace grelay
