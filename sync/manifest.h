// The origin's manifest (CONTRACT.md "Upstream formats"):
//   {"files": [{"path": "sip.ld", "size": 123, "sha256": "<64 hex>"}, ...]}
// paths relative to origin.url. ParseManifest() is a pure function over the document's bytes
// (fuzzed in tests/fuzz/manifest_fuzz.cc): no I/O, no logging, bounded by the limits below, and
// every path it returns is already safe to use as a catalog path.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "relay/base/sha256.h"
#include "relay/base/status.h"

namespace siterelay::sync {

// Ceilings on what an origin's manifest can make the relay hold or do.
inline constexpr size_t kMaxManifestBytes = 16 << 20;
inline constexpr size_t kMaxManifestFiles = 100'000;
inline constexpr size_t kMaxManifestPathBytes = 1024;

struct ManifestFile {
  std::string path;  // normalised: no leading '/', no '.', '..' or empty segments
  uint64_t size = 0;
  Digest sha256;
};

struct Manifest {
  std::vector<ManifestFile> files;  // in document order, each path once
  uint64_t total_bytes = 0;
};

// InvalidArgument naming the first problem ("files[3].sha256: not 64 hex digits").
// Unknown members are ignored, so an origin may add fields without breaking older relays.
Result<Manifest> ParseManifest(std::string_view json);

}  // namespace siterelay::sync
