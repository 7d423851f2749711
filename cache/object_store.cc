#include "cache/object_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "relay/base/log.h"

namespace siterelay::cache {
namespace {

constexpr size_t kHashBufferBytes = 1 << 20;

std::string FanoutDir(const std::string& objects_dir, const std::string& hex) {
  return objects_dir + "/" + hex.substr(0, 2);
}

}  // namespace

// ---- BlobWriter ------------------------------------------------------------------------------

// O_DIRECT wants buffer address, file offset and length aligned to the logical block size;
// 4096 covers every disk in use.
constexpr size_t kDirectAlign = 4096;

BlobWriter::BlobWriter(ObjectStore* store, ScopedFd fd, std::string tmp_path, bool direct,
                       bool write_through)
    : store_(store),
      fd_(std::move(fd)),
      tmp_path_(std::move(tmp_path)),
      direct_(direct),
      write_through_(write_through),
      buf_(nullptr) {}

BlobWriter::~BlobWriter() {
  if (!done_) Discard();
  if (buf_ != nullptr) store_->GiveBack(buf_);
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

std::span<uint8_t> BlobWriter::Space() {
  if (done_) return {};  // sealed
  if (buf_ == nullptr) buf_ = store_->TakeBuffer();  // on first use: streaming needs none
  return {buf_ + used_, kBufferBytes - used_};
}

Status BlobWriter::Advance(size_t n) {
  if (done_) return Status::Internal("write to a finished blob");
  if (n > kBufferBytes - used_) return Status::Internal("blob buffer overrun");
  hash_.Update(std::span<const uint8_t>(buf_ + used_, n));
  used_ += n;
  size_ += n;
  if (used_ == kBufferBytes || write_through_) return Flush(/*final=*/false);
  return Status::Ok();
}

Status BlobWriter::Restart() {
  if (done_ || !write_through_) return Status::Internal("restart of a non-streaming blob");
  SR_RETURN_IF_ERROR(store_->fs_->Truncate(fd_.get(), 0).Annotate(tmp_path_));
  if (::lseek(fd_.get(), 0, SEEK_SET) < 0) return PosixError("lseek " + tmp_path_, errno);
  (void)hash_.Finish();  // resets it
  used_ = 0;
  size_ = 0;
  return Status::Ok();
}

Status BlobWriter::Append(std::span<const uint8_t> data) {
  if (write_through_ && used_ == 0) {
    // Streaming: straight to the file, without a copy or a buffer. A thousand phones uploading
    // at once, or a hundred origin transfers, would otherwise hold a megabyte buffer each.
    if (done_) return Status::Internal("write to a finished blob");
    hash_.Update(data);
    SR_RETURN_IF_ERROR(store_->fs_->WriteAll(fd_.get(), data).Annotate(tmp_path_));
    size_ += data.size();
    return Status::Ok();
  }
  while (!data.empty()) {
    std::span<uint8_t> room = Space();
    size_t n = std::min(room.size(), data.size());
    std::memcpy(room.data(), data.data(), n);
    SR_RETURN_IF_ERROR(Advance(n));
    data = data.subspan(n);
  }
  return Status::Ok();
}

Status BlobWriter::Flush(bool final) {
  if (used_ == 0) return Status::Ok();
  size_t len = used_;
  if (direct_ && final && len % kDirectAlign != 0) {
    // Pad the last block; Seal() truncates the file back to the real size.
    size_t padded = (len + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
    std::memset(buf_ + len, 0, padded - len);
    len = padded;
  }
  Status s = store_->fs_->WriteAll(fd_.get(), std::span<const uint8_t>(buf_, len));
  if (!s.ok()) return s.Annotate(tmp_path_);
  used_ = 0;
  return Status::Ok();
}

Result<SealedBlob> BlobWriter::Seal(const Digest* expected, bool sync) {
  if (done_) return Status::Internal("seal of a finished blob");
  Status s = Flush(/*final=*/true);
  if (s.ok() && direct_ && size_ % kDirectAlign != 0) s = store_->fs_->Truncate(fd_.get(), size_);
  Digest digest = hash_.Finish();
  if (s.ok() && expected != nullptr && *expected != digest) {
    s = Status::Corruption("content hashes to " + digest.Hex() + ", expected " + expected->Hex());
  }
  if (s.ok() && sync) s = store_->fs_->Fsync(fd_.get());
  if (s.ok()) s = fd_.Close();
  if (!s.ok()) {
    Discard();
    return s.Is(StatusCode::kCorruption) ? s : s.Annotate(tmp_path_);
  }
  done_ = true;  // The temp file now belongs to the SealedBlob.
  if (buf_ != nullptr) store_->GiveBack(buf_);
  buf_ = nullptr;
  return SealedBlob{tmp_path_, digest, size_};
}

Result<Digest> BlobWriter::Commit(const Digest* expected) {
  SR_ASSIGN_OR_RETURN(SealedBlob sealed, Seal(expected, /*sync=*/true));
  std::vector<SealedBlob> one{sealed};
  SR_RETURN_IF_ERROR(store_->Install(one, /*already_synced=*/true));
  return sealed.digest;
}

// ---- ObjectStore -----------------------------------------------------------------------------

ObjectStore::ObjectStore(std::string data_dir, FileSystem* fs)
    : data_dir_(std::move(data_dir)),
      objects_dir_(data_dir_ + "/objects"),
      tmp_dir_(data_dir_ + "/tmp"),
      quarantine_dir_(data_dir_ + "/quarantine"),
      fs_(fs) {}

ObjectStore::~ObjectStore() {
  for (uint8_t* b : free_buffers_) std::free(b);
}

uint8_t* ObjectStore::TakeBuffer() {
  {
    std::lock_guard<std::mutex> lock(buffers_mu_);
    if (!free_buffers_.empty()) {
      uint8_t* b = free_buffers_.back();
      free_buffers_.pop_back();
      return b;
    }
  }
  void* p = nullptr;
  if (::posix_memalign(&p, kDirectAlign, BlobWriter::kBufferBytes) != 0) {
    std::fprintf(stderr, "fatal: out of memory for a blob buffer\n");
    std::abort();
  }
  return static_cast<uint8_t*>(p);
}

void ObjectStore::GiveBack(uint8_t* buffer) {
  // Keep as many as the thread pool can use at once; more would only hold memory.
  static constexpr size_t kMaxFree = 16;
  std::lock_guard<std::mutex> lock(buffers_mu_);
  if (free_buffers_.size() < kMaxFree) {
    free_buffers_.push_back(buffer);
  } else {
    std::free(buffer);
  }
}

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

Result<std::unique_ptr<BlobWriter>> ObjectStore::Create() { return CreateWriter(false); }

Result<std::unique_ptr<BlobWriter>> ObjectStore::CreateStreaming() { return CreateWriter(true); }

Result<std::unique_ptr<BlobWriter>> ObjectStore::CreateWriter(bool streaming) {
  static std::atomic<uint64_t> counter{0};
  static const std::string pid = std::to_string(::getpid());
  std::string path = tmp_dir_ + "/blob-" + pid + "-" +
                     std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
  constexpr int kFlags = O_WRONLY | O_CREAT | O_EXCL | O_TRUNC;
  bool direct = !streaming;
  auto fd = fs_->Open(path, kFlags | (direct ? O_DIRECT : 0), 0644);
  if (!fd.ok() && direct && fd.status().Is(StatusCode::kInvalidArgument)) {
    direct = false;  // tmpfs and some network filesystems have no O_DIRECT
    fd = fs_->Open(path, kFlags, 0644);
  }
  if (!fd.ok()) return fd.status();
  return std::unique_ptr<BlobWriter>(
      new BlobWriter(this, ScopedFd(fs_, *fd), std::move(path), direct, streaming));
}

Status ObjectStore::Install(std::vector<SealedBlob>& blobs, bool already_synced) {
  auto drop_from = [&](size_t first) {
    for (size_t j = first; j < blobs.size(); ++j) (void)fs_->Unlink(blobs[j].tmp_path);
  };
  if (!already_synced && !blobs.empty()) {
    // One syncfs makes every sealed file's data durable: data before names, as Commit does.
    Status s = fs_->SyncFilesystem(tmp_dir_);
    if (!s.ok()) {
      drop_from(0);
      return s;
    }
  }
  std::vector<std::string> dirs;
  for (size_t i = 0; i < blobs.size(); ++i) {
    const SealedBlob& b = blobs[i];
    std::string hex = b.digest.Hex();
    std::string dir = FanoutDir(objects_dir_, hex);
    std::string final_path = dir + "/" + hex;
    struct stat st;
    if (::stat(final_path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == b.size) {
      // Same content already stored: its bytes are durable (synced before their rename), but
      // its name may not be yet — another Install() of the same bytes may have renamed it and
      // not yet fsynced the folder, or failed to. So the folder is fsynced here too.
      (void)fs_->Unlink(b.tmp_path);
      if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(dir);
      continue;
    }
    Status s = fs_->Rename(b.tmp_path, final_path);
    if (!s.ok()) {
      drop_from(i);
      return s;
    }
    if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(dir);
  }
  for (const std::string& dir : dirs) SR_RETURN_IF_ERROR(fs_->FsyncDir(dir));
  return Status::Ok();
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
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) return PosixError("open " + path, errno);
  ScopedFd fd(FileSystem::Default(), raw);
  (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<uint8_t> buf(kHashBufferBytes);
  Sha256 hash;
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("read " + path, errno);
    }
    if (n == 0) break;
    hash.Update(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
  }
  return hash.Finish();
}

}  // namespace siterelay::cache
