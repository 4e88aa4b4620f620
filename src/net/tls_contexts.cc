#include "net/tls_contexts.h"

#include <algorithm>
#include <stdexcept>

#include "core/log.h"

namespace grelay {

TlsContexts::TlsContexts(const Config& config, const TlsContexts* previous) {
  for (const ListenerConfig& listener : config.listeners) {
    listener_names_.push_back("listener " + listener.address.text);
    listener_http1_.push_back(listener.web);
    if (!listener.tls) {
      listeners_.push_back(nullptr);
      continue;
    }
    // The same listener in the config this one replaces hands over its session ticket keys:
    // clients resume across a config reload too.
    // The n-th listener of a name continues the n-th of the same name (port 0 repeats).
    std::shared_ptr<const ServerTlsContext> before;
    if (previous) {
      size_t seen = static_cast<size_t>(
          std::count(listener_names_.begin(), listener_names_.end() - 1, listener_names_.back()));
      for (size_t i = 0; i < previous->listener_names_.size(); ++i) {
        if (previous->listener_names_[i] != listener_names_.back()) continue;
        if (seen-- > 0) continue;
        if (previous->listeners_[i]) before = previous->listeners_[i]->current();
        break;
      }
    }
    std::string error;
    auto context = ServerTlsContext::create(*listener.tls, before.get(), listener.web, error);
    if (!context) throw std::runtime_error(listener_names_.back() + ": " + error);
    listeners_.push_back(std::make_unique<ServerTls>(*listener.tls, std::move(context)));
  }
  for (const ClusterConfig& cluster : config.clusters) {
    cluster_names_.push_back("cluster '" + cluster.name + "'");
    if (!cluster.tls) {
      clusters_.push_back(nullptr);
      continue;
    }
    std::string error;
    auto context = ClientTlsContext::create(*cluster.tls, error);
    if (!context) throw std::runtime_error(cluster_names_.back() + ": " + error);
    clusters_.push_back(std::make_unique<ClientTls>(*cluster.tls, std::move(context)));
  }
}

size_t TlsContexts::reload() {
  std::lock_guard<std::mutex> lock(reload_mutex_);
  size_t failures = 0;
  for (size_t i = 0; i < listeners_.size(); ++i) {
    ServerTls* tls = listeners_[i].get();
    if (!tls) continue;
    std::string error;
    auto old_context = tls->current();
    auto context =
        ServerTlsContext::create(tls->settings(), old_context.get(), listener_http1_[i], error);
    if (!context) {
      ++failures;
      GRELAY_LOG_ERROR("TLS reload: %s keeps its current certificates: %s",
                       listener_names_[i].c_str(), error.c_str());
      continue;
    }
    tls->replace(std::move(context));
    GRELAY_LOG_INFO("TLS reload: %s uses the certificates now in its files",
                    listener_names_[i].c_str());
  }
  for (size_t i = 0; i < clusters_.size(); ++i) {
    ClientTls* tls = clusters_[i].get();
    if (!tls) continue;
    std::string error;
    auto context = ClientTlsContext::create(tls->settings(), error);
    if (!context) {
      ++failures;
      GRELAY_LOG_ERROR("TLS reload: %s keeps its current TLS settings: %s",
                       cluster_names_[i].c_str(), error.c_str());
      continue;
    }
    tls->replace(std::move(context));
    GRELAY_LOG_INFO("TLS reload: %s uses the certificates now in its files",
                    cluster_names_[i].c_str());
  }
  return failures;
}

std::vector<TlsContexts::Certificate> TlsContexts::certificates() const {
  // The names are "listener ADDRESS" and "cluster 'NAME'": the label is the part after the
  // first word, without quotes.
  auto label = [](const std::string& name) {
    std::string out = name.substr(name.find(' ') + 1);
    if (out.size() >= 2 && out.front() == '\'') out = out.substr(1, out.size() - 2);
    return out;
  };
  std::vector<Certificate> out;
  for (size_t i = 0; i < listeners_.size(); ++i) {
    const ServerTls* tls = listeners_[i].get();
    if (!tls) continue;
    const auto& pairs = tls->settings().certificates;
    std::vector<int64_t> times = tls->current()->not_after();
    for (size_t j = 0; j < pairs.size() && j < times.size(); ++j) {
      if (times[j] >= 0)
        out.push_back({"listener", label(listener_names_[i]), pairs[j].cert, times[j]});
    }
  }
  for (size_t i = 0; i < clusters_.size(); ++i) {
    const ClientTls* tls = clusters_[i].get();
    if (!tls || tls->settings().cert.empty()) continue;
    int64_t when = tls->current()->not_after();
    if (when >= 0) out.push_back({"cluster", label(cluster_names_[i]), tls->settings().cert, when});
  }
  return out;
}

std::vector<std::string> TlsContexts::files() const {
  std::vector<std::string> out;
  auto add = [&out](const std::string& file) {
    if (!file.empty() && std::find(out.begin(), out.end(), file) == out.end()) out.push_back(file);
  };
  for (const auto& tls : listeners_) {
    if (!tls) continue;
    for (const TlsCertificate& pair : tls->settings().certificates) {
      add(pair.cert);
      add(pair.key);
    }
    add(tls->settings().client_ca);
  }
  for (const auto& tls : clusters_) {
    if (!tls) continue;
    add(tls->settings().ca);
    add(tls->settings().cert);
    add(tls->settings().key);
  }
  return out;
}

}  // namespace grelay
