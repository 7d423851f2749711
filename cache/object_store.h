// ObjectStore: immutable blobs named by their sha256 under data_dir/objects/ab/<hex>.
//
// A blob is written to data_dir/tmp/ through a BlobWriter that hashes while it writes; Commit()
// fsyncs it, checks the digest against the expected one (a manifest's, or none for content
// addressed by what it hashes to), renames it into objects/ and fsyncs the directory. So a file
// under objects/ always hashes to its name (DESIGN.md), and a crash at any point leaves at worst a
// file in tmp/, which start-up deletes. Identical content is stored once: committing a blob that
// already exists just drops the temp file.
//
// Thread safety: Create() and BlobWriter may be used from the libuv thread pool concurrently;
// Remove/Quarantine/CleanTmp must not race with writers of the same object (the Cache owns that).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "relay/base/fs.h"
#include "relay/base/sha256.h"
#include "relay/base/status.h"

namespace siterelay::cache {

class ObjectStore;

class BlobWriter {
 public:
  ~BlobWriter();  // Removes the temp file unless committed.
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  Status Append(std::span<const uint8_t> data);
  uint64_t size() const { return size_; }

  // Makes the blob durable under its digest. With `expected`, a mismatch fails with kCorruption
  // and nothing is published. After Commit (either way) the writer is spent.
  Result<Digest> Commit(const Digest* expected = nullptr);

 private:
  friend class ObjectStore;
  BlobWriter(ObjectStore* store, ScopedFd fd, std::string tmp_path);
  void Discard();

  ObjectStore* store_;
  ScopedFd fd_;
  std::string tmp_path_;
  Sha256 hash_;
  uint64_t size_ = 0;
  bool done_ = false;
};

class ObjectStore {
 public:
  ObjectStore(std::string data_dir, FileSystem* fs);

  // Creates objects/00..ff, tmp/ and quarantine/ as needed.
  Status Init();

  Result<std::unique_ptr<BlobWriter>> Create();

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
  std::string data_dir_;
  std::string objects_dir_;
  std::string tmp_dir_;
  std::string quarantine_dir_;
  FileSystem* fs_;
};

// Hashes a whole file with a reusable buffer.
Result<Digest> HashFile(const std::string& path);

}  // namespace siterelay::cache
