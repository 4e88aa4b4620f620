#include "relay/attempt.h"

#include <doctest/doctest.h>

#include <cstdint>

namespace {

using grelay::Attempt;
using grelay::AttemptCounts;

// A session pointer the attempt only compares with null: never followed.
grelay::BackendSession* some_session() {
  static char stand_in;
  return reinterpret_cast<grelay::BackendSession*>(&stand_in);
}

}  // namespace

TEST_CASE("Attempt: a fresh attempt has no stream, no answer and nothing kept for a replay") {
  Attempt attempt;
  CHECK(attempt.session == nullptr);
  CHECK(attempt.stream_id == 0);
  CHECK(attempt.answer == Attempt::Answer::none);
  CHECK_FALSE(attempt.request_deferred);
  CHECK(attempt.replay_offset == 0);
  CHECK(attempt.block_bytes == 0);
}

TEST_CASE("Attempt: a response HEADERS block is counted at its RFC 7541 size, block by block") {
  Attempt attempt;
  // ":status" "200": 7 + 3 + 32.
  CHECK(attempt.add_block_field(7, 3) == 42);
  // "content-type" "application/grpc": 12 + 16 + 32, added to the block.
  CHECK(attempt.add_block_field(12, 16) == 102);
  CHECK(attempt.end_block() == 102);
  CHECK(attempt.block_bytes == 0);
  // The trailers are a block of their own.
  CHECK(attempt.add_block_field(11, 1) == 44);
  CHECK(attempt.end_block() == 44);
  CHECK(attempt.end_block() == 0);
}

TEST_CASE("Attempt: a deferred request body is resumed once, and only on a stream") {
  Attempt attempt;
  attempt.request_deferred = true;
  // No stream yet (or the stream is gone): nothing to resume, and the mark stays.
  CHECK_FALSE(attempt.request_resumes());
  CHECK(attempt.request_deferred);

  attempt.session = some_session();
  attempt.stream_id = 3;
  CHECK(attempt.request_resumes());
  CHECK_FALSE(attempt.request_deferred);
  // Bytes that follow find the body callback running: no second resume.
  CHECK_FALSE(attempt.request_resumes());
}

TEST_CASE("AttemptCounts: the first attempt is no retry") {
  AttemptCounts counts;
  CHECK_FALSE(counts.start());
  CHECK(counts.in_round == 1);
  CHECK(counts.policy == 0);
  CHECK(counts.retries == 0);
}

TEST_CASE("AttemptCounts: transparent retries count in the round and as retries") {
  AttemptCounts counts;
  counts.start();
  CHECK(counts.start());
  CHECK(counts.start());
  CHECK(counts.in_round == 3);
  CHECK(counts.policy == 0);
  CHECK(counts.retries == 2);
}

TEST_CASE("AttemptCounts: two policy retries are two retries, in the access log and the metric") {
  AttemptCounts counts;
  counts.start();
  for (uint32_t i = 1; i <= 2; ++i) {
    counts.start_policy_retry();
    CHECK(counts.in_round == 0);
    CHECK(counts.policy == i);
    CHECK(counts.retries == i);
    // The policy retry's attempt was counted when it was scheduled.
    CHECK_FALSE(counts.start());
    CHECK(counts.in_round == 1);
    CHECK(counts.retries == i);
  }
  CHECK(counts.policy == 2);
  CHECK(counts.retries == 2);
}

TEST_CASE("AttemptCounts: a transparent retry after a policy retry starts a new round") {
  AttemptCounts counts;
  counts.start();
  counts.start();  // another endpoint
  counts.start_policy_retry();
  counts.start();
  CHECK(counts.start());  // a refused stream replayed
  CHECK(counts.in_round == 2);
  CHECK(counts.policy == 1);
  CHECK(counts.retries == 3);
}
