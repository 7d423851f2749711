// PowerLossFileSystem: the FileSystem seam of relay/base/fs.h over one data_dir, with a power cut.
//
// Every call goes to the real POSIX implementation, and the file system keeps, beside the real
// tree, a model of what a disk would still hold after the power went:
//   - a file's bytes count as durable as of its last Fsync() (or a SyncFilesystem()); what was
//     written after that is lost at a power cut;
//   - a directory entry (a file created, renamed into place, or unlinked) counts only once
//     FsyncDir() of its directory ran after it. Before that a cut undoes it: a created file
//     vanishes, a rename is reverted, an unlinked file comes back with its durable bytes. A rename
//     is one journal operation: FsyncDir() of either of its directories makes both of its sides
//     durable;
//   - SyncFilesystem() (syncfs) makes everything durable, bytes and entries.
// CutPower() cuts the power: from then on every call fails with EIO, as for a process that died
// (FaultInjectingFileSystem's crash mode), except Close(), since the kernel closes a dead
// process's fds. CutAfter(n) arms the cut at the n-th mutating call from now (open for writing,
// write, fsync, ftruncate, syncfs, rename, unlink, fsync of a directory), so a test can sweep or
// randomise the point; the n-th call itself already fails. Restore(), once every fd is closed,
// rewrites the real tree to exactly the durable state, so what opens it next sees what a machine
// would see when the power came back, and starts the model afresh from there (the file system can
// be used for another life).
//
// The model works on the files under `root` only; other paths pass through. Durable copies are
// kept in memory (files here are small: settings, logs, batches). Inodes are the model's own,
// not the kernel's, so a reused inode number never merges two files; an entry the model has not
// seen made (a file created around the seam) has no durable bytes and no durable name until a
// FsyncDir() of its folder — which is exactly how a write that bypasses the seam is caught.
//
// Simplifications, each on the side of what siterelay's start-up and the tests need:
//   - folders made with MakeDirs() are taken as durable at once: siterelay makes them at start-up
//     before it acknowledges anything, and journaling file systems commit them in order with the
//     first fsync that follows. Restore() never removes a folder;
//   - by default the real fsync, syncfs and directory fsync are not issued (the model decides what
//     survives; the real sync would only cost time). `real_syncs` issues them too;
//   - SQLite (catalog.db and its -wal/-shm, and the lock file) does not go through the seam and is
//     left alone: treat it as what it is, durable per committed transaction (WAL,
//     synchronous=FULL). Its loss is not simulated.
//
// Limitation — SQLite keeps working after CutPower(). The code under test may still commit
// catalog transactions after the cut (an upload published, a batch recorded or deleted, an entry
// marked forwarded), which a machine without power would not. The state left is still one a real
// machine can reach: a disk that fails every call with EIO from the cut on, and a power cut once
// the process has gone quiet — the durable files are the same in both, since no failed call
// changes them. So a test must treat every success the code reports, before or after the cut, as
// a promise (tests/sync/power_loss_test.cc does): a success after the cut may rest only on what
// was durable before it, and a catalog row written after a failed file operation must be one the
// code would also write after a real crash. The converse does not hold: a real cut stops SQLite at
// the same instant, so "the file is durable, the catalog commit that was to follow it is not"
// (a batch file not yet recorded, a blob installed but not published) never comes out of this
// harness, since the commit always happens. Start-up's handling of those states (stray batch
// files, objects no entry names) is covered by the shipper's and the cache's own tests.
//
// Thread safety: every method may be called from any thread (the libuv pool calls concurrently);
// one mutex serialises the calls, real syscall included, so the model follows the real order.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "relay/base/fs.h"

namespace siterelay::testing {

class PowerLossFileSystem final : public FileSystem {
 public:
  // Takes the files now under `root` as durable.
  explicit PowerLossFileSystem(std::string root, bool real_syncs = false)
      : root_(Normal(root)), real_syncs_(real_syncs) {
    std::lock_guard<std::mutex> lock(mu_);
    Snapshot();
  }

  // From now on every call fails: the machine has no power.
  void CutPower() {
    std::lock_guard<std::mutex> lock(mu_);
    cut_.store(true);
  }
  // The n-th mutating call from now (n >= 1) is the first to fail.
  void CutAfter(uint64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    cut_after_ = n;
  }
  bool cut() const { return cut_.load(); }
  // Mutating calls since construction or the last Restore().
  uint64_t mutating_calls() const { return mutating_calls_.load(); }

  // The power is back: rewrites the real tree under root to the durable state (files not in it
  // removed, files in it given their durable bytes) and starts a new life from there. Every fd
  // obtained from this file system must be closed.
  void Restore() {
    std::lock_guard<std::mutex> lock(mu_);
    namespace fs = std::filesystem;
    std::vector<std::string> present;
    for (auto it = fs::recursive_directory_iterator(root_);
         it != fs::recursive_directory_iterator(); ++it) {
      if (it->is_regular_file() || it->is_symlink()) present.push_back(Normal(it->path()));
    }
    for (const std::string& p : present) {
      if (!Ignored(p) && durable_names_.count(p) == 0) ::unlink(p.c_str());
    }
    for (const auto& [path, inode] : durable_names_) {
      fs::create_directories(fs::path(path).parent_path());
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) std::abort();  // the test's own temp dir: nothing to recover from
      const std::string& bytes = inodes_[inode];
      if (!bytes.empty() &&
          ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
        std::abort();
      }
      ::close(fd);
    }
    Snapshot();
    fds_.clear();
    pending_renames_.clear();
    cut_after_ = 0;
    mutating_calls_.store(0);
    cut_.store(false);
  }

  // ---- FileSystem ----

  Result<int> Open(const std::string& path, int flags, mode_t mode) override {
    std::lock_guard<std::mutex> lock(mu_);
    bool mutating = (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)) != 0;
    SR_RETURN_IF_ERROR(Check(mutating, "open " + path));
    std::string p = Normal(path);
    struct stat st;
    bool existed = ::lstat(p.c_str(), &st) == 0;
    auto fd = real_->Open(path, flags, mode);
    if (!fd.ok() || !Tracked(p)) return fd;
    auto it = current_.find(p);
    if (!existed || it == current_.end()) {
      // Made by this call (or around the seam): its name and bytes are durable only later.
      it = current_.insert_or_assign(p, NewInode()).first;
    }
    fds_[*fd] = it->second;
    return fd;
  }

  Status WriteAll(int fd, std::span<const uint8_t> data) override {
    std::lock_guard<std::mutex> lock(mu_);
    SR_RETURN_IF_ERROR(Check(true, "write"));
    return real_->WriteAll(fd, data);
  }

  Result<size_t> Read(int fd, std::span<uint8_t> data) override {
    std::lock_guard<std::mutex> lock(mu_);
    SR_RETURN_IF_ERROR(Check(false, "read"));
    return real_->Read(fd, data);
  }

  Status Fsync(int fd) override {
    std::lock_guard<std::mutex> lock(mu_);
    SR_RETURN_IF_ERROR(Check(true, "fsync"));
    if (real_syncs_) SR_RETURN_IF_ERROR(real_->Fsync(fd));
    auto it = fds_.find(fd);
    if (it != fds_.end()) inodes_[it->second] = ReadAll("/proc/self/fd/" + std::to_string(fd));
    return Status::Ok();
  }

  Status Truncate(int fd, uint64_t size) override {
    std::lock_guard<std::mutex> lock(mu_);
    SR_RETURN_IF_ERROR(Check(true, "ftruncate"));
    return real_->Truncate(fd, size);
  }

  Status SyncFilesystem(const std::string& dir) override {
    std::lock_guard<std::mutex> lock(mu_);
    SR_RETURN_IF_ERROR(Check(true, "syncfs " + dir));
    if (real_syncs_) SR_RETURN_IF_ERROR(real_->SyncFilesystem(dir));
    // Every entry and every file's bytes, as they are now.
    namespace fs = std::filesystem;
    for (auto it = fs::recursive_directory_iterator(root_);
         it != fs::recursive_directory_iterator(); ++it) {
      if (it->is_directory()) Reconcile(Normal(it->path()));
    }
    Reconcile(root_);
    durable_names_ = current_;
    for (const auto& [path, inode] : current_) inodes_[inode] = ReadAll(path);
    for (const auto& [fd, inode] : fds_) {
      inodes_[inode] = ReadAll("/proc/self/fd/" + std::to_string(fd));
    }
    pending_renames_.clear();
    return Status::Ok();
  }

  Status Close(int fd) override {
    std::lock_guard<std::mutex> lock(mu_);
    fds_.erase(fd);
    return real_->Close(fd);
  }

  Status Rename(const std::string& from, const std::string& to) override {
    std::lock_guard<std::mutex> lock(mu_);
    SR_RETURN_IF_ERROR(Check(true, "rename " + from));
    SR_RETURN_IF_ERROR(real_->Rename(from, to));
    std::string f = Normal(from), t = Normal(to);
    if (!Tracked(f) || !Tracked(t)) return Status::Ok();
    auto it = current_.find(f);
    int64_t inode = it == current_.end() ? NewInode() : it->second;
    if (it != current_.end()) current_.erase(it);
    current_[t] = inode;
    pending_renames_.emplace_back(f, t);
    return Status::Ok();
  }

  Status Unlink(const std::string& path) override {
    std::lock_guard<std::mutex> lock(mu_);
    SR_RETURN_IF_ERROR(Check(true, "unlink " + path));
    SR_RETURN_IF_ERROR(real_->Unlink(path));
    current_.erase(Normal(path));
    return Status::Ok();
  }

  Status MakeDirs(const std::string& path) override {
    std::lock_guard<std::mutex> lock(mu_);
    SR_RETURN_IF_ERROR(Check(false, "mkdir " + path));
    return real_->MakeDirs(path);
  }

  Status FsyncDir(const std::string& dir) override {
    std::lock_guard<std::mutex> lock(mu_);
    SR_RETURN_IF_ERROR(Check(true, "fsync " + dir));
    if (real_syncs_) SR_RETURN_IF_ERROR(real_->FsyncDir(dir));
    std::string d = Normal(dir);
    if (d != root_ && !Tracked(d)) return Status::Ok();
    Reconcile(d);
    // The folder's entries become what they are now.
    for (auto it = durable_names_.begin(); it != durable_names_.end();) {
      if (Parent(it->first) == d && current_.count(it->first) == 0) {
        it = durable_names_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [path, inode] : current_) {
      if (Parent(path) == d) durable_names_[path] = inode;
    }
    // A rename in or out of this folder is durable as a whole: its other side too.
    for (auto it = pending_renames_.begin(); it != pending_renames_.end();) {
      if (Parent(it->first) != d && Parent(it->second) != d) {
        ++it;
        continue;
      }
      for (const std::string& side : {it->first, it->second}) {
        auto cur = current_.find(side);
        if (cur == current_.end()) {
          durable_names_.erase(side);
        } else {
          durable_names_[side] = cur->second;
        }
      }
      it = pending_renames_.erase(it);
    }
    return Status::Ok();
  }

 private:
  static std::string Normal(const std::filesystem::path& p) {
    std::string s = p.lexically_normal().string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s;
  }
  static std::string Parent(const std::string& p) {
    size_t slash = p.rfind('/');
    return slash == std::string::npos ? std::string() : p.substr(0, slash);
  }
  // The catalog and the lock are SQLite's and flock's, not the seam's: left alone.
  bool Ignored(const std::string& p) const {
    std::string rel = p.substr(root_.size() + 1);
    return rel == "lock" || rel.rfind("catalog.db", 0) == 0;
  }
  bool Tracked(const std::string& p) const {
    return p.size() > root_.size() + 1 && p.compare(0, root_.size(), root_) == 0 &&
           p[root_.size()] == '/' && !Ignored(p);
  }

  Status Check(bool mutating, const std::string& what) {
    if (mutating) {
      mutating_calls_.fetch_add(1);
      if (cut_after_ > 0 && --cut_after_ == 0) cut_.store(true);
    }
    if (cut_.load()) return PosixError(what + " (power cut)", EIO);
    return Status::Ok();
  }

  int64_t NewInode() {
    inodes_[next_inode_] = std::string();
    return next_inode_++;
  }

  static std::string ReadAll(const std::string& path) {
    std::string out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return out;
    char buf[64 * 1024];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
  }

  // Brings the model's view of folder `d` in line with the real one: entries made or removed
  // around the seam. A name the model never saw made gets a new inode with no durable bytes.
  void Reconcile(const std::string& d) {
    std::set<std::string> real_names;
    if (DIR* dir = ::opendir(d.c_str())) {
      while (dirent* e = ::readdir(dir)) {
        std::string p = d + "/" + e->d_name;
        struct stat st;
        if (::lstat(p.c_str(), &st) != 0 || S_ISDIR(st.st_mode) || !Tracked(p)) continue;
        real_names.insert(p);
      }
      ::closedir(dir);
    }
    for (auto it = current_.begin(); it != current_.end();) {
      if (Parent(it->first) == d && real_names.count(it->first) == 0) {
        it = current_.erase(it);
      } else {
        ++it;
      }
    }
    for (const std::string& p : real_names) {
      if (current_.count(p) == 0) current_[p] = NewInode();
    }
  }

  // The real tree as it is, all durable.
  void Snapshot() {
    inodes_.clear();
    current_.clear();
    namespace fs = std::filesystem;
    for (auto it = fs::recursive_directory_iterator(root_);
         it != fs::recursive_directory_iterator(); ++it) {
      if (!it->is_regular_file()) continue;
      std::string p = Normal(it->path());
      if (!Tracked(p)) continue;
      int64_t inode = NewInode();
      inodes_[inode] = ReadAll(p);
      current_[p] = inode;
    }
    durable_names_ = current_;
  }

  const std::string root_;
  const bool real_syncs_;
  FileSystem* real_ = FileSystem::Default();
  std::mutex mu_;
  std::atomic<bool> cut_{false};
  std::atomic<uint64_t> mutating_calls_{0};
  uint64_t cut_after_ = 0;  // 0: not armed
  int64_t next_inode_ = 1;
  std::map<int64_t, std::string> inodes_;         // inode -> its durable bytes
  std::map<std::string, int64_t> current_;        // the real tree's names -> inodes
  std::map<std::string, int64_t> durable_names_;  // the names a power cut would leave
  std::map<int, int64_t> fds_;                    // open fds -> inodes
  std::vector<std::pair<std::string, std::string>> pending_renames_;  // not yet durable
};

}  // namespace siterelay::testing
