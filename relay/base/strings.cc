#include "relay/base/strings.h"

#include <cstdio>

namespace siterelay {
namespace {

void AppendEscaped(std::string& out, std::string_view s, bool escape_quotes) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (escape_quotes && (c == '"' || c == '\\')) {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '\r') {
      out.append("\\r");
    } else if (c == '\t') {
      out.append("\\t");
    } else if (u < 0x20 || u == 0x7f || (escape_quotes && u >= 0x80)) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02x", u);
      out.append(esc);
    } else {
      out.push_back(c);
    }
  }
}

}  // namespace

std::string Quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  AppendEscaped(out, s, /*escape_quotes=*/true);
  out.push_back('"');
  return out;
}

std::string EscapeControl(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  AppendEscaped(out, s, /*escape_quotes=*/false);
  return out;
}

Utf8Char DecodeUtf8(std::string_view s) {
  if (s.empty()) return {};
  auto c = static_cast<unsigned char>(s[0]);
  if (c < 0x80) return {1, c};
  size_t len;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    cp = c & 0x1fu;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    cp = c & 0x0fu;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    cp = c & 0x07u;
  } else {
    return {};  // a continuation byte first, or 0xc0/0xc1/0xf5+ (overlong or out of range)
  }
  if (len > s.size()) return {};
  for (size_t k = 1; k < len; ++k) {
    auto cc = static_cast<unsigned char>(s[k]);
    if ((cc & 0xc0) != 0x80) return {};
    cp = cp << 6 | (cc & 0x3fu);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff)) {
    return {};
  }
  return {len, cp};
}

bool ValidUtf8(std::string_view s) {
  while (!s.empty()) {
    size_t n = DecodeUtf8(s).length;
    if (n == 0) return false;
    s.remove_prefix(n);
  }
  return true;
}

}  // namespace siterelay
