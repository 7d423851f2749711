// What the catalog knows about a path and about an object. Plain values; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "relay/base/sha256.h"

namespace siterelay::cache {

// Where an entry's bytes came from. Stored as an integer in catalog.db: never renumber.
enum class Source : int {
  kOrigin = 0,    // pulled through on a phone's request
  kManifest = 1,  // listed by the origin's manifest (pinned while listed)
  kImport = 2,    // `siterelay import`
  kUpload = 3,    // a phone's settings upload
};

std::string_view SourceName(Source s);

struct Entry {
  std::string path;  // normalised, relative to the origin root, no leading '/': "a/b.cfg"
  Digest sha256;
  uint64_t size = 0;
  std::string content_type;
  std::string etag;           // the origin's ETag, to revalidate with If-None-Match
  std::string last_modified;  // the origin's Last-Modified, verbatim
  int64_t fetched_at = 0;     // Unix seconds
  int64_t fresh_until = 0;    // Unix seconds; 0 = never goes stale (imports, uploads, manifests)
  Source source = Source::kOrigin;
  bool pinned = false;        // never evicted (manifest files, prefetch list)
  bool forwarded = true;      // false while a phone upload has not reached the origin

  // Eviction may drop this entry (and so its object) to stay under the cap.
  bool Evictable() const { return !pinned && forwarded; }
  // "fresh", "stale", "pinned", "imported", "uploaded", "upload-pending" for `cache ls`.
  std::string_view State(int64_t now) const;
  // Unix seconds the file was last changed: the origin's Last-Modified, else when it was stored
  // (listings, Last-Modified to phones, the console).
  int64_t Modified() const;
};

struct ObjectInfo {
  Digest sha256;
  uint64_t size = 0;
  int64_t stored_at = 0;
  int64_t last_access = 0;  // LRU order for eviction
};

}  // namespace siterelay::cache
