#include "relay/base/uv.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace siterelay {
namespace {

TEST(QueueWorkTest, RunsWorkOffTheLoopThreadThenAfterOnIt) {
  Loop loop;
  std::thread::id loop_thread = std::this_thread::get_id();
  std::atomic<int> work_runs{0};
  int after_runs = 0;
  bool work_off_loop = false;
  bool after_on_loop = false;
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(QueueWork(
                    loop.get(),
                    [&] {
                      work_off_loop = std::this_thread::get_id() != loop_thread;
                      ++work_runs;
                    },
                    [&] {
                      after_on_loop = std::this_thread::get_id() == loop_thread;
                      ++after_runs;
                    })
                    .ok());
  }
  ASSERT_TRUE(loop.Run().ok());  // returns when every completion ran: no sleeps
  EXPECT_EQ(work_runs.load(), 8);
  EXPECT_EQ(after_runs, 8);
  EXPECT_TRUE(work_off_loop);
  EXPECT_TRUE(after_on_loop);
}

}  // namespace
}  // namespace siterelay
