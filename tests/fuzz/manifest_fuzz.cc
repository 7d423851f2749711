// libFuzzer target for ParseManifest() (sync/manifest.h): the origin's manifest is input from
// the network. Beyond never crashing, whatever it accepts must be safe to use as catalog paths
// (no escape from the root) and consistent (sizes add up, no duplicates).
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "sync/manifest.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  auto m = siterelay::sync::ParseManifest(json);
  if (!m.ok()) {
    FUZZ_CHECK(!m.status().message().empty());
    return 0;
  }
  uint64_t total = 0;
  std::set<std::string> seen;
  for (const auto& f : m->files) {
    FUZZ_CHECK(!f.path.empty() && f.path.front() != '/');
    size_t start = 0;
    while (start <= f.path.size()) {  // every segment a real name
      size_t end = f.path.find('/', start);
      if (end == std::string::npos) end = f.path.size();
      std::string_view seg = std::string_view(f.path).substr(start, end - start);
      FUZZ_CHECK(!seg.empty() && seg != "." && seg != "..");
      start = end + 1;
    }
    FUZZ_CHECK(f.path.find('\\') == std::string::npos);
    FUZZ_CHECK(f.path.size() <= siterelay::sync::kMaxManifestPathBytes);
    FUZZ_CHECK(seen.insert(f.path).second);
    total += f.size;
  }
  FUZZ_CHECK(total == m->total_bytes);
  FUZZ_CHECK(m->files.size() <= siterelay::sync::kMaxManifestFiles);
  return 0;
}
