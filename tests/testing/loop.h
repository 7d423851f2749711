// Running a test's libuv loop until what it waits for has happened (libuv's test style: run
// until a condition, never sleep for a guessed time), bounded so a bug fails instead of hanging.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <functional>

namespace siterelay::testing {

// Runs `loop` until `done()` holds; false (and a test failure) after `limit`.
inline bool RunUntil(uv_loop_t* loop, const std::function<bool()>& done,
                     std::chrono::seconds limit = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    uv_run(loop, UV_RUN_NOWAIT);
    if (!done()) ::usleep(1000);  // other threads (a fake origin) do the work meanwhile
  }
  EXPECT_TRUE(done()) << "timed out";
  return done();
}

}  // namespace siterelay::testing
