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

}  // namespace siterelay
