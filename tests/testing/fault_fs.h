// FaultInjectingFileSystem: the FileSystem seam of relay/base/fs.h with scripted failures.
//
// Safe for concurrent calls. Passes every call to the real POSIX implementation until the armed operation has been called
// `nth` times; that call fails with `error` (ENOSPC, EIO...). With `crash` set, every call after
// the fault fails too, which models a process that died at that point: nothing it would have done
// afterwards (unlinking temp files, say) happens. Slow() makes every call of an operation wait
// first, as a busy disk would.
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include "relay/base/fs.h"

namespace siterelay::testing {

class FaultInjectingFileSystem final : public FileSystem {
 public:
  enum class Op { kNone, kOpen, kWrite, kFsync, kRename, kFsyncDir, kSyncFs };

  void FailNth(Op op, int nth, int error = EIO, bool crash = false) {
    op_ = op;
    remaining_.store(nth);
    error_ = error;
    crash_ = crash;
    crashed_.store(false);
  }
  // Each later call of `op` waits `ms` before it runs (0: no wait).
  void Slow(Op op, int ms) { delays_[static_cast<int>(op)].store(ms); }
  bool crashed() const { return crashed_; }
  int calls(Op op) const { return counts_[static_cast<int>(op)]; }

  Result<int> Open(const std::string& path, int flags, mode_t mode) override {
    if (Status s = Check(Op::kOpen, "open " + path); !s.ok()) return s;
    return real_->Open(path, flags, mode);
  }
  Status WriteAll(int fd, std::span<const uint8_t> data) override {
    SR_RETURN_IF_ERROR(Check(Op::kWrite, "write"));
    return real_->WriteAll(fd, data);
  }
  Result<size_t> Read(int fd, std::span<uint8_t> data) override {
    if (Status s = Check(Op::kNone, "read"); !s.ok()) return s;
    return real_->Read(fd, data);
  }
  Status Fsync(int fd) override {
    SR_RETURN_IF_ERROR(Check(Op::kFsync, "fsync"));
    return real_->Fsync(fd);
  }
  Status Truncate(int fd, uint64_t size) override {
    SR_RETURN_IF_ERROR(Check(Op::kNone, "ftruncate"));
    return real_->Truncate(fd, size);
  }
  Status SyncFilesystem(const std::string& dir) override {
    SR_RETURN_IF_ERROR(Check(Op::kSyncFs, "syncfs " + dir));
    return real_->SyncFilesystem(dir);
  }
  Status Close(int fd) override {
    // The kernel closes a dead process's fds too, so a "crash" still closes.
    return real_->Close(fd);
  }
  Status Rename(const std::string& from, const std::string& to) override {
    SR_RETURN_IF_ERROR(Check(Op::kRename, "rename " + from));
    return real_->Rename(from, to);
  }
  Status Unlink(const std::string& path) override {
    SR_RETURN_IF_ERROR(Check(Op::kNone, "unlink " + path));
    return real_->Unlink(path);
  }
  Status MakeDirs(const std::string& path) override {
    SR_RETURN_IF_ERROR(Check(Op::kNone, "mkdir " + path));
    return real_->MakeDirs(path);
  }
  Status FsyncDir(const std::string& dir) override {
    SR_RETURN_IF_ERROR(Check(Op::kFsyncDir, "fsync " + dir));
    return real_->FsyncDir(dir);
  }

 private:
  Status Check(Op op, const std::string& what) {
    ++counts_[static_cast<int>(op)];
    if (int ms = delays_[static_cast<int>(op)].load(); ms > 0 && op != Op::kNone) {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
    if (crashed_.load()) return PosixError(what + " (after simulated crash)", EIO);
    if (op != Op::kNone && op == op_ && remaining_.fetch_sub(1) == 1) {
      crashed_.store(crash_);
      return PosixError(what + " (injected)", error_);
    }
    return Status::Ok();
  }

  FileSystem* real_ = FileSystem::Default();
  Op op_ = Op::kNone;
  std::atomic<int> remaining_{0};
  int error_ = EIO;
  bool crash_ = false;
  std::atomic<bool> crashed_{false};
  std::atomic<int> counts_[7] = {};  // the importer calls from several pool threads
  std::atomic<int> delays_[7] = {};
};

}  // namespace siterelay::testing
