// GrowingFile: a blob that is still arriving (DESIGN.md "A read, end to end", step 4). The writer
// (sync's transfer from the origin) appends to a temp file in tmp/; any number of readers (phones
// over any protocol) send from it while it grows, each from a dup() of one read-only fd, so they
// keep their bytes even after the writer renames the file into objects/ or deletes it.
//
// What a reader may send is readable(), not what was written: while the length is known and the
// transfer has not been verified, the last byte is held back. A reader therefore never delivers a
// complete-looking body that later turns out truncated or not matching its digest; a failed
// transfer cuts its readers off short instead (a close for HTTP, an error for TFTP and FTP).
//
// Ownership: shared (std::shared_ptr) between the transfer that fills it and every reader still
// sending from it; the last one out closes the fd.
// Thread safety: loop thread only. Waiters run on the loop thread, from Grow()/Complete()/Fail().
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "relay/base/fs.h"
#include "relay/base/status.h"

namespace siterelay::cache {

class GrowingFile {
 public:
  // `read_fd`: a read-only fd on the temp file. `size`: the final length when the origin said it.
  GrowingFile(ScopedFd read_fd, std::optional<uint64_t> size)
      : fd_(std::move(read_fd)), size_(size) {}
  GrowingFile(const GrowingFile&) = delete;
  GrowingFile& operator=(const GrowingFile&) = delete;

  // A reader's own fd on the same file (for sendfile/pread at explicit offsets).
  Result<ScopedFd> Dup() const;

  std::optional<uint64_t> size() const { return size_; }
  uint64_t written() const { return written_; }
  // Bytes a reader may send now.
  uint64_t readable() const {
    if (complete_ || !size_) return written_;
    return *size_ == 0 ? 0 : std::min(written_, *size_ - 1);
  }
  bool complete() const { return complete_; }
  bool failed() const { return failed_; }
  const Status& error() const { return error_; }

  // Runs `cb` once, as soon as readable() > offset or the file is complete or failed (at once
  // when that is already true).
  void Wait(uint64_t offset, std::function<void()> cb);

  // Writer side.
  void Grow(uint64_t written);
  // Every byte is written and verified: readers may send the rest and end the body.
  void Complete();
  // The transfer failed: readers stop where they are and report the error.
  void Fail(Status why);

 private:
  void Notify();

  ScopedFd fd_;
  std::optional<uint64_t> size_;
  uint64_t written_ = 0;
  bool complete_ = false;
  bool failed_ = false;
  Status error_;
  std::vector<std::pair<uint64_t, std::function<void()>>> waiters_;
};

}  // namespace siterelay::cache
