#include "sync/rate_limiter.h"

#include <gtest/gtest.h>

#include <chrono>

#include "relay/base/uv.h"

namespace siterelay::sync {
namespace {

using std::chrono::steady_clock;

double SecondsSince(steady_clock::time_point t) {
  return std::chrono::duration<double>(steady_clock::now() - t).count();
}

TEST(RateLimiterTest, NoCapLetsEverythingThrough) {
  Loop loop;
  RateLimiter r(loop.get(), 0);
  EXPECT_TRUE(r.Take(1ull << 40, false));
  EXPECT_TRUE(r.Take(1ull << 40, true));
}

TEST(RateLimiterTest, DebtIsPaidBackAtTheRateBeforeAnyoneMayGoOn) {
  Loop loop;
  RateLimiter r(loop.get(), 1'000'000);  // 1 MB/s, 200 kB of savings
  auto start = steady_clock::now();
  EXPECT_TRUE(r.Take(1'000'000, false));  // a chunk goes through whole, into debt
  EXPECT_FALSE(r.Take(1, false));
  bool resumed = false;
  r.Wait(&resumed, false, [&] { resumed = true; });
  while (!resumed) uv_run(loop.get(), UV_RUN_ONCE);
  double took = SecondsSince(start);
  EXPECT_GE(took, 0.75);  // 800 kB of debt at 1 MB/s
  EXPECT_LT(took, 3.0);
  EXPECT_TRUE(r.Take(1, false));
}

TEST(RateLimiterTest, BackgroundWaitsWhilePhoneFacingTransfersRun) {
  Loop loop;
  RateLimiter r(loop.get(), 0);
  r.ForegroundStarted();
  EXPECT_FALSE(r.Take(100, true));
  EXPECT_TRUE(r.Take(100, false));
  bool resumed = false;
  r.Wait(&resumed, true, [&] { resumed = true; });
  uv_run(loop.get(), UV_RUN_NOWAIT);
  EXPECT_FALSE(resumed);
  r.ForegroundEnded();
  while (!resumed) uv_run(loop.get(), UV_RUN_ONCE);
  EXPECT_TRUE(r.Take(100, true));
}

TEST(RateLimiterTest, PromotedWaiterNoLongerWaitsForTheForeground) {
  Loop loop;
  RateLimiter r(loop.get(), 0);
  r.ForegroundStarted();  // someone else's phone-facing transfer
  bool resumed = false;
  r.Wait(&resumed, true, [&] { resumed = true; });
  r.Promote(&resumed);
  while (!resumed) uv_run(loop.get(), UV_RUN_ONCE);
  r.Cancel(&resumed);  // after the wake-up: nothing left to cancel, and no harm
}

}  // namespace
}  // namespace siterelay::sync
