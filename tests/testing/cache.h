// A Cache in a test's temp dir, with the test's clock and, optionally, a filesystem seam; and a
// file put straight into it.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

#include "cache/cache.h"

namespace siterelay::testing {

inline std::unique_ptr<cache::Cache> OpenTestCache(const std::string& dir, Clock* clock,
                                                   FileSystem* fs = FileSystem::Default(),
                                                   uint64_t max_bytes = 1ull << 30) {
  cache::CacheOptions o;
  o.data_dir = dir;
  o.max_bytes = max_bytes;
  o.clock = clock;
  o.fs = fs;
  auto c = cache::Cache::Open(o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

// Stores `content` and publishes `entry` (path, content type, source... as the test wants) for
// it, with its digest and size filled in.
inline void PutFile(cache::Cache* cache, cache::Entry entry, std::string_view content) {
  auto w = cache->store().Create();
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE(
      (*w)->Append({reinterpret_cast<const uint8_t*>(content.data()), content.size()}).ok());
  auto d = (*w)->Commit();
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  entry.sha256 = *d;
  entry.size = content.size();
  if (entry.content_type.empty()) entry.content_type = "application/octet-stream";
  ASSERT_TRUE(cache->Publish({entry}).ok());
}

}  // namespace siterelay::testing
