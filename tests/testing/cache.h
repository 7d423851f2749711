// A Cache in a test's temp dir, with the test's clock and, optionally, a filesystem seam.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

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

}  // namespace siterelay::testing
