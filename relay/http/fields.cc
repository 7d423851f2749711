#include "relay/http/fields.h"


#include "relay/base/strings.h"

namespace siterelay::http {
namespace {

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

ByteRange ParseRange(std::string_view value, uint64_t size) {
  ByteRange r;
  value = TrimOws(value);
  if (value.size() < 6 || !EqualsIgnoreCase(value.substr(0, 6), "bytes=")) return r;
  std::string_view spec = TrimOws(value.substr(6));
  if (spec.find(',') != std::string_view::npos) return r;  // several ranges: send it all
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return r;
  std::string_view a = TrimOws(spec.substr(0, dash));
  std::string_view b = TrimOws(spec.substr(dash + 1));
  uint64_t first = 0, last = 0;
  if (a.empty()) {  // suffix: the last N bytes
    uint64_t n = 0;
    if (!ParseU64(b, &n)) return r;
    if (n == 0 || size == 0) {
      r.kind = ByteRange::kUnsatisfiable;
      return r;
    }
    r.kind = ByteRange::kSatisfiable;
    r.first = n >= size ? 0 : size - n;
    r.last = size - 1;
    return r;
  }
  if (!ParseU64(a, &first)) return r;
  if (b.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else {
    if (!ParseU64(b, &last) || last < first) return r;  // invalid: ignore (RFC 9110 14.2)
    if (size > 0 && last >= size) last = size - 1;
  }
  if (first >= size) {
    r.kind = ByteRange::kUnsatisfiable;
    return r;
  }
  r.kind = ByteRange::kSatisfiable;
  r.first = first;
  r.last = last;
  return r;
}

bool EtagListMatches(std::string_view field, std::string_view etag) {
  field = TrimOws(field);
  if (field == "*") return true;
  auto opaque = [](std::string_view t) {
    t = TrimOws(t);
    if (t.substr(0, 2) == "W/") t.remove_prefix(2);  // weak comparison
    return t;
  };
  std::string_view ours = opaque(etag);
  return AnyListItem(field, [&](std::string_view item) { return opaque(item) == ours; });
}

std::optional<BasicCredentials> ParseBasicAuth(std::string_view value) {
  value = TrimOws(value);
  if (value.size() < 6 || !EqualsIgnoreCase(value.substr(0, 6), "Basic ")) return std::nullopt;
  std::string_view b64 = TrimOws(value.substr(6));
  if (b64.empty() || b64.size() % 4 != 0 || b64.size() > 4096) return std::nullopt;
  auto sextet = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string decoded;
  for (size_t i = 0; i < b64.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      char c = b64[i + j];
      if (c == '=' && i + 4 == b64.size() && j >= 2) {
        v[j] = 0;
        ++pad;
      } else {
        if (pad > 0) return std::nullopt;  // data after padding
        v[j] = sextet(c);
        if (v[j] < 0) return std::nullopt;
      }
    }
    uint32_t n = static_cast<uint32_t>(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
    decoded.push_back(static_cast<char>(n >> 16));
    if (pad < 2) decoded.push_back(static_cast<char>(n >> 8 & 0xff));
    if (pad < 1) decoded.push_back(static_cast<char>(n & 0xff));
  }
  size_t colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return BasicCredentials{decoded.substr(0, colon), decoded.substr(colon + 1)};
}

}  // namespace siterelay::http
