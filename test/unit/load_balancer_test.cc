#include "upstream/load_balancer.h"

#include <doctest/doctest.h>

#include <arpa/inet.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/chunk.h"
#include "net/flush_queue.h"
#include "upstream/cluster.h"
#include "upstream/endpoint.h"

using grelay::Endpoint;
using grelay::LbPolicy;
using grelay::LoadBalancer;

namespace {

// Endpoints with the given weights, owned by a cluster on a private loop. Nothing connects:
// the balancer only reads names, weights and loads.
class Fixture {
 public:
  explicit Fixture(std::vector<uint32_t> weights) : flush_queue_(init_loop(&loop_)) {
    config_.name = "c";
    config_.endpoints.push_back({"127.0.0.1", 1, "127.0.0.1:1"});
    cluster_ = std::make_unique<grelay::Cluster>(ctx_, config_);
    for (size_t i = 0; i < weights.size(); ++i) {
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(1000 + i));
      addr.sin_addr.s_addr = htonl(0x0a000001 + static_cast<uint32_t>(i));
      owned_.push_back(std::make_unique<Endpoint>(*cluster_, ctx_,
                                                  reinterpret_cast<const sockaddr*>(&addr),
                                                  "e" + std::to_string(i), weights[i], 0));
      endpoints.push_back(owned_.back().get());
    }
  }

  ~Fixture() {
    owned_.clear();
    cluster_->shutdown();
    flush_queue_.close([](void*) noexcept {}, nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    cluster_.reset();
    uv_loop_close(&loop_);
  }

  std::vector<Endpoint*> endpoints;

 private:
  static uv_loop_t* init_loop(uv_loop_t* loop) {
    uv_loop_init(loop);
    return loop;
  }

  uv_loop_t loop_;
  grelay::ChunkPool pool_;
  grelay::FlushQueue flush_queue_;
  grelay::UpstreamContext ctx_{&loop_, pool_, flush_queue_, nullptr};
  grelay::ClusterConfig config_;
  std::unique_ptr<grelay::Cluster> cluster_;
  std::vector<std::unique_ptr<Endpoint>> owned_;
};

}  // namespace

TEST_CASE("round robin follows the weights, interleaved") {
  Fixture f({3, 1});
  LoadBalancer lb(LbPolicy::round_robin);
  std::string order;
  for (int i = 0; i < 8; ++i)
    order += lb.pick(f.endpoints, "")->name().substr(1);
  // Each cycle of 4 gives e0 three picks and e1 one, not in a burst of three.
  CHECK(order == "00100010");
}

TEST_CASE("round robin with equal weights takes turns") {
  Fixture f({1, 1, 1});
  LoadBalancer lb(LbPolicy::round_robin);
  std::map<std::string, int> counts;
  for (int i = 0; i < 30; ++i)
    ++counts[lb.pick(f.endpoints, "")->name()];
  CHECK(counts == std::map<std::string, int>{{"e0", 10}, {"e1", 10}, {"e2", 10}});
}

TEST_CASE("random favours heavier endpoints") {
  Fixture f({1, 9});
  LoadBalancer lb(LbPolicy::random);
  int heavy = 0;
  for (int i = 0; i < 2000; ++i)
    heavy += lb.pick(f.endpoints, "") == f.endpoints[1];
  CHECK(heavy > 1500);
  CHECK(heavy < 2000);
}

TEST_CASE("least_request picks among the candidates") {
  Fixture f({1, 1, 1, 1});
  LoadBalancer lb(LbPolicy::least_request);
  std::map<Endpoint*, int> counts;
  for (int i = 0; i < 400; ++i)
    ++counts[lb.pick(f.endpoints, "")];
  CHECK(counts.size() == 4);
  std::vector<Endpoint*> one = {f.endpoints[2]};
  CHECK(lb.pick(one, "") == f.endpoints[2]);
}

TEST_CASE("ring_hash keeps a key on its endpoint and moves only that endpoint's keys") {
  Fixture f({1, 1, 1, 1});
  LoadBalancer lb(LbPolicy::ring_hash);
  lb.rebuild(f.endpoints);
  std::map<std::string, Endpoint*> placed;
  std::map<Endpoint*, int> per_endpoint;
  for (int k = 0; k < 400; ++k) {
    std::string key = "user-" + std::to_string(k);
    Endpoint* e = lb.pick(f.endpoints, key);
    CHECK(lb.pick(f.endpoints, key) == e);
    placed[key] = e;
    ++per_endpoint[e];
  }
  CHECK(per_endpoint.size() == 4);
  for (const auto& [e, n] : per_endpoint)
    CHECK(n > 40);
  // Without e0 (unusable), only e0's keys move.
  std::vector<Endpoint*> rest(f.endpoints.begin() + 1, f.endpoints.end());
  for (const auto& [key, e] : placed) {
    Endpoint* now = lb.pick(rest, key);
    if (e != f.endpoints[0]) CHECK(now == e);
    CHECK(now != f.endpoints[0]);
  }
}
