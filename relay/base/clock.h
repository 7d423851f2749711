// Clock: wall time in whole seconds since the Unix epoch, injectable for tests.
// Freshness, negative caching, LRU order and log batch ages all read it; nothing compares
// monotonic and wall times. Thread safety: SystemClock is safe from any thread.
#pragma once

#include <cstdint>

namespace siterelay {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowSeconds() const = 0;
  static Clock* System();
};

// A clock tests advance by hand.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now = 1'700'000'000) : now_(now) {}
  int64_t NowSeconds() const override { return now_; }
  void Advance(int64_t seconds) { now_ += seconds; }
  void Set(int64_t now) { now_ = now; }

 private:
  int64_t now_;
};

}  // namespace siterelay
