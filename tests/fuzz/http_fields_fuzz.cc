// libFuzzer target for the header field parsers of relay/http/fields.h and the HTTP dates of
// relay/base/http_date.h (If-Modified-Since is one of those fields).
//
// Input layout: the first 8 bytes are a little-endian number, the rest is the field value text.
// The number, reduced to at most 2^40 (a 1 TiB file, far past any phone image), is the size of
// the file a Range applies to; reduced to the years 1970..9999, it is a time to format.
//
//   - ParseRange: a satisfiable range lies inside the file (first <= last < size), or the 206
//     would read past the end of the blob.
//   - ParseHttpDate / FormatHttpDate: a date the relay accepts in If-Modified-Since formats to
//     an IMF-fixdate that parses back to the same second, and every time in range formats to a
//     date that parses back (Last-Modified goes out, comes back as If-Modified-Since).
//   - ParseBasicAuth: credentials re-encoded as the phone would send them ("Basic " +
//     base64(user ":" password)) parse back to the same; and any text encoded that way parses
//     back to the text split at its first colon (RFC 7617 section 2: the user has none).
//   - EtagListMatches: never crashes; "*" matches any entity tag; a list that ends with ours
//     matches, whatever comes before.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "relay/base/http_date.h"
#include "relay/http/fields.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace http = siterelay::http;

constexpr uint64_t kMaxFileSize = uint64_t{1} << 40;
// 9999-12-31T23:59:59Z + 1: IMF-fixdate has four year digits.
constexpr uint64_t kEndOfYear9999 = 253402300800;
// The limit ParseBasicAuth puts on the base64 text.
constexpr size_t kMaxBase64Bytes = 4096;

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t n = uint32_t{static_cast<uint8_t>(in[i])} << 16 |
                 uint32_t{static_cast<uint8_t>(in[i + 1])} << 8 |
                 uint32_t{static_cast<uint8_t>(in[i + 2])};
    out.push_back(kAlphabet[n >> 18 & 63]);
    out.push_back(kAlphabet[n >> 12 & 63]);
    out.push_back(kAlphabet[n >> 6 & 63]);
    out.push_back(kAlphabet[n & 63]);
  }
  size_t left = in.size() - i;
  if (left > 0) {
    uint32_t n = uint32_t{static_cast<uint8_t>(in[i])} << 16;
    if (left == 2) n |= uint32_t{static_cast<uint8_t>(in[i + 1])} << 8;
    out.push_back(kAlphabet[n >> 18 & 63]);
    out.push_back(kAlphabet[n >> 12 & 63]);
    out.push_back(left == 2 ? kAlphabet[n >> 6 & 63] : '=');
    out.push_back('=');
  }
  return out;
}

void CheckRange(std::string_view text, uint64_t size) {
  http::ByteRange r = http::ParseRange(text, size);
  if (r.kind == http::ByteRange::kSatisfiable) {
    FUZZ_CHECK(r.first <= r.last);
    FUZZ_CHECK(r.last < size);
  }
}

void CheckDate(std::string_view text, uint64_t number) {
  if (std::optional<int64_t> t = siterelay::ParseHttpDate(text)) {
    FUZZ_CHECK(*t >= 0);
    std::string formatted = siterelay::FormatHttpDate(*t);
    std::optional<int64_t> back = siterelay::ParseHttpDate(formatted);
    if (!back || *back != *t) {
      std::fprintf(stderr, "ParseHttpDate -> %lld, formatted as \"%s\"\n",
                   static_cast<long long>(*t), formatted.c_str());
    }
    FUZZ_CHECK(back.has_value());
    FUZZ_CHECK(*back == *t);
  }
  auto t = static_cast<int64_t>(number % kEndOfYear9999);
  std::string formatted = siterelay::FormatHttpDate(t);
  FUZZ_CHECK(formatted.size() == 29);
  std::optional<int64_t> back = siterelay::ParseHttpDate(formatted);
  FUZZ_CHECK(back.has_value());
  FUZZ_CHECK(*back == t);
}

void CheckBasicAuth(std::string_view text) {
  if (std::optional<http::BasicCredentials> creds = http::ParseBasicAuth(text)) {
    FUZZ_CHECK(creds->user.find(':') == std::string::npos);
    std::string again = "Basic " + Base64(creds->user + ":" + creds->password);
    std::optional<http::BasicCredentials> back = http::ParseBasicAuth(again);
    FUZZ_CHECK(back.has_value());
    FUZZ_CHECK(back->user == creds->user);
    FUZZ_CHECK(back->password == creds->password);
  }

  std::string encoded = Base64(text);
  if (encoded.empty() || encoded.size() > kMaxBase64Bytes) return;
  std::optional<http::BasicCredentials> decoded = http::ParseBasicAuth("Basic " + encoded);
  size_t colon = text.find(':');
  FUZZ_CHECK(decoded.has_value() == (colon != std::string_view::npos));
  if (decoded) {
    FUZZ_CHECK(decoded->user == text.substr(0, colon));
    FUZZ_CHECK(decoded->password == text.substr(colon + 1));
  }
}

void CheckEtag(std::string_view text) {
  constexpr std::string_view kOurs = "\"abc\"";
  (void)http::EtagListMatches(text, kOurs);
  FUZZ_CHECK(http::EtagListMatches("*", text));
  FUZZ_CHECK(http::EtagListMatches(" * ", text));
  FUZZ_CHECK(http::EtagListMatches(std::string(text) + ", " + std::string(kOurs), kOurs));
  FUZZ_CHECK(http::EtagListMatches(std::string(text) + ",W/" + std::string(kOurs), kOurs));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t number = 0;
  for (size_t i = 0; i < 8; ++i) number |= uint64_t{data[i]} << (8 * i);
  std::string_view text(reinterpret_cast<const char*>(data) + 8, size - 8);

  CheckRange(text, number % (kMaxFileSize + 1));
  CheckDate(text, number);
  CheckBasicAuth(text);
  CheckEtag(text);
  return 0;
}
