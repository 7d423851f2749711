#include "sync/backoff.h"

#include <gtest/gtest.h>

#include <set>

namespace siterelay::sync {
namespace {

TEST(BackoffTest, DoublesPerAttemptWithJitterInTheUpperHalf) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    uint64_t full = 1000ull << attempt;
    for (int i = 0; i < 50; ++i) {
      uint64_t d = Backoff(1000, attempt);
      EXPECT_GE(d, full / 2);
      EXPECT_LE(d, full);
    }
  }
}

TEST(BackoffTest, SpreadsRetriesThatFailedTogether) {
  std::set<uint64_t> seen;
  for (int i = 0; i < 20; ++i) seen.insert(Backoff(1000, 3));
  EXPECT_GT(seen.size(), 5u);
}

TEST(RetryAfterTest, SecondsDatesAndGarbage) {
  const int64_t now = 1'764'000'000;
  EXPECT_EQ(ParseRetryAfter("120", now), 120);
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), 0);
  EXPECT_EQ(ParseRetryAfter("99999999", now), kMaxRetryAfterSeconds);
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999", now), kMaxRetryAfterSeconds);
  EXPECT_EQ(ParseRetryAfter("Wed, 25 Nov 2026 18:00:00 GMT", 1'795'629'540), 60);
  EXPECT_EQ(ParseRetryAfter("Wed, 25 Nov 2026 18:00:00 GMT", 1'795'629'660), 0);  // past
  EXPECT_EQ(ParseRetryAfter("12abc", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("-5", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("soon", now), std::nullopt);
}

}  // namespace
}  // namespace siterelay::sync
