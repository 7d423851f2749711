// ObjectStore: immutable blobs named by their sha256 under data_dir/objects/ab/<hex>.
//
// A blob is written to data_dir/tmp/ through a BlobWriter that hashes while it writes. Making it
// an object takes two steps, so that many blobs can share one sync:
//   Seal()    writes the tail, checks the digest against the expected one (a manifest's, or none
//             for content addressed by what it hashes to), closes the file;
//   Install() makes the sealed files' data durable (fsync for one, syncfs for a group: one
//             journal commit instead of one per file), renames each into objects/ and fsyncs the
//             folders it renamed into.
// Commit() does both for one blob. Data is always durable before its name is, so a file under
// objects/ hashes to its name (DESIGN.md); a crash at any point leaves at worst files in tmp/,
// which start-up deletes. Identical content is stored once: installing a blob that already exists
// drops the temp file.
//
// Blob data is written with O_DIRECT from an aligned buffer where the filesystem allows it: the
// copy into the page cache was most of an import's CPU time, and a relay's cache should not push
// the hot objects phones are reading out of memory. Filesystems without O_DIRECT (tmpfs) get
// ordinary writes.
//
// Thread safety: Create(), BlobWriter and Install() may be used from the libuv thread pool
// concurrently; Remove/Quarantine/CleanTmp must not race with writers of the same object (the
// Cache owns that).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "relay/base/fs.h"
#include "relay/base/sha256.h"
#include "relay/base/status.h"

namespace siterelay::cache {

class ObjectStore;

// A blob written and closed in tmp/ but not yet an object.
struct SealedBlob {
  std::string tmp_path;
  Digest digest;
  uint64_t size = 0;
};

class BlobWriter {
 public:
  // Bytes a writer buffers before writing; also the natural read size for callers filling it.
  static constexpr size_t kBufferBytes = 1 << 20;

  ~BlobWriter();  // Removes the temp file unless sealed.
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  // Copies `data` in; full buffers are written out.
  Status Append(std::span<const uint8_t> data);
  // Zero-copy filling: Space() is free room in the buffer (never empty until sealed); after writing n bytes
  // into it, Advance(n) accounts for them.
  std::span<uint8_t> Space();
  Status Advance(size_t n);
  uint64_t size() const { return size_; }
  // The temp file, for readers of a streaming blob (cache/growing_file.h).
  const std::string& tmp_path() const { return tmp_path_; }
  // Streaming blobs only: forget every byte written so far and start again (an origin that
  // answers a resumed request with the whole file instead of the rest).
  Status Restart();

  // Ends the blob. With `expected`, a mismatch fails with kCorruption and the temp file is gone.
  // With `sync`, the data is fsynced now (for Install(..., already_synced=true)).
  Result<SealedBlob> Seal(const Digest* expected = nullptr, bool sync = false);
  // Seal + Install of this one blob.
  Result<Digest> Commit(const Digest* expected = nullptr);

 private:
  friend class ObjectStore;
  BlobWriter(ObjectStore* store, ScopedFd fd, std::string tmp_path, bool direct,
             bool write_through);
  Status Flush(bool final);
  void Discard();

  ObjectStore* store_;
  ScopedFd fd_;
  std::string tmp_path_;
  bool direct_;
  bool write_through_;  // every Append() reaches the file at once (readers follow the writer)
  uint8_t* buf_;  // from store_->TakeBuffer(), given back when sealed or destroyed
  size_t used_ = 0;
  Sha256 hash_;
  uint64_t size_ = 0;
  bool done_ = false;
};

class ObjectStore {
 public:
  ObjectStore(std::string data_dir, FileSystem* fs);
  ~ObjectStore();
  ObjectStore(const ObjectStore&) = delete;
  ObjectStore& operator=(const ObjectStore&) = delete;

  // Creates objects/00..ff, tmp/ and quarantine/ as needed.
  Status Init();

  Result<std::unique_ptr<BlobWriter>> Create();
  // A blob that others read while it is written (a transfer from the origin streamed to phones),
  // or one of many written at once in pieces (phones' uploads): page-cache writes, each Append()
  // written through at once so readers see it, without a buffer of the writer's own.
  Result<std::unique_ptr<BlobWriter>> CreateStreaming();

  // Makes sealed blobs objects (see the top of this file). On error, blobs not yet renamed are
  // deleted; those already renamed are valid objects that gc reclaims if nothing publishes them.
  Status Install(std::vector<SealedBlob>& blobs, bool already_synced);

  std::string PathOf(const Digest& d) const;
  // Size of the object file, or NotFound.
  Result<uint64_t> SizeOf(const Digest& d) const;
  Status Remove(const Digest& d);
  // Moves the object to quarantine/<hex>, keeping it for inspection; returns the new path.
  Result<std::string> Quarantine(const Digest& d);
  // Re-reads the object and returns what it hashes to.
  Result<Digest> Rehash(const Digest& d) const;
  // Deletes everything in tmp/; only correct while no writer is open (start-up).
  Result<size_t> CleanTmp();
  // Every well-named object file under objects/, with its size.
  Result<std::vector<std::pair<Digest, uint64_t>>> Scan() const;

  const std::string& data_dir() const { return data_dir_; }
  FileSystem* fs() const { return fs_; }

 private:
  friend class BlobWriter;
  // Aligned kBufferBytes buffers, recycled: a fresh mapping per blob costs a page fault per 4 KiB.
  uint8_t* TakeBuffer();
  void GiveBack(uint8_t* buffer);
  Result<std::unique_ptr<BlobWriter>> CreateWriter(bool streaming);

  std::mutex buffers_mu_;
  std::vector<uint8_t*> free_buffers_;
  std::string data_dir_;
  std::string objects_dir_;
  std::string tmp_dir_;
  std::string quarantine_dir_;
  FileSystem* fs_;
};

// Hashes a whole file with a reusable buffer.
Result<Digest> HashFile(const std::string& path);

}  // namespace siterelay::cache
