// Running a test's libuv loop until what it waits for has happened (libuv's test style: run
// until a condition, never sleep for a guessed time), bounded so a bug fails instead of hanging.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

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

// Runs `client` (blocking socket code, as a phone) on a thread of its own while the test's thread
// runs `loop`, until the client is done.
inline void RunWithClient(uv_loop_t* loop, const std::function<void()>& client) {
  std::atomic<bool> done{false};
  std::thread t([&] {
    client();
    done = true;
  });
  while (!done) uv_run(loop, UV_RUN_NOWAIT), ::usleep(200);
  t.join();
}

}  // namespace siterelay::testing
