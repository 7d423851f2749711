// Import: seed the cache from a local folder (an unzipped firmware package, a USB stick) as if
// its files came from the origin. `siterelay import DIR` is a thin wrapper around ImportTree.
//
// Files are copied into the object store on the libuv thread pool, hashed while they are copied
// (one read of each byte), several at a time. They are installed in batches (one syncfs for the
// batch instead of an fsync per file) and published from the loop thread, each batch one catalog
// transaction. Identical files share one object. Hidden files
// and folders (names starting with '.', e.g. a USB stick's .Trashes) are skipped, and so are
// symlinked folders, so a link loop cannot make an import run forever.
//
// Imported entries are pinned: an operator put them there on purpose, and without an origin they
// are the only copy, so eviction never drops them. A later import of the same path replaces it.
//
// Thread safety: call on the thread that owns `cache`, with a loop of that thread that nothing
// else is running; it runs the loop until the import is done.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cache/cache.h"

namespace siterelay::cache {

struct ImportProgress {
  size_t files_done = 0;
  size_t files_total = 0;
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  std::string current;  // the path just finished
};

struct ImportReport {
  size_t files = 0;          // entries published
  uint64_t bytes = 0;
  size_t new_objects = 0;    // objects that were not in the store before
  size_t unchanged = 0;      // paths already cached with the same content
  std::vector<std::string> skipped;  // "path: why", for files that could not be imported
};

Result<ImportReport> ImportTree(Cache& cache, uv_loop_t* loop, const std::string& dir,
                                const std::function<void(const ImportProgress&)>& progress = {});

}  // namespace siterelay::cache
