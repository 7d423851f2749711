#include "relay/admin/history.h"

#include <algorithm>

namespace siterelay::admin {
namespace {

uint64_t Growth(uint64_t now, uint64_t before) { return now > before ? now - before : 0; }

}  // namespace

void TrafficHistory::Restore(std::vector<cache::TrafficRecord> buckets) {
  std::sort(buckets.begin(), buckets.end(),
            [](const cache::TrafficRecord& a, const cache::TrafficRecord& b) { return a.t < b.t; });
  buckets_.assign(buckets.begin(), buckets.end());
}

const cache::TrafficRecord& TrafficHistory::Sample(int64_t now, const TrafficTotals& totals) {
  int64_t t = BucketOf(now);
  // A clock stepped back lands in an older bucket: keep adding to the newest instead, so the
  // buckets stay in order.
  if (!buckets_.empty() && t < buckets_.back().t) t = buckets_.back().t;
  if (buckets_.empty() || buckets_.back().t != t) {
    cache::TrafficRecord fresh;
    fresh.t = t;
    buckets_.push_back(fresh);
  }
  cache::TrafficRecord& b = buckets_.back();
  b.served_bytes += Growth(totals.served_bytes, last_.served_bytes);
  b.origin_bytes += Growth(totals.origin_bytes, last_.origin_bytes);
  for (int i = 0; i < 4; ++i) b.requests[i] += Growth(totals.requests[i], last_.requests[i]);
  last_ = totals;
  int64_t keep = KeepSince(now);
  while (buckets_.size() > 1 && buckets_.front().t < keep) buckets_.pop_front();
  return buckets_.back();
}

std::vector<cache::TrafficRecord> TrafficHistory::Buckets(int64_t now) const {
  int64_t keep = KeepSince(now);
  std::vector<cache::TrafficRecord> out;
  for (const cache::TrafficRecord& b : buckets_) {
    if (b.t >= keep) out.push_back(b);
  }
  return out;
}

}  // namespace siterelay::admin
