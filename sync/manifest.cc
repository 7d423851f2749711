#include "sync/manifest.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>

namespace siterelay::sync {
namespace {

// A manifest path becomes a catalog path as it is: refuse anything a phone's request could not
// normalise to (DESIGN.md: one namespace), rather than rewrite it.
Status CheckPath(std::string_view p) {
  if (p.empty()) return Status::InvalidArgument("empty");
  if (p.size() > kMaxManifestPathBytes) {
    return Status::InvalidArgument("longer than " + std::to_string(kMaxManifestPathBytes) +
                                   " bytes");
  }
  if (p.front() == '/') return Status::InvalidArgument("absolute");
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    std::string_view seg = p.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") {
      return Status::InvalidArgument("has an empty, '.' or '..' segment");
    }
    start = end + 1;
  }
  for (char c : p) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\\') {
      return Status::InvalidArgument("has a control character or backslash");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Manifest> ParseManifest(std::string_view json) {
  if (json.size() > kMaxManifestBytes) {
    return Status::InvalidArgument("manifest over " + std::to_string(kMaxManifestBytes) +
                                   " bytes");
  }
  // No exceptions on the data path: a parse error yields a discarded value.
  nlohmann::json doc = nlohmann::json::parse(json.begin(), json.end(), nullptr,
                                             /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::InvalidArgument("not valid JSON");
  if (!doc.is_object()) return Status::InvalidArgument("not a JSON object");
  auto files = doc.find("files");
  if (files == doc.end() || !files->is_array()) {
    return Status::InvalidArgument("files: missing or not an array");
  }
  if (files->size() > kMaxManifestFiles) {
    return Status::InvalidArgument("files: more than " + std::to_string(kMaxManifestFiles));
  }
  Manifest m;
  std::set<std::string> seen;
  m.files.reserve(files->size());
  for (size_t i = 0; i < files->size(); ++i) {
    const nlohmann::json& f = (*files)[i];
    std::string where = "files[" + std::to_string(i) + "]";
    if (!f.is_object()) return Status::InvalidArgument(where + ": not an object");
    auto path = f.find("path");
    auto size = f.find("size");
    auto sha = f.find("sha256");
    if (path == f.end() || !path->is_string()) {
      return Status::InvalidArgument(where + ".path: missing or not a string");
    }
    if (size == f.end() || !size->is_number_unsigned()) {
      return Status::InvalidArgument(where + ".size: missing or not a non-negative integer");
    }
    if (sha == f.end() || !sha->is_string()) {
      return Status::InvalidArgument(where + ".sha256: missing or not a string");
    }
    ManifestFile mf;
    mf.path = path->get<std::string>();
    Status ok = CheckPath(mf.path);
    if (!ok.ok()) return Status::InvalidArgument(where + ".path: " + ok.message());
    mf.size = size->get<uint64_t>();
    auto digest = Digest::FromHex(sha->get<std::string>());
    if (!digest.ok()) return Status::InvalidArgument(where + ".sha256: not 64 hex digits");
    mf.sha256 = *digest;
    if (mf.size > UINT64_MAX - m.total_bytes) {
      return Status::InvalidArgument(where + ".size: the sizes add up past 2^64");
    }
    if (!seen.insert(mf.path).second) {
      return Status::InvalidArgument(where + ".path: \"" + mf.path + "\" is listed twice");
    }
    m.total_bytes += mf.size;
    m.files.push_back(std::move(mf));
  }
  return m;
}

}  // namespace siterelay::sync
