// RateLimiter: the thin WAN's budget (CONTRACT.md [origin] max_rate), shared by every upstream
// byte: all downloads now, the uploads of the outbox and the log shipper later. A token bucket
// refilled at `rate` bytes/s from the loop's clock. A chunk is let through whole while the
// bucket is not empty (it may go into debt by one chunk), which keeps the long-run average exact
// and the granularity one curl buffer; transfers that find it empty pause and are resumed, in
// priority order, once it refills.
//
// Priority (issue: "phone-facing misses are scheduled ahead of background prefetch"): while any
// phone-facing transfer is running, background transfers (manifest downloads, prefetch) take
// nothing at all, whatever the rate; they resume when the last phone-facing transfer ends.
//
// Ownership: owned by the Fetcher; resume callbacks belong to transfers, which Cancel() theirs
// before they go. Thread safety: loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "relay/base/uv.h"

namespace siterelay::sync {

class RateLimiter {
 public:
  // `rate` bytes/s; 0 means no cap (priorities still apply).
  RateLimiter(uv_loop_t* loop, uint64_t rate);

  uint64_t rate() const { return rate_; }

  // May a transfer take `n` bytes now? True: they are counted. False: pause, and Wait().
  bool Take(uint64_t n, bool background);
  // Runs `resume` once when a paused transfer may try again. `id` identifies the waiter for
  // Cancel(); one wait per id.
  void Wait(const void* id, bool background, std::function<void()> resume);
  void Cancel(const void* id);
  // A waiting background transfer became phone-facing (a phone asked for the same file).
  void Promote(const void* id);

  // Phone-facing transfers in flight (they hold background ones back).
  void ForegroundStarted() { ++foreground_; }
  void ForegroundEnded();
  size_t foreground() const { return foreground_; }

 private:
  void Refill();
  void Schedule();
  void WakeUp();

  uv_loop_t* loop_;
  uint64_t rate_;
  double tokens_ = 0;     // may go negative: the debt of the last chunk let through
  double burst_ = 0;      // ceiling of saved-up tokens
  uint64_t last_ms_ = 0;  // uv_now() of the last refill
  size_t foreground_ = 0;
  struct Waiter {
    bool background;
    std::function<void()> resume;
  };
  std::map<const void*, Waiter> waiters_;
  std::unique_ptr<Timer> timer_;
};

}  // namespace siterelay::sync
