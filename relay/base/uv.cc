#include "relay/base/uv.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>

namespace siterelay {

Loop::Loop() {
  int rc = uv_loop_init(&loop_);
  if (rc != 0) {
    std::fprintf(stderr, "fatal: uv_loop_init: %s\n", uv_strerror(rc));
    std::abort();
  }
  initialised_ = true;
}

Loop::~Loop() {
  if (!initialised_) return;
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) noexcept {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  (void)uv_loop_close(&loop_);
}

Status Loop::Run() {
  int rc = uv_run(&loop_, UV_RUN_DEFAULT);
  if (rc < 0) return UvError("uv_run", rc);
  return Status::Ok();
}

namespace {

struct WorkRequest {
  uv_work_t req{};
  std::function<void()> work;
  std::function<void()> after;
};

template <typename F>
void CallNoThrow(F& f, const char* where) noexcept {
  try {
    if (f) f();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fatal: exception escaped %s: %s\n", where, e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fatal: exception escaped %s\n", where);
    std::abort();
  }
}

}  // namespace

Status QueueWork(uv_loop_t* loop, std::function<void()> work, std::function<void()> after) {
  auto req = std::make_unique<WorkRequest>();
  req->work = std::move(work);
  req->after = std::move(after);
  req->req.data = req.get();
  int rc = uv_queue_work(
      loop, &req->req,
      [](uv_work_t* r) noexcept {
        CallNoThrow(static_cast<WorkRequest*>(r->data)->work, "thread-pool work");
      },
      [](uv_work_t* r, int) noexcept {
        std::unique_ptr<WorkRequest> owned(static_cast<WorkRequest*>(r->data));
        CallNoThrow(owned->after, "thread-pool completion");
      });
  if (rc != 0) return UvError("uv_queue_work", rc);
  (void)req.release();  // Freed in the completion callback.
  return Status::Ok();
}

struct Timer::Handle {
  uv_timer_t timer{};
  std::function<void()> cb;
};

Timer::Timer(uv_loop_t* loop) : handle_(new Handle) {
  handle_->timer.data = handle_;
  uv_timer_init(loop, &handle_->timer);
}

Timer::~Timer() {
  handle_->cb = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_->timer),
           [](uv_handle_t* h) noexcept { delete static_cast<Handle*>(h->data); });
}

void Timer::Start(uint64_t ms, std::function<void()> cb) {
  handle_->cb = std::move(cb);
  uv_timer_start(
      &handle_->timer,
      [](uv_timer_t* t) noexcept {
        auto* h = static_cast<Handle*>(t->data);
        std::function<void()> run = std::move(h->cb);
        h->cb = nullptr;
        CallNoThrow(run, "timer");
      },
      ms, 0);
}

void Timer::Stop() {
  uv_timer_stop(&handle_->timer);
  handle_->cb = nullptr;
}

bool Timer::active() const {
  return uv_is_active(reinterpret_cast<const uv_handle_t*>(&handle_->timer)) != 0;
}

unsigned ThreadPoolSize() {
  const char* v = std::getenv("UV_THREADPOOL_SIZE");
  if (v == nullptr) return 4;
  long n = std::strtol(v, nullptr, 10);
  if (n < 1) return 1;
  if (n > 1024) return 1024;  // libuv's own ceiling.
  return static_cast<unsigned>(n);
}

}  // namespace siterelay
