#include "relay/base/mime.h"

#include <array>
#include <utility>

#include "relay/base/strings.h"

namespace siterelay {

namespace {

std::string_view Extension(std::string_view path) {
  size_t slash = path.rfind('/');
  std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  size_t dot = name.rfind('.');
  return dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
}

}  // namespace

ContentClass ContentClassOf(std::string_view path) {
  std::string_view ext = Extension(path);
  if (EqualsIgnoreCase(ext, "ld") || EqualsIgnoreCase(ext, "bin")) return ContentClass::kFirmware;
  if (EqualsIgnoreCase(ext, "cfg") || EqualsIgnoreCase(ext, "xml")) return ContentClass::kConfig;
  return ContentClass::kOther;
}

std::string_view ContentClassName(ContentClass c) {
  switch (c) {
    case ContentClass::kFirmware: return "firmware";
    case ContentClass::kConfig: return "config";
    case ContentClass::kOther: return "other";
  }
  return "other";
}

std::string_view ContentTypeForPath(std::string_view path) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 10> kTypes = {{
      {"cfg", "application/xml"},
      {"xml", "application/xml"},
      {"ld", "application/octet-stream"},
      {"bin", "application/octet-stream"},
      {"ver", "text/plain"},
      {"log", "text/plain"},
      {"txt", "text/plain"},
      {"html", "text/html"},
      {"json", "application/json"},
      {"css", "text/css"},
  }};
  std::string_view ext = Extension(path);
  if (ext.empty()) return "application/octet-stream";
  for (const auto& [e, type] : kTypes) {
    if (EqualsIgnoreCase(ext, e)) return type;
  }
  return "application/octet-stream";
}

}  // namespace siterelay
