#include "relay/admin/web_assets.h"

namespace siterelay::admin {

const WebAsset* FindWebAsset(std::string_view url_path) {
  if (url_path.empty() || url_path.front() != '/') return nullptr;
  std::string_view name = url_path.substr(1);
  if (name.empty()) name = "index.html";
  if (name.find('/') != std::string_view::npos || name.find("..") != std::string_view::npos) {
    return nullptr;
  }
  for (const WebAsset& a : WebAssets()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

}  // namespace siterelay::admin
