// FileSystem: the seam between siterelay and the disk for everything that must survive a crash.
//
// Code that writes durable state (objects, the spool) does so through this interface, so tests
// can inject a failing write, fsync or rename (FaultInjectingFileSystem in tests/) and check that
// the invariants of DESIGN.md still hold. Reads on the hot path use plain fds and do not go
// through here.
//
// Thread safety: the Posix implementation is stateless and may be used from any thread.
// Implementations used from the libuv thread pool must be safe for concurrent calls.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>

#include "relay/base/status.h"

namespace siterelay {

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // open(2); returns the fd.
  virtual Result<int> Open(const std::string& path, int flags, mode_t mode) = 0;
  // Writes all of `data` or fails.
  virtual Status WriteAll(int fd, std::span<const uint8_t> data) = 0;
  // Reads up to data.size() bytes at the current offset; 0 means end of file.
  virtual Result<size_t> Read(int fd, std::span<uint8_t> data) = 0;
  virtual Status Fsync(int fd) = 0;
  // ftruncate(2).
  virtual Status Truncate(int fd, uint64_t size) = 0;
  // syncfs(2) on the filesystem holding `dir`: one journal commit for many files' data.
  virtual Status SyncFilesystem(const std::string& dir) = 0;
  virtual Status Close(int fd) = 0;
  // rename(2): atomic replace within one filesystem.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status Unlink(const std::string& path) = 0;
  // mkdir -p; succeeds when the directory exists.
  virtual Status MakeDirs(const std::string& path) = 0;
  // Makes a rename or create inside `dir` durable.
  virtual Status FsyncDir(const std::string& dir) = 0;

  // The process-wide POSIX implementation.
  static FileSystem* Default();
};

// Closes an fd obtained from a FileSystem when it goes out of scope.
class ScopedFd {
 public:
  ScopedFd() = default;
  ScopedFd(FileSystem* fs, int fd) : fs_(fs), fd_(fd) {}
  ~ScopedFd() { Reset(); }
  ScopedFd(ScopedFd&& o) noexcept : fs_(o.fs_), fd_(o.fd_) { o.fd_ = -1; }
  ScopedFd& operator=(ScopedFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fs_ = o.fs_;
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  int get() const { return fd_; }
  // Gives the fd up: the caller closes it from now on.
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes now and reports the error, which a destructor cannot.
  Status Close() {
    if (fd_ < 0) return Status::Ok();
    int fd = fd_;
    fd_ = -1;
    return fs_->Close(fd);
  }
  void Reset() {
    if (fd_ >= 0) (void)fs_->Close(fd_);
    fd_ = -1;
  }

 private:
  FileSystem* fs_ = nullptr;
  int fd_ = -1;
};

// The whole of a (small) file: a settings file to forward, a log batch to send, a password.
// ResourceExhausted past `max_bytes`. Plain POSIX, not the seam: for reads that need no fault
// injection.
Result<std::string> ReadWholeFile(const std::string& path, size_t max_bytes);

}  // namespace siterelay
