#include "sync/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace siterelay::sync {

RateLimiter::RateLimiter(uv_loop_t* loop, uint64_t rate)
    : loop_(loop), rate_(rate), timer_(std::make_unique<Timer>(loop)) {
  // A fifth of a second of savings: enough to smooth scheduling jitter, too little to let a
  // burst break the 10%-over-10-s promise.
  burst_ = std::max(16.0 * 1024, static_cast<double>(rate) / 5);
  tokens_ = burst_;
  last_ms_ = uv_now(loop_);
}

void RateLimiter::Refill() {
  uint64_t now = uv_now(loop_);
  if (now > last_ms_) {
    tokens_ = std::min(burst_, tokens_ + static_cast<double>(rate_) *
                                             static_cast<double>(now - last_ms_) / 1000.0);
    last_ms_ = now;
  }
}

bool RateLimiter::Take(uint64_t n, bool background) {
  if (background && foreground_ > 0) return false;
  if (rate_ == 0) return true;
  Refill();
  if (tokens_ <= 0) return false;
  tokens_ -= static_cast<double>(n);
  return true;
}

void RateLimiter::Wait(const void* id, bool background, std::function<void()> resume) {
  waiters_[id] = Waiter{background, std::move(resume)};
  Schedule();
}

void RateLimiter::Cancel(const void* id) { waiters_.erase(id); }

void RateLimiter::Promote(const void* id) {
  auto it = waiters_.find(id);
  if (it == waiters_.end() || !it->second.background) return;
  it->second.background = false;
  Schedule();
}

void RateLimiter::ForegroundEnded() {
  if (foreground_ > 0) --foreground_;
  if (foreground_ == 0) Schedule();  // background transfers may go on
}

void RateLimiter::Schedule() {
  if (waiters_.empty()) return;
  uint64_t delay = 0;
  if (rate_ != 0) {
    Refill();
    if (tokens_ <= 0) {
      // One millisecond past the debt, so the bucket is above zero when the timer fires.
      delay = static_cast<uint64_t>(std::ceil(-tokens_ * 1000.0 / static_cast<double>(rate_))) + 1;
    }
  }
  // From the timer, never from inside a libcurl callback: resuming calls curl_easy_pause().
  timer_->Start(delay, [this] { WakeUp(); });
}

void RateLimiter::WakeUp() {
  // Phone-facing transfers first; background ones only when none is running.
  std::vector<std::function<void()>> wake;
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->second.background && foreground_ > 0) {
      ++it;
      continue;
    }
    wake.push_back(std::move(it->second.resume));
    it = waiters_.erase(it);
  }
  for (auto& w : wake) w();  // each may take tokens, or pause and wait again
}

}  // namespace siterelay::sync
