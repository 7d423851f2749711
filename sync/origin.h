// Where each path comes from (CONTRACT.md [origin] and [[origin.route]]): the first route whose
// glob matches the path, else [origin]. Pure values; any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "relay/base/config.h"

namespace siterelay::sync {

struct Upstream {
  std::string url;  // base URL ending in '/': http, https or file
  std::string user;
  std::string password;
  std::string ca_file;
  std::string name;  // for logs: "origin" or "route <match>"
};

class Origins {
 public:
  explicit Origins(const OriginConfig& config);

  // False when [origin] url is empty: only imported and uploaded content is served.
  bool enabled() const { return !upstreams_.front().url.empty(); }
  // Index into upstreams() of the upstream serving `path` (a catalog path, no leading '/').
  size_t Route(std::string_view path) const;
  const std::vector<Upstream>& upstreams() const { return upstreams_; }
  // The URL of `path` at upstream `index`: its base URL plus the path, percent-encoded except
  // for '/' and RFC 3986 unreserved characters.
  std::string UrlFor(size_t index, std::string_view path) const;

 private:
  std::vector<Upstream> upstreams_;  // [0] is [origin]; then the routes in order
  std::vector<std::string> globs_;   // globs_[i] selects upstreams_[i + 1]
};

// RFC 3986 percent-encoding of a path: '/' and unreserved characters stay as they are.
std::string EncodePath(std::string_view path);

}  // namespace siterelay::sync
