#include "relay/base/uv.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace siterelay {
namespace {

TEST(QueueWorkTest, RunsWorkOffTheLoopThreadThenAfterOnIt) {
  Loop loop;
  std::thread::id loop_thread = std::this_thread::get_id();
  // The works run on several pool threads at once: what they count is atomic (TSan found the
  // plain bool this once was).
  std::atomic<int> work_runs{0};
  std::atomic<int> work_off_loop{0};
  int after_runs = 0;
  int after_on_loop = 0;
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(QueueWork(
                    loop.get(),
                    [&] {
                      if (std::this_thread::get_id() != loop_thread) ++work_off_loop;
                      ++work_runs;
                    },
                    [&] {
                      if (std::this_thread::get_id() == loop_thread) ++after_on_loop;
                      ++after_runs;
                    })
                    .ok());
  }
  ASSERT_TRUE(loop.Run().ok());  // returns when every completion ran: no sleeps
  EXPECT_EQ(work_runs.load(), 8);
  EXPECT_EQ(after_runs, 8);
  EXPECT_EQ(work_off_loop.load(), 8);
  EXPECT_EQ(after_on_loop, 8);
}

}  // namespace
}  // namespace siterelay
