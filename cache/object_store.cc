#include "cache/object_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>

#include "relay/base/log.h"

namespace siterelay::cache {
namespace {

constexpr size_t kHashBufferBytes = 1 << 20;

std::string FanoutDir(const std::string& objects_dir, const std::string& hex) {
  return objects_dir + "/" + hex.substr(0, 2);
}

}  // namespace

// ---- BlobWriter ------------------------------------------------------------------------------

BlobWriter::BlobWriter(ObjectStore* store, ScopedFd fd, std::string tmp_path)
    : store_(store), fd_(std::move(fd)), tmp_path_(std::move(tmp_path)) {}

BlobWriter::~BlobWriter() {
  if (!done_) Discard();
}

void BlobWriter::Discard() {
  done_ = true;
  fd_.Reset();
  Status s = store_->fs_->Unlink(tmp_path_);
  if (!s.ok() && !s.Is(StatusCode::kNotFound)) {
    // Left for start-up to clean; nothing is published from tmp/.
    SR_LOG(kWarning) << "cache: cannot remove " << tmp_path_ << ": " << s.ToString();
  }
}

Status BlobWriter::Append(std::span<const uint8_t> data) {
  if (done_) return Status::Internal("append to a finished blob");
  Status s = store_->fs_->WriteAll(fd_.get(), data);
  if (!s.ok()) return s.Annotate(tmp_path_);
  hash_.Update(data);
  size_ += data.size();
  return Status::Ok();
}

Result<Digest> BlobWriter::Commit(const Digest* expected) {
  if (done_) return Status::Internal("commit of a finished blob");
  Digest digest = hash_.Finish();
  if (expected != nullptr && *expected != digest) {
    Discard();
    return Status::Corruption("content hashes to " + digest.Hex() + ", expected " +
                              expected->Hex());
  }
  // Data first, then the name: a rename that reaches the disk before the data would leave an
  // object that does not hash to its name after a power cut.
  Status s = store_->fs_->Fsync(fd_.get());
  if (s.ok()) s = fd_.Close();
  if (!s.ok()) {
    Discard();
    return s.Annotate(tmp_path_);
  }
  std::string hex = digest.Hex();
  std::string dir = FanoutDir(store_->objects_dir_, hex);
  std::string final_path = dir + "/" + hex;
  struct stat st;
  if (::stat(final_path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == size_) {
    // Same content already stored: keep the existing file, which is already durable.
    Discard();
    return digest;
  }
  s = store_->fs_->Rename(tmp_path_, final_path);
  if (!s.ok()) {
    // As after a crash: the temp file stays in tmp/ until start-up or Discard removes it.
    Discard();
    return s;
  }
  done_ = true;
  s = store_->fs_->FsyncDir(dir);
  if (!s.ok()) return s;
  return digest;
}

// ---- ObjectStore -----------------------------------------------------------------------------

ObjectStore::ObjectStore(std::string data_dir, FileSystem* fs)
    : data_dir_(std::move(data_dir)),
      objects_dir_(data_dir_ + "/objects"),
      tmp_dir_(data_dir_ + "/tmp"),
      quarantine_dir_(data_dir_ + "/quarantine"),
      fs_(fs) {}

Status ObjectStore::Init() {
  SR_RETURN_IF_ERROR(fs_->MakeDirs(tmp_dir_));
  SR_RETURN_IF_ERROR(fs_->MakeDirs(quarantine_dir_));
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 256; ++i) {
    std::string dir = objects_dir_ + "/" + kHex[i >> 4] + kHex[i & 0xf];
    SR_RETURN_IF_ERROR(fs_->MakeDirs(dir));
  }
  return Status::Ok();
}

Result<std::unique_ptr<BlobWriter>> ObjectStore::Create() {
  static std::atomic<uint64_t> counter{0};
  std::string path = tmp_dir_ + "/blob-" + std::to_string(::getpid()) + "-" +
                     std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
  SR_ASSIGN_OR_RETURN(int fd, fs_->Open(path, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0644));
  return std::unique_ptr<BlobWriter>(new BlobWriter(this, ScopedFd(fs_, fd), std::move(path)));
}

std::string ObjectStore::PathOf(const Digest& d) const {
  std::string hex = d.Hex();
  return FanoutDir(objects_dir_, hex) + "/" + hex;
}

Result<uint64_t> ObjectStore::SizeOf(const Digest& d) const {
  struct stat st;
  std::string path = PathOf(d);
  if (::stat(path.c_str(), &st) != 0) return PosixError("stat " + path, errno);
  return static_cast<uint64_t>(st.st_size);
}

Status ObjectStore::Remove(const Digest& d) {
  Status s = fs_->Unlink(PathOf(d));
  if (s.Is(StatusCode::kNotFound)) return Status::Ok();
  return s;
}

Result<std::string> ObjectStore::Quarantine(const Digest& d) {
  std::string to = quarantine_dir_ + "/" + d.Hex();
  SR_RETURN_IF_ERROR(fs_->Rename(PathOf(d), to));
  (void)fs_->FsyncDir(quarantine_dir_);
  return to;
}

Result<Digest> ObjectStore::Rehash(const Digest& d) const { return HashFile(PathOf(d)); }

Result<size_t> ObjectStore::CleanTmp() {
  DIR* dir = ::opendir(tmp_dir_.c_str());
  if (dir == nullptr) return PosixError("opendir " + tmp_dir_, errno);
  size_t removed = 0;
  Status error;
  while (struct dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    Status s = fs_->Unlink(tmp_dir_ + "/" + name);
    if (s.ok()) {
      ++removed;
    } else if (error.ok()) {
      error = s;
    }
  }
  ::closedir(dir);
  if (!error.ok()) return error;
  return removed;
}

Result<std::vector<std::pair<Digest, uint64_t>>> ObjectStore::Scan() const {
  std::vector<std::pair<Digest, uint64_t>> out;
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 256; ++i) {
    std::string dir_path = objects_dir_ + "/" + kHex[i >> 4] + kHex[i & 0xf];
    DIR* dir = ::opendir(dir_path.c_str());
    if (dir == nullptr) {
      if (errno == ENOENT) continue;
      return PosixError("opendir " + dir_path, errno);
    }
    while (struct dirent* e = ::readdir(dir)) {
      auto digest = Digest::FromHex(e->d_name);
      if (!digest.ok()) continue;  // ".", "..", or not ours
      struct stat st;
      std::string path = dir_path + "/" + e->d_name;
      if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      out.emplace_back(*digest, static_cast<uint64_t>(st.st_size));
    }
    ::closedir(dir);
  }
  return out;
}

Result<Digest> HashFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixError("open " + path, errno);
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<uint8_t> buf(kHashBufferBytes);
  Sha256 hash;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return PosixError("read " + path, e);
    }
    if (n == 0) break;
    hash.Update(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  return hash.Finish();
}

}  // namespace siterelay::cache
