#include "cache/growing_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace siterelay::cache {

Result<ScopedFd> GrowingFile::Dup() const {
  int fd = ::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return PosixError("dup", errno);
  return ScopedFd(FileSystem::Default(), fd);
}

void GrowingFile::Wait(uint64_t offset, std::function<void()> cb) {
  if (complete_ || failed_ || readable() > offset) {
    cb();
    return;
  }
  waiters_.emplace_back(offset, std::move(cb));
}

void GrowingFile::Grow(uint64_t written) {
  written_ = written;
  Notify();
}

void GrowingFile::Complete() {
  complete_ = true;
  Notify();
}

void GrowingFile::Fail(Status why) {
  failed_ = true;
  error_ = std::move(why);
  Notify();
}

void GrowingFile::Notify() {
  if (waiters_.empty()) return;
  uint64_t now = readable();
  bool all = complete_ || failed_;
  // A waiter may add itself again from its callback: collect first, then run.
  std::vector<std::function<void()>> ready;
  for (size_t i = 0; i < waiters_.size();) {
    if (all || now > waiters_[i].first) {
      ready.push_back(std::move(waiters_[i].second));
      waiters_[i] = std::move(waiters_.back());
      waiters_.pop_back();
    } else {
      ++i;
    }
  }
  for (auto& cb : ready) cb();
}

}  // namespace siterelay::cache
