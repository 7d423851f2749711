#include "cache/entry.h"

#include "relay/base/http_date.h"

namespace siterelay::cache {

std::string_view SourceName(Source s) {
  switch (s) {
    case Source::kOrigin: return "origin";
    case Source::kManifest: return "manifest";
    case Source::kImport: return "import";
    case Source::kUpload: return "upload";
  }
  return "unknown";
}

int64_t Entry::Modified() const {
  auto lm = ParseHttpDate(last_modified);
  return lm ? *lm : fetched_at;
}

std::string_view Entry::State(int64_t now) const {
  if (source == Source::kUpload) return forwarded ? "uploaded" : "upload-pending";
  if (pinned) return "pinned";
  if (source == Source::kImport) return "imported";
  if (fresh_until != 0 && now >= fresh_until) return "stale";
  return "fresh";
}

}  // namespace siterelay::cache
