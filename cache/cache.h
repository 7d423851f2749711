// Cache: the content-addressed store of DESIGN.md — ObjectStore (blobs), Catalog (catalog.db)
// and the in-memory index that answers lookups on the hot path without touching SQLite.
//
// Open() takes data_dir for itself (an flock on data_dir/lock, so two writers never share one)
// and performs crash recovery: it empties tmp/, drops catalog rows whose object file is missing,
// and rebuilds the index. Nothing else is ever needed after a crash.
// A read-only Open() (for `cache ls` beside a running relay) takes no lock and changes nothing.
//
// Publishing is two steps: write and commit blobs through store() (on any thread), then
// Publish() the entries that name them, in one catalog transaction, on the owning thread. An
// entry is visible in the index only after its transaction committed.
//
// Thread safety: a Cache belongs to one thread (the loop thread in `serve`); only store() and its
// BlobWriters may be used from the thread pool. Gc() must not run while committed blobs wait for
// their Publish(), or it would count them as unreferenced.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cache/catalog.h"
#include "cache/entry.h"
#include "cache/object_store.h"
#include "relay/base/clock.h"
#include "relay/base/fs.h"

namespace siterelay::cache {

struct CacheOptions {
  std::string data_dir;
  uint64_t max_bytes = 0;  // 0: bytes cached at start + 90% of the free disk at start
  FileSystem* fs = FileSystem::Default();
  Clock* clock = Clock::System();
  bool read_only = false;
};

struct RecoveryReport {
  size_t tmp_files_removed = 0;
  size_t objects_missing = 0;  // catalog rows whose file was gone
  size_t entries_dropped = 0;
};

struct VerifyReport {
  size_t objects_checked = 0;
  uint64_t bytes_checked = 0;
  std::vector<Digest> corrupt;                // moved to quarantine/
  std::vector<std::string> entries_dropped;   // paths that pointed at them
  size_t missing = 0;                         // objects whose file was gone
};

struct GcReport {
  size_t orphans_removed = 0;  // objects no entry names, and stray files under objects/
  uint64_t orphan_bytes = 0;
  size_t evicted = 0;          // objects dropped, least recently used first, to meet the cap
  uint64_t evicted_bytes = 0;
  std::vector<std::string> entries_dropped;
};

class Cache {
 public:
  static Result<std::unique_ptr<Cache>> Open(const CacheOptions& options);
  ~Cache();

  ObjectStore& store() { return *store_; }
  const RecoveryReport& recovery() const { return recovery_; }

  // nullptr when the path is not cached.
  const Entry* Lookup(std::string_view path) const;
  bool HasObject(const Digest& d) const { return objects_.count(d) != 0; }
  // Every entry, sorted by path.
  std::vector<Entry> List() const;
  // The entries whose path starts with `prefix`, in path order (directory listings).
  std::vector<const Entry*> EntriesUnder(std::string_view prefix) const;

  // Publishes entries whose objects were committed through store(), in one transaction: all of
  // them become visible, or none. An entry replacing another for the same path wins.
  Status Publish(std::vector<Entry> entries);
  // The same with the catalog transaction (and its fsync) on the libuv thread pool, so a serving
  // loop never waits for the disk (DESIGN.md "Threads"); the index changes and `done` runs on the
  // loop thread after the commit. Asynchronous writes run one at a time, in order. While any is
  // in flight, the synchronous write methods must not be called.
  void PublishAsync(uv_loop_t* loop, std::vector<Entry> entries,
                    std::function<void(Status)> done);
  // The same for a manifest's set: `generation` is recorded in the same transaction, and `done`
  // gets the id it was given.
  void PublishSetAsync(uv_loop_t* loop, std::vector<Entry> entries, GenerationRecord generation,
                       std::function<void(Result<int64_t>)> done);
  Status Remove(std::string_view path);
  // An uploaded entry reached the origin (sync/outbox.h): marks it forwarded, in the catalog off
  // the loop thread and then in the index, only while the entry still names `digest`.
  void MarkForwardedAsync(uv_loop_t* loop, const std::string& path, const Digest& digest,
                          std::function<void(Status)> done);

  // Runs `work` against the catalog on the thread pool, queued behind every other asynchronous
  // write; `done` runs on the loop thread. For tables the index does not mirror (devices, ...).
  void WriteAsync(uv_loop_t* loop, std::function<Status(Catalog&)> work,
                  std::function<void(Status)> done);
  // Reads the devices table (start-up, on the owning thread).
  Status LoadDevices(std::vector<DeviceRecord>* devices) { return catalog_->LoadDevices(devices); }
  Status LoadTraffic(int64_t since, std::vector<TrafficRecord>* out) {
    return catalog_->LoadTraffic(since, out);
  }
  Status LoadLogSpool(LogSpoolState* out) { return catalog_->LoadLogSpool(out); }
  Status LoadGenerations(size_t limit, std::vector<GenerationRecord>* out) {
    return catalog_->LoadGenerations(limit, out);
  }

  // Records a read of an object for LRU order; kept in memory until FlushAccess().
  void Touch(const Digest& d);

  // Object `d` opened read-only for serving: a dup of an fd kept open for the kOpenObjects
  // objects served last, so a hot file (a master config a thousand phones ask for) costs no path
  // walk and no open(2) per request. The dups share one file offset: read them only at explicit
  // offsets (pread, sendfile with an offset), as every front-end does. An object removed,
  // evicted or quarantined is forgotten first, so its disk space goes with it.
  static constexpr size_t kOpenObjects = 64;
  Result<ScopedFd> OpenObject(const Digest& d);
  // A small object's bytes (kSmallObjectBytes or less), read once and kept with its open file
  // while it is one of the kOpenObjects: an HTTP answer from memory is one send(2), with no fd
  // to dup, stat and close per request. nullptr for a larger object. At most 1 MiB in all.
  static constexpr uint64_t kSmallObjectBytes = 16 * 1024;
  Result<std::shared_ptr<const std::string>> SmallObject(const Digest& d);
  Status FlushAccess();

  // Re-hashes every object. A mismatch is quarantined and its entries dropped.
  // `progress(done_bytes, total_bytes)` is called after each object.
  Result<VerifyReport> Verify(const std::function<void(uint64_t, uint64_t)>& progress = {});

  // Deletes unreferenced objects and stray files, then evicts least recently used objects whose
  // entries are all evictable (not pinned, not an upload still to forward) until under the cap.
  Result<GcReport> Gc();

  uint64_t object_bytes() const { return object_bytes_; }
  size_t entry_count() const { return entries_.size(); }
  size_t object_count() const { return objects_.size(); }
  uint64_t max_bytes() const { return max_bytes_; }

 private:
  struct ObjectState {
    ObjectInfo info;
    size_t refs = 0;  // entries naming this object
  };

  Cache(CacheOptions options, std::unique_ptr<ObjectStore> store,
        std::unique_ptr<Catalog> catalog, int lock_fd);
  Status Recover();
  Status Load();
  void IndexEntry(Entry e);
  void UnindexEntry(const std::string& path);
  // Drops objects (catalog first, then files) and their entries; appends dropped paths.
  Status DropObjects(const std::vector<Digest>& digests, std::vector<std::string>* dropped_paths);
  // Checks entries against the store and builds their object rows (any thread).
  Result<std::vector<ObjectInfo>> PrepareObjects(const std::vector<Entry>& entries, int64_t now);
  void ApplyPublished(const std::vector<ObjectInfo>& objects, std::vector<Entry> entries,
                      int64_t now);
  void StartNextWrite();
  void PublishWrite(uv_loop_t* loop, std::vector<Entry> entries,
                    std::optional<GenerationRecord> generation,
                    std::function<void(Result<int64_t>)> done);

  struct PendingWrite {
    uv_loop_t* loop;
    std::function<Status()> work;         // on the pool: touches only catalog_ and store_
    std::function<void(Status)> after;    // on the loop thread
  };

  CacheOptions options_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<Catalog> catalog_;
  int lock_fd_;
  RecoveryReport recovery_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::unordered_map<Digest, ObjectState, DigestHash> objects_;
  std::unordered_map<Digest, int64_t, DigestHash> pending_access_;
  void ForgetOpenObject(const Digest& d);
  struct OpenObjectSlot {
    ScopedFd fd;
    std::list<Digest>::iterator lru;
    bool sized = false;  // SmallObject() has looked: `bytes` is set when it is small
    std::shared_ptr<const std::string> bytes;
  };
  // The slot of object `d`, opened if it was not, now the most recently served.
  Result<OpenObjectSlot*> OpenSlot(const Digest& d);
  std::unordered_map<Digest, OpenObjectSlot, DigestHash> open_objects_;
  std::list<Digest> open_lru_;  // most recently served first
  uint64_t object_bytes_ = 0;
  uint64_t max_bytes_ = 0;
  std::deque<PendingWrite> writes_;
  bool write_in_flight_ = false;
};

}  // namespace siterelay::cache
