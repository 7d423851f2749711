#include "sync/origin.h"

#include <fnmatch.h>

namespace siterelay::sync {

std::string EncodePath(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(path.size());
  for (char ch : path) {
    auto c = static_cast<unsigned char>(ch);
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
    if (keep) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

Origins::Origins(const OriginConfig& config) {
  upstreams_.push_back(
      Upstream{config.url, config.user, config.password, config.ca_file, "origin"});
  for (const OriginRoute& r : config.routes) {
    // A route shares [origin]'s trust anchor: ca_file names what this site trusts upstream.
    upstreams_.push_back(
        Upstream{r.url, r.user, r.password, config.ca_file, "route \"" + r.match + "\""});
    globs_.push_back(r.match);
  }
}

size_t Origins::Route(std::string_view path) const {
  std::string p(path);
  for (size_t i = 0; i < globs_.size(); ++i) {
    // Without FNM_PATHNAME, '*' also matches '/': "*.ld" takes "fw/sip.ld" too.
    if (::fnmatch(globs_[i].c_str(), p.c_str(), 0) == 0) return i + 1;
  }
  return 0;
}

std::string Origins::UrlFor(size_t index, std::string_view path) const {
  return upstreams_[index].url + EncodePath(path);
}

}  // namespace siterelay::sync
