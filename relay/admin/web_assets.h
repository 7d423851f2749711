// The web console's files (web/ in the source tree), embedded into the binary at build time by
// cmake/embed_web.cmake: the relay serves its console with nothing installed beside it.
#pragma once

#include <span>
#include <string_view>

namespace siterelay::admin {

struct WebAsset {
  std::string_view name;          // "index.html", "console.js": the URL path without its '/'
  std::string_view content_type;  // by extension
  std::string_view body;
  std::string_view etag;          // strong, quoted: the first 64 bits of the body's sha256
};

// Every embedded file, sorted by name.
std::span<const WebAsset> WebAssets();

// The asset for a URL path: "/" is index.html; nullptr when there is none. Never matches a path
// with a second '/' or a "..", so nothing but the embedded files can be named.
const WebAsset* FindWebAsset(std::string_view url_path);

}  // namespace siterelay::admin
