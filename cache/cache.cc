#include "cache/cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <unordered_set>

#include "relay/base/log.h"
#include "relay/base/uv.h"

namespace siterelay::cache {
namespace {

// Takes data_dir/lock for this process; the kernel drops it when the process dies, however it
// dies, so a crash never leaves a stale lock behind.
Result<int> LockDataDir(const std::string& data_dir) {
  std::string path = data_dir + "/lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return PosixError("open " + path, errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    char pid[32] = {};
    ssize_t n = ::pread(fd, pid, sizeof pid - 1, 0);
    ::close(fd);
    if (e == EWOULDBLOCK) {
      std::string who = n > 0 ? std::string(pid, static_cast<size_t>(n)) : std::string("?");
      while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
      return Status::Unavailable(data_dir + " is in use by another siterelay process (pid " +
                                 who + ")");
    }
    return PosixError("lock " + path, e);
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, pid.data(), pid.size(), 0);
  return fd;
}

}  // namespace

Cache::Cache(CacheOptions options, std::unique_ptr<ObjectStore> store,
             std::unique_ptr<Catalog> catalog, int lock_fd)
    : options_(std::move(options)),
      store_(std::move(store)),
      catalog_(std::move(catalog)),
      lock_fd_(lock_fd) {}

Cache::~Cache() {
  if (!options_.read_only) {
    Status s = FlushAccess();
    if (!s.ok()) SR_LOG(kWarning) << "cache: cannot save access times: " << s.ToString();
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<std::unique_ptr<Cache>> Cache::Open(const CacheOptions& options) {
  if (options.data_dir.empty()) return Status::InvalidArgument("data_dir is empty");
  std::string db_path = options.data_dir + "/catalog.db";
  auto store = std::make_unique<ObjectStore>(options.data_dir, options.fs);
  if (options.read_only) {
    SR_ASSIGN_OR_RETURN(auto catalog, Catalog::Open(db_path, /*read_only=*/true));
    std::unique_ptr<Cache> cache(new Cache(options, std::move(store), std::move(catalog), -1));
    SR_RETURN_IF_ERROR(cache->Load());
    return cache;
  }
  SR_RETURN_IF_ERROR(options.fs->MakeDirs(options.data_dir));
  SR_ASSIGN_OR_RETURN(int lock_fd, LockDataDir(options.data_dir));
  Status s = store->Init();
  if (!s.ok()) {
    ::close(lock_fd);
    return s;
  }
  auto catalog = Catalog::Open(db_path);
  if (!catalog.ok()) {
    ::close(lock_fd);
    return catalog.status();
  }
  std::unique_ptr<Cache> cache(
      new Cache(options, std::move(store), std::move(catalog).value(), lock_fd));
  SR_RETURN_IF_ERROR(cache->Recover());

  cache->max_bytes_ = options.max_bytes;
  if (cache->max_bytes_ == 0) {
    struct statvfs vfs;
    if (::statvfs(options.data_dir.c_str(), &vfs) != 0) {
      return PosixError("statvfs " + options.data_dir, errno);
    }
    uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    cache->max_bytes_ = cache->object_bytes_ + free_bytes / 10 * 9;
  }
  return cache;
}

Status Cache::Load() {
  std::vector<ObjectInfo> objects;
  std::vector<Entry> entries;
  SR_RETURN_IF_ERROR(catalog_->LoadAll(&objects, &entries));
  entries_.clear();
  objects_.clear();
  object_bytes_ = 0;
  for (const ObjectInfo& o : objects) {
    objects_[o.sha256].info = o;
    object_bytes_ += o.size;
  }
  for (Entry& e : entries) IndexEntry(std::move(e));
  return Status::Ok();
}

Status Cache::Recover() {
  SR_ASSIGN_OR_RETURN(recovery_.tmp_files_removed, store_->CleanTmp());
  SR_RETURN_IF_ERROR(Load());
  // Only a missing file is repaired here. A file of the wrong size cannot come from a crash
  // (objects are renamed into place after fsync); it is damage, which Verify() quarantines and
  // reports, and which readers refuse because the size differs from the entry's.
  std::vector<Digest> missing;
  for (const auto& [digest, state] : objects_) {
    auto size = store_->SizeOf(digest);
    if (!size.ok() && size.status().Is(StatusCode::kNotFound)) missing.push_back(digest);
  }
  if (!missing.empty()) {
    std::vector<std::string> dropped;
    // The files are gone already; dropping the rows is the whole repair.
    SR_RETURN_IF_ERROR(DropObjects(missing, &dropped));
    recovery_.objects_missing = missing.size();
    recovery_.entries_dropped = dropped.size();
    SR_LOG(kWarning) << "cache: " << missing.size() << " object(s) missing on disk; "
                     << dropped.size() << " entr" << (dropped.size() == 1 ? "y" : "ies")
                     << " dropped (they will be fetched again)";
  }
  if (recovery_.tmp_files_removed > 0) {
    SR_LOG(kInfo) << "cache: removed " << recovery_.tmp_files_removed
                  << " unfinished transfer(s) from tmp/";
  }
  return Status::Ok();
}

void Cache::IndexEntry(Entry e) {
  auto it = entries_.find(e.path);
  if (it != entries_.end()) {
    auto old = objects_.find(it->second.sha256);
    if (old != objects_.end() && old->second.refs > 0) --old->second.refs;
    it->second = std::move(e);
    ++objects_[it->second.sha256].refs;
  } else {
    Digest d = e.sha256;
    std::string path = e.path;
    entries_.emplace(std::move(path), std::move(e));
    ++objects_[d].refs;
  }
}

void Cache::UnindexEntry(const std::string& path) {
  auto it = entries_.find(path);
  if (it == entries_.end()) return;
  auto obj = objects_.find(it->second.sha256);
  if (obj != objects_.end() && obj->second.refs > 0) --obj->second.refs;
  entries_.erase(it);
}

const Entry* Cache::Lookup(std::string_view path) const {
  auto it = entries_.find(path);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<const Entry*> Cache::EntriesUnder(std::string_view prefix) const {
  std::vector<const Entry*> out;
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    out.push_back(&it->second);
  }
  return out;
}

std::vector<Entry> Cache::List() const {
  std::vector<Entry> out;
  out.reserve(entries_.size());
  for (const auto& [path, e] : entries_) out.push_back(e);
  return out;
}

Result<std::vector<ObjectInfo>> Cache::PrepareObjects(const std::vector<Entry>& entries,
                                                       int64_t now) {
  std::vector<ObjectInfo> objects;
  std::unordered_set<Digest, DigestHash> seen;
  for (const Entry& e : entries) {
    if (!seen.insert(e.sha256).second) continue;
    // The object must be on disk with the size the entry claims: a catalog entry always points
    // at an object (DESIGN.md).
    auto size = store_->SizeOf(e.sha256);
    if (!size.ok()) return size.status().Annotate("publish " + e.path);
    if (*size != e.size) {
      return Status::Corruption("publish " + e.path + ": object has " + std::to_string(*size) +
                                " bytes, entry says " + std::to_string(e.size));
    }
    ObjectInfo o;
    o.sha256 = e.sha256;
    o.size = e.size;
    o.stored_at = now;
    o.last_access = now;
    objects.push_back(o);
  }
  return objects;
}

void Cache::ApplyPublished(const std::vector<ObjectInfo>& objects, std::vector<Entry> entries,
                           int64_t now) {
  for (const ObjectInfo& o : objects) {
    auto [it, inserted] = objects_.try_emplace(o.sha256);
    if (inserted) {
      it->second.info = o;
      object_bytes_ += o.size;
    } else {
      it->second.info.last_access = std::max(it->second.info.last_access, now);
    }
  }
  for (Entry& e : entries) IndexEntry(std::move(e));
}

Status Cache::Publish(std::vector<Entry> entries) {
  if (options_.read_only) return Status::PermissionDenied("cache opened read-only");
  int64_t now = options_.clock->NowSeconds();
  SR_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects, PrepareObjects(entries, now));
  SR_RETURN_IF_ERROR(catalog_->Publish(objects, entries));
  ApplyPublished(objects, std::move(entries), now);
  return Status::Ok();
}

void Cache::PublishAsync(uv_loop_t* loop, std::vector<Entry> entries,
                         std::function<void(Status)> done) {
  PublishWrite(loop, std::move(entries), std::nullopt,
               [done = std::move(done)](Result<int64_t> r) { done(r.status()); });
}

void Cache::PublishSetAsync(uv_loop_t* loop, std::vector<Entry> entries,
                            GenerationRecord generation,
                            std::function<void(Result<int64_t>)> done) {
  PublishWrite(loop, std::move(entries), std::move(generation), std::move(done));
}

void Cache::PublishWrite(uv_loop_t* loop, std::vector<Entry> entries,
                         std::optional<GenerationRecord> generation,
                         std::function<void(Result<int64_t>)> done) {
  if (options_.read_only) {
    done(Status::PermissionDenied("cache opened read-only"));
    return;
  }
  int64_t now = options_.clock->NowSeconds();
  // Shared by the two closures of one write only.
  struct Batch {
    std::vector<Entry> entries;
    std::vector<ObjectInfo> objects;
    std::optional<GenerationRecord> generation;
  };
  auto batch = std::make_shared<Batch>();
  batch->entries = std::move(entries);
  batch->generation = std::move(generation);
  writes_.push_back(PendingWrite{
      loop,
      [this, batch, now]() -> Status {
        SR_ASSIGN_OR_RETURN(batch->objects, PrepareObjects(batch->entries, now));
        return catalog_->Publish(batch->objects, batch->entries,
                                 batch->generation ? &*batch->generation : nullptr);
      },
      [this, batch, now, done = std::move(done)](Status s) {
        if (!s.ok()) {
          done(s);
          return;
        }
        ApplyPublished(batch->objects, std::move(batch->entries), now);
        done(batch->generation ? batch->generation->id : 0);
      }});
  StartNextWrite();
}

void Cache::MarkForwardedAsync(uv_loop_t* loop, const std::string& path, const Digest& digest,
                               std::function<void(Status)> done) {
  WriteAsync(
      loop, [path, digest](Catalog& c) { return c.MarkForwarded(path, digest); },
      [this, path, digest, done = std::move(done)](Status s) {
        if (s.ok()) {
          auto it = entries_.find(path);
          if (it != entries_.end() && it->second.sha256 == digest) it->second.forwarded = true;
        }
        if (done) done(s);
      });
}

void Cache::WriteAsync(uv_loop_t* loop, std::function<Status(Catalog&)> work,
                       std::function<void(Status)> done) {
  writes_.push_back(PendingWrite{loop, [this, work = std::move(work)] { return work(*catalog_); },
                                 std::move(done)});
  StartNextWrite();
}

void Cache::StartNextWrite() {
  if (write_in_flight_ || writes_.empty()) return;
  write_in_flight_ = true;
  auto w = std::make_shared<PendingWrite>(std::move(writes_.front()));
  writes_.pop_front();
  auto status = std::make_shared<Status>();
  Status q = QueueWork(
      w->loop, [w, status] { *status = w->work(); },
      [this, w, status] {
        write_in_flight_ = false;
        w->after(*status);
        StartNextWrite();
      });
  if (!q.ok()) {
    write_in_flight_ = false;
    w->after(q);
    StartNextWrite();
  }
}

Status Cache::Remove(std::string_view path) {
  if (options_.read_only) return Status::PermissionDenied("cache opened read-only");
  std::string p(path);
  SR_RETURN_IF_ERROR(catalog_->RemoveEntries(std::span<const std::string>(&p, 1)));
  UnindexEntry(p);
  return Status::Ok();
}

void Cache::Touch(const Digest& d) {
  auto it = objects_.find(d);
  if (it == objects_.end()) return;
  int64_t now = options_.clock->NowSeconds();
  it->second.info.last_access = now;
  pending_access_[d] = now;
}

Result<Cache::OpenObjectSlot*> Cache::OpenSlot(const Digest& d) {
  auto it = open_objects_.find(d);
  if (it == open_objects_.end()) {
    SR_ASSIGN_OR_RETURN(int raw, store_->fs()->Open(store_->PathOf(d), O_RDONLY | O_CLOEXEC, 0));
    if (open_objects_.size() >= kOpenObjects) ForgetOpenObject(open_lru_.back());
    open_lru_.push_front(d);
    OpenObjectSlot slot;
    slot.fd = ScopedFd(store_->fs(), raw);
    slot.lru = open_lru_.begin();
    it = open_objects_.emplace(d, std::move(slot)).first;
  } else {
    open_lru_.splice(open_lru_.begin(), open_lru_, it->second.lru);
  }
  return &it->second;
}

Result<ScopedFd> Cache::OpenObject(const Digest& d) {
  SR_ASSIGN_OR_RETURN(OpenObjectSlot * slot, OpenSlot(d));
  int dup = ::fcntl(slot->fd.get(), F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return PosixError("dup of object " + d.Hex(), errno);
  return ScopedFd(FileSystem::Default(), dup);
}

Result<std::shared_ptr<const std::string>> Cache::SmallObject(const Digest& d) {
  SR_ASSIGN_OR_RETURN(OpenObjectSlot * slot, OpenSlot(d));
  if (slot->sized) return slot->bytes;
  struct stat st;
  if (::fstat(slot->fd.get(), &st) != 0) return PosixError("fstat object " + d.Hex(), errno);
  if (static_cast<uint64_t>(st.st_size) <= kSmallObjectBytes) {
    auto bytes = std::make_shared<std::string>(static_cast<size_t>(st.st_size), '\0');
    size_t got = 0;
    while (got < bytes->size()) {  // at offsets: the dups handed out share the file offset
      ssize_t n = ::pread(slot->fd.get(), bytes->data() + got, bytes->size() - got,
                          static_cast<off_t>(got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return PosixError("read object " + d.Hex(), errno);
      if (n == 0) break;  // shorter than it was a moment ago: the caller's size check says so
      got += static_cast<size_t>(n);
    }
    bytes->resize(got);
    slot->bytes = std::move(bytes);
  }
  slot->sized = true;
  return slot->bytes;
}

void Cache::ForgetOpenObject(const Digest& d) {
  auto it = open_objects_.find(d);
  if (it == open_objects_.end()) return;
  open_lru_.erase(it->second.lru);
  open_objects_.erase(it);
}

Status Cache::FlushAccess() {
  if (pending_access_.empty()) return Status::Ok();
  std::vector<std::pair<Digest, int64_t>> batch(pending_access_.begin(), pending_access_.end());
  SR_RETURN_IF_ERROR(catalog_->SetLastAccess(batch));
  pending_access_.clear();
  return Status::Ok();
}

Status Cache::DropObjects(const std::vector<Digest>& digests,
                          std::vector<std::string>* dropped_paths) {
  if (digests.empty()) return Status::Ok();
  // Catalog first: a crash between the two steps leaves a stray file, which Gc() removes, and
  // never an entry pointing at nothing.
  SR_RETURN_IF_ERROR(catalog_->RemoveObjects(digests));
  std::unordered_set<Digest, DigestHash> gone(digests.begin(), digests.end());
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (gone.count(it->second.sha256) != 0) {
      dropped_paths->push_back(it->first);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  for (const Digest& d : digests) {
    auto it = objects_.find(d);
    if (it != objects_.end()) {
      object_bytes_ -= it->second.info.size;
      objects_.erase(it);
    }
    pending_access_.erase(d);
    ForgetOpenObject(d);
    Status s = store_->Remove(d);
    if (!s.ok()) SR_LOG(kWarning) << "cache: " << s.ToString();
  }
  return Status::Ok();
}

Result<VerifyReport> Cache::Verify(const std::function<void(uint64_t, uint64_t)>& progress) {
  if (options_.read_only) return Status::PermissionDenied("cache opened read-only");
  VerifyReport report;
  std::vector<ObjectInfo> all;
  for (const auto& [d, state] : objects_) all.push_back(state.info);
  std::sort(all.begin(), all.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.sha256 < b.sha256; });
  uint64_t total = 0;
  for (const ObjectInfo& o : all) total += o.size;

  std::vector<Digest> corrupt, missing;
  for (const ObjectInfo& o : all) {
    auto actual = store_->Rehash(o.sha256);
    if (!actual.ok()) {
      if (!actual.status().Is(StatusCode::kNotFound)) return actual.status();
      missing.push_back(o.sha256);
    } else if (*actual != o.sha256) {
      ForgetOpenObject(o.sha256);
      auto where = store_->Quarantine(o.sha256);
      SR_LOG(kError) << "cache: object " << o.sha256.Hex() << " hashes to " << actual->Hex()
                     << "; moved to " << (where.ok() ? *where : where.status().ToString());
      corrupt.push_back(o.sha256);
    }
    ++report.objects_checked;
    report.bytes_checked += o.size;
    if (progress) progress(report.bytes_checked, total);
  }
  std::vector<Digest> drop = corrupt;
  drop.insert(drop.end(), missing.begin(), missing.end());
  SR_RETURN_IF_ERROR(DropObjects(drop, &report.entries_dropped));
  report.corrupt = std::move(corrupt);
  report.missing = missing.size();
  return report;
}

Result<GcReport> Cache::Gc() {
  if (options_.read_only) return Status::PermissionDenied("cache opened read-only");
  GcReport report;
  std::vector<std::string> dropped;

  // 1. Objects in the catalog that no entry names.
  std::vector<Digest> unreferenced;
  for (const auto& [d, state] : objects_) {
    if (state.refs == 0) {
      unreferenced.push_back(d);
      report.orphan_bytes += state.info.size;
    }
  }
  SR_RETURN_IF_ERROR(DropObjects(unreferenced, &dropped));
  report.orphans_removed = unreferenced.size();

  // 2. Files under objects/ the catalog does not know: a crash between rename and publish.
  SR_ASSIGN_OR_RETURN(auto on_disk, store_->Scan());
  for (const auto& [d, size] : on_disk) {
    if (objects_.count(d) != 0) continue;
    ForgetOpenObject(d);
    SR_RETURN_IF_ERROR(store_->Remove(d));
    ++report.orphans_removed;
    report.orphan_bytes += size;
  }

  // 3. The cap: least recently used first, skipping objects any unevictable entry names.
  if (object_bytes_ > max_bytes_) {
    std::unordered_set<Digest, DigestHash> keep;
    for (const auto& [path, e] : entries_) {
      if (!e.Evictable()) keep.insert(e.sha256);
    }
    std::vector<ObjectInfo> candidates;
    for (const auto& [d, state] : objects_) {
      if (keep.count(d) == 0) candidates.push_back(state.info);
    }
    std::sort(candidates.begin(), candidates.end(), [](const ObjectInfo& a, const ObjectInfo& b) {
      if (a.last_access != b.last_access) return a.last_access < b.last_access;
      return a.sha256 < b.sha256;  // a stable order for equal times
    });
    std::vector<Digest> evict;
    uint64_t bytes = object_bytes_;
    for (const ObjectInfo& o : candidates) {
      if (bytes <= max_bytes_) break;
      evict.push_back(o.sha256);
      bytes -= o.size;
      report.evicted_bytes += o.size;
    }
    SR_RETURN_IF_ERROR(DropObjects(evict, &dropped));
    report.evicted = evict.size();
    if (object_bytes_ > max_bytes_) {
      SR_LOG(kWarning) << "cache: " << object_bytes_ << " bytes stay cached over the cap of "
                       << max_bytes_ << ": the rest is pinned or waiting to be forwarded";
    }
  }
  report.entries_dropped = std::move(dropped);
  return report;
}

}  // namespace siterelay::cache
