#include "relay/base/mime.h"

#include <array>
#include <utility>

#include "relay/base/strings.h"

namespace siterelay {

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
  size_t slash = path.rfind('/');
  std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  std::string_view ext = name.substr(dot + 1);
  for (const auto& [e, type] : kTypes) {
    if (EqualsIgnoreCase(ext, e)) return type;
  }
  return "application/octet-stream";
}

}  // namespace siterelay
