#include "relay/files/path.h"

#include "relay/base/strings.h"

namespace siterelay::files {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<std::string> PercentDecode(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '%') {
      out.push_back(raw[i]);
      continue;
    }
    int hi = i + 2 < raw.size() ? HexValue(raw[i + 1]) : -1;
    int lo = i + 2 < raw.size() ? HexValue(raw[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument("bad percent-encoding in path");
    }
    out.push_back(static_cast<char>(hi << 4 | lo));
    i += 2;
  }
  return out;
}

Result<std::string> NormalizePath(std::string_view decoded) {
  for (char c : decoded) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\0' || c == '\\') return Status::PermissionDenied("NUL or backslash in path");
    if (u < 0x20 || u == 0x7f) return Status::InvalidArgument("control character in path");
  }
  if (!ValidUtf8(decoded)) return Status::PermissionDenied("path is not valid UTF-8");
  std::string out;
  out.reserve(decoded.size());
  std::string_view rest = decoded;
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (seg.empty() || seg == ".") continue;
    // Refused even where it would stay inside the root: no client of ours needs "..", and a
    // path that is never resolved cannot be resolved wrongly.
    if (seg == "..") return Status::PermissionDenied("'..' in path");
    if (!out.empty()) out.push_back('/');
    out.append(seg);
  }
  return out;
}

std::string JoinRoot(std::string_view root, std::string_view path) {
  while (!root.empty() && root.front() == '/') root.remove_prefix(1);
  while (!root.empty() && root.back() == '/') root.remove_suffix(1);
  if (root.empty()) return std::string(path);
  if (path.empty()) return std::string(root);
  std::string out(root);
  out.push_back('/');
  out.append(path);
  return out;
}

std::string_view BaseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace siterelay::files
