// libFuzzer target for the one path normaliser (relay/files/path.h): every request path of every
// protocol goes through PercentDecode and NormalizePath, so nothing they accept may leave the
// account's root. Whatever NormalizePath returns must be a plain relative catalog path (no "..",
// ".", empty segments, backslash, control character or invalid UTF-8), must come back unchanged
// from a second pass, and must stay inside a root it is joined to.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "relay/base/strings.h"
#include "relay/files/path.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

void CheckCatalogPath(std::string_view p) {
  if (p.empty()) return;  // the root
  FUZZ_CHECK(p.front() != '/' && p.back() != '/');
  FUZZ_CHECK(p.find('\\') == std::string_view::npos);
  FUZZ_CHECK(siterelay::ValidUtf8(p));
  for (char c : p) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    std::string_view seg = p.substr(start, end - start);
    FUZZ_CHECK(!seg.empty() && seg != "." && seg != "..");
    start = end + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  // As FTP and TFTP give it (no percent-decoding), and as HTTP does (decoded first).
  for (bool encoded : {false, true}) {
    std::string decoded(raw);
    if (encoded) {
      auto d = siterelay::files::PercentDecode(raw);
      if (!d.ok()) {
        FUZZ_CHECK(!d.status().message().empty());
        continue;
      }
      decoded = *d;
    }
    auto n = siterelay::files::NormalizePath(decoded);
    if (!n.ok()) {
      FUZZ_CHECK(!n.status().message().empty());
      continue;
    }
    CheckCatalogPath(*n);
    auto again = siterelay::files::NormalizePath(*n);
    FUZZ_CHECK(again.ok() && *again == *n);
    std::string joined = siterelay::files::JoinRoot("/tenant/", *n);
    FUZZ_CHECK(joined == "tenant" || joined.starts_with("tenant/"));
    FUZZ_CHECK(siterelay::files::JoinRoot("/", *n) == *n);
    std::string_view base = siterelay::files::BaseName(*n);
    FUZZ_CHECK(base.find('/') == std::string_view::npos);
  }
  return 0;
}
