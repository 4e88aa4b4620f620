#include "upstream/cluster.h"

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/chunk.h"
#include "net/flush_queue.h"

using grelay::Cluster;
using grelay::ClusterConfig;
using grelay::StatusCode;

namespace {

// A call as the pool sees it; it only records what the pool tells it.
class FakeHandler final : public grelay::UpstreamHandler {
 public:
  void on_upstream_ready(grelay::BackendSession&) noexcept override { ++ready; }
  void on_upstream_failed(StatusCode code, const std::string& why) noexcept override {
    ++failed;
    status = code;
    message = why;
  }
  void on_response_header(nghttp2_rcbuf*, nghttp2_rcbuf*, grelay::FieldName,
                          bool) noexcept override {}
  void on_response_headers_end(bool) noexcept override {}
  void on_response_data(const uint8_t*, size_t) noexcept override {}
  void on_response_end() noexcept override {}
  void on_upstream_close(uint32_t) noexcept override {}
  void on_submit(grelay::ClientSession&) noexcept override {}
  ssize_t read_request_body(size_t, uint32_t*) noexcept override { return 0; }
  void write_request_body(grelay::ChunkChain&, size_t) noexcept override {}

  int ready = 0;
  int failed = 0;
  StatusCode status = StatusCode::ok;
  std::string message;
};

// A cluster "c" of IP endpoints on loopback ports where nothing listens, on a private loop.
// A call put on an endpoint waits for a connection until the loop runs and the connect is
// refused, so the counts of waiting calls are seen without a backend.
class Fixture {
 public:
  explicit Fixture(std::vector<uint16_t> ports, uint32_t max_pending = 0, uint32_t max_active = 0)
      : flush_queue_(init_loop(&loop_)) {
    config_.name = "c";
    config_.lb = grelay::LbPolicy::ring_hash;
    config_.max_pending = max_pending;
    config_.max_active = max_active;
    for (uint16_t port : ports) {
      config_.endpoints.push_back({"127.0.0.1", port, "127.0.0.1:" + std::to_string(port)});
    }
    cluster = std::make_unique<Cluster>(ctx_, config_);
  }

  ~Fixture() {
    cluster->shutdown();
    flush_queue_.close([](void*) noexcept {}, nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    cluster.reset();
    uv_loop_close(&loop_);
  }

  // Runs the loop until |handler| has failed, for at most 5 s.
  void run_until_failed(const FakeHandler& handler) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (handler.failed == 0 && std::chrono::steady_clock::now() < until)
      uv_run(&loop_, UV_RUN_ONCE);
  }

  std::unique_ptr<Cluster> cluster;

 private:
  static uv_loop_t* init_loop(uv_loop_t* loop) {
    uv_loop_init(loop);
    return loop;
  }

  uv_loop_t loop_;
  grelay::ChunkPool pool_;
  grelay::FlushQueue flush_queue_;
  grelay::UpstreamContext ctx_{&loop_, pool_, flush_queue_, nullptr};
  ClusterConfig config_;
};

}  // namespace

TEST_CASE("a call waiting for a connection counts on its endpoint and cluster until it stops") {
  Fixture f({1});
  FakeHandler h1, h2;
  f.cluster->open_stream(h1);
  f.cluster->open_stream(h2);
  CHECK(f.cluster->endpoint(0).load() == 2);
  CHECK(f.cluster->endpoint(0).queued() == 2);
  CHECK(f.cluster->active() == 2);
  CHECK(f.cluster->pending() == 2);
  h1.cancel_wait();
  CHECK(f.cluster->endpoint(0).load() == 1);
  CHECK(f.cluster->active() == 1);
  CHECK(f.cluster->pending() == 1);
  h2.cancel_wait();
  CHECK(f.cluster->active() == 0);
  CHECK(f.cluster->pending() == 0);
  CHECK(h1.failed + h2.failed == 0);
}

TEST_CASE("a refused connection fails its waiting calls and leaves no count") {
  Fixture f({1});
  FakeHandler h;
  f.cluster->open_stream(h);
  CHECK(f.cluster->active() == 1);
  f.run_until_failed(h);
  CHECK(h.failed == 1);
  CHECK(h.status == StatusCode::unavailable);
  CHECK(f.cluster->endpoint(0).load() == 0);
  CHECK(f.cluster->active() == 0);
  CHECK(f.cluster->pending() == 0);
}

TEST_CASE("max_pending fails a call at once with RESOURCE_EXHAUSTED, by the running count") {
  Fixture f({1, 2}, /*max_pending=*/2);
  FakeHandler h1, h2, h3, h4;
  f.cluster->open_stream(h1, "a");
  f.cluster->open_stream(h2, "b");
  f.cluster->open_stream(h3, "c");
  CHECK(h1.failed + h2.failed == 0);
  CHECK(h3.failed == 1);
  CHECK(h3.status == StatusCode::resource_exhausted);
  CHECK(h3.message == "cluster 'c' is at its max_pending of 2 calls");
  CHECK(f.cluster->pending() == 2);
  // A call that stops waiting makes room.
  h1.cancel_wait();
  f.cluster->open_stream(h4, "d");
  CHECK(h4.failed == 0);
  CHECK(f.cluster->pending() == 2);
}

TEST_CASE("max_active fails a call at once with RESOURCE_EXHAUSTED") {
  Fixture f({1, 2}, /*max_pending=*/0, /*max_active=*/3);
  FakeHandler h[4];
  for (FakeHandler& handler : h)
    f.cluster->open_stream(handler);
  CHECK(h[0].failed + h[1].failed + h[2].failed == 0);
  CHECK(h[3].failed == 1);
  CHECK(h[3].status == StatusCode::resource_exhausted);
  CHECK(h[3].message == "cluster 'c' is at its max_active of 3 calls");
  CHECK(f.cluster->active() == 3);
  CHECK(f.cluster->endpoint(0).load() + f.cluster->endpoint(1).load() == 3);
}

TEST_CASE("a key keeps its endpoint, and a handler's next pick avoids the one before") {
  Fixture f({1, 2});
  FakeHandler h1, h2;
  f.cluster->open_stream(h1, "user-7");
  f.cluster->open_stream(h2, "user-7");
  const size_t first = f.cluster->endpoint(0).load() == 2 ? 0 : 1;
  CHECK(f.cluster->endpoint(first).load() == 2);
  // h1 tries again (another attempt of the call): the same key, but the other endpoint.
  h1.cancel_wait();
  f.cluster->open_stream(h1, "user-7");
  CHECK(f.cluster->endpoint(first).load() == 1);
  CHECK(f.cluster->endpoint(1 - first).load() == 1);
}

TEST_CASE("an unhealthy endpoint gets no calls; with none usable a call fails UNAVAILABLE") {
  Fixture f({1, 2});
  f.cluster->endpoint(0).on_health_result(false, "NOT_SERVING");
  FakeHandler h[4];
  for (int i = 0; i < 4; ++i)
    f.cluster->open_stream(h[i], "key-" + std::to_string(i));
  CHECK(f.cluster->endpoint(0).load() == 0);
  CHECK(f.cluster->endpoint(1).load() == 4);
  f.cluster->endpoint(1).on_health_result(false, "NOT_SERVING");
  FakeHandler late;
  f.cluster->open_stream(late);
  CHECK(late.failed == 1);
  CHECK(late.status == StatusCode::unavailable);
  CHECK(late.message ==
        "no usable endpoint in cluster 'c' (2 endpoints: 2 unhealthy, 0 ejected, 0 failing to "
        "connect)");
}

TEST_CASE("routes share a cluster's retry budget only when they give the same parameters") {
  Fixture f({1});
  grelay::RetryConfig a;
  grelay::RetryConfig same_as_a;
  same_as_a.attempts = 5;
  grelay::RetryConfig b;
  b.budget_tokens = 100;
  grelay::RetryBudget& budget_a = f.cluster->retry_budget(a);
  CHECK(&f.cluster->retry_budget(same_as_a) == &budget_a);
  grelay::RetryBudget& budget_b = f.cluster->retry_budget(b);
  CHECK(&budget_b != &budget_a);
  // a's failures spend a's budget only; b keeps its own parameters whoever asked first.
  for (int i = 0; i < 5; ++i)
    budget_a.record(true);
  CHECK(!budget_a.allows_retry());
  CHECK(budget_b.allows_retry());
  CHECK(budget_b.tokens_left() == 100);
}
