// RAII over libuv: a loop that is closed properly, and work sent to the libuv thread pool.
//
// libuv rule kept here (docs/src/design.rst): a handle's or request's memory is freed only in
// its close or completion callback. If a call returns an error its callback never runs;
// otherwise it runs exactly once, on the loop thread.
// Thread safety: a Loop and everything on it belong to the thread that runs it.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>

#include "relay/base/status.h"

namespace siterelay {

class Loop {
 public:
  Loop();
  ~Loop();  // Closes every handle still open and runs the loop until they are freed.
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_t* get() { return &loop_; }
  // Runs until no active handles or requests remain.
  Status Run();

 private:
  uv_loop_t loop_{};
  bool initialised_ = false;
};

// Runs `work` on the libuv thread pool, then `after` on the loop thread. Neither may throw
// (a throw would cross libuv's C frames): they are wrapped, and an escaping exception is fatal.
Status QueueWork(uv_loop_t* loop, std::function<void()> work, std::function<void()> after);

// A one-shot timer owned by an object that may go away first: destroying the Timer cancels it,
// and the uv_timer_t lives until its close callback (libuv's rule) without touching the owner.
class Timer {
 public:
  explicit Timer(uv_loop_t* loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Runs `cb` once on the loop thread after `ms`, replacing any earlier Start().
  void Start(uint64_t ms, std::function<void()> cb);
  void Stop();
  bool active() const;

 private:
  struct Handle;
  Handle* handle_;  // freed in its close callback
};

// The number of threads in libuv's pool (UV_THREADPOOL_SIZE, default 4).
unsigned ThreadPoolSize();

}  // namespace siterelay
