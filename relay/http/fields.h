// Parsers for the header fields the server acts on: Range, If-None-Match, Basic credentials
// (HTTP dates are in relay/base/http_date.h). Pure functions; fuzzed with the request parser.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "relay/base/strings.h"

namespace siterelay::http {

// True when `pred` holds for an item of a comma-separated field value (RFC 9110 section 5.6.1),
// each item with its surrounding whitespace removed.
template <typename Pred>
bool AnyListItem(std::string_view list, Pred pred) {
  for (;;) {
    size_t comma = list.find(',');
    if (pred(TrimOws(list.substr(0, comma)))) return true;
    if (comma == std::string_view::npos) return false;
    list.remove_prefix(comma + 1);
  }
}

// RFC 9110 section 14.2, one range only: "bytes=0-499", "bytes=500-", "bytes=-500".
struct ByteRange {
  enum Kind {
    kIgnore,         // no usable Range (absent, another unit, several ranges): send it all, 200
    kSatisfiable,    // 206 with [first, last]
    kUnsatisfiable,  // 416
  };
  Kind kind = kIgnore;
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
};
ByteRange ParseRange(std::string_view value, uint64_t size);

// If-None-Match (RFC 9110 section 13.1.2): true when `etag` (with its quotes) is listed, by weak
// comparison, or the field is "*".
bool EtagListMatches(std::string_view field, std::string_view etag);

struct BasicCredentials {
  std::string user;  // may be "DOMAIN\user" (PHONES.md)
  std::string password;
};
// "Basic <base64(user:password)>"; nullopt for any other scheme or malformed base64.
std::optional<BasicCredentials> ParseBasicAuth(std::string_view value);

}  // namespace siterelay::http
