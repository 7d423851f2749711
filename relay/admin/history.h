// The console's 24-hour traffic history (issue 8): bytes served to phones against bytes fetched
// from the origin, and requests per protocol, in 5-minute buckets. The relay's counters only
// ever grow while it runs; Sample() turns their growth into the bucket the time falls in. The
// catalog keeps the buckets (traffic_history) so a restart does not blank the charts; serve.cc
// samples every minute and saves the bucket it got back.
//
// Pure: no clock, no I/O. Loop thread.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "cache/catalog.h"

namespace siterelay::admin {

// The counters the history follows, as totals since the process started.
struct TrafficTotals {
  uint64_t served_bytes = 0;
  uint64_t origin_bytes = 0;
  uint64_t requests[4] = {};  // http, https, tftp, ftp
};

class TrafficHistory {
 public:
  static constexpr int64_t kBucketSeconds = 300;
  static constexpr int64_t kSpanSeconds = 24 * 3600;

  // Buckets kept from an earlier run, oldest first (the catalog's).
  void Restore(std::vector<cache::TrafficRecord> buckets);
  // Adds what the totals grew by since the last sample to the bucket `now` falls in, and returns
  // that bucket. The first sample counts from zero: the process's counters start there.
  const cache::TrafficRecord& Sample(int64_t now, const TrafficTotals& totals);
  // The buckets of the 24 hours up to `now`, oldest first; ones without traffic are missing.
  std::vector<cache::TrafficRecord> Buckets(int64_t now) const;
  // The first bucket start still inside the span at `now`: older ones can go.
  static int64_t KeepSince(int64_t now) { return BucketOf(now) - kSpanSeconds + kBucketSeconds; }

 private:
  static int64_t BucketOf(int64_t t) {
    int64_t b = t - t % kBucketSeconds;
    return t < 0 && t % kBucketSeconds != 0 ? b - kBucketSeconds : b;
  }
  std::deque<cache::TrafficRecord> buckets_;  // oldest first, at most one per bucket start
  TrafficTotals last_;
};

}  // namespace siterelay::admin
