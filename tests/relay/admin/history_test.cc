#include "relay/admin/history.h"

#include <gtest/gtest.h>

namespace siterelay::admin {
namespace {

TrafficTotals Totals(uint64_t served, uint64_t origin, uint64_t http) {
  TrafficTotals t;
  t.served_bytes = served;
  t.origin_bytes = origin;
  t.requests[0] = http;
  return t;
}

TEST(TrafficHistoryTest, GrowthGoesToTheBucketTheTimeFallsIn) {
  TrafficHistory h;
  int64_t t0 = 1'800'000'000;  // a multiple of 300
  h.Sample(t0 + 10, Totals(100, 40, 2));
  h.Sample(t0 + 200, Totals(150, 40, 3));  // same bucket
  const cache::TrafficRecord& b = h.Sample(t0 + 310, Totals(400, 90, 7));
  EXPECT_EQ(b.t, t0 + 300);
  auto buckets = h.Buckets(t0 + 310);
  ASSERT_EQ(buckets.size(), 2u);
  EXPECT_EQ(buckets[0].t, t0);
  EXPECT_EQ(buckets[0].served_bytes, 150u);
  EXPECT_EQ(buckets[0].origin_bytes, 40u);
  EXPECT_EQ(buckets[0].requests[0], 3u);
  EXPECT_EQ(buckets[1].served_bytes, 250u);
  EXPECT_EQ(buckets[1].origin_bytes, 50u);
  EXPECT_EQ(buckets[1].requests[0], 4u);
}

TEST(TrafficHistoryTest, KeepsTwentyFourHours) {
  TrafficHistory h;
  int64_t t0 = 1'800'000'000;
  h.Sample(t0, Totals(1, 0, 0));
  h.Sample(t0 + 3600, Totals(2, 0, 0));
  int64_t later = t0 + TrafficHistory::kSpanSeconds;  // t0's bucket is 24 h old now
  auto buckets = h.Buckets(later);
  ASSERT_EQ(buckets.size(), 1u);
  EXPECT_EQ(buckets[0].t, t0 + 3600);
  h.Sample(later, Totals(3, 0, 0));
  EXPECT_EQ(h.Buckets(later).size(), 2u);
  EXPECT_EQ(TrafficHistory::KeepSince(later), t0 + 300);
}

TEST(TrafficHistoryTest, RestoredBucketsAreContinuedFromZeroCounters) {
  int64_t t0 = 1'800'000'000;
  cache::TrafficRecord old;
  old.t = t0;
  old.served_bytes = 500;
  TrafficHistory h;
  h.Restore({old});
  // A restarted relay's counters start at zero: its first totals are all new traffic.
  h.Sample(t0 + 20, Totals(30, 0, 1));
  auto buckets = h.Buckets(t0 + 20);
  ASSERT_EQ(buckets.size(), 1u);
  EXPECT_EQ(buckets[0].served_bytes, 530u);
}

TEST(TrafficHistoryTest, AClockSteppedBackKeepsAddingToTheNewestBucket) {
  int64_t t0 = 1'800'000'000;
  TrafficHistory h;
  h.Sample(t0 + 600, Totals(10, 0, 0));
  const cache::TrafficRecord& b = h.Sample(t0, Totals(15, 0, 0));
  EXPECT_EQ(b.t, t0 + 600);
  EXPECT_EQ(b.served_bytes, 15u);
  EXPECT_EQ(h.Buckets(t0 + 600).size(), 1u);
}

}  // namespace
}  // namespace siterelay::admin
