// libFuzzer target for the header values the relay takes from its upstreams: Retry-After
// (sync/backoff.h), which decides when the relay asks again, and HTTP dates (Last-Modified,
// relay/base/http_date.h), which it keeps as validators and shows phones. A hostile origin
// must not park the relay for longer than kMaxRetryAfterSeconds or ask it to retry in the past,
// and every date it accepts must survive being formatted and read back.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "relay/base/http_date.h"
#include "sync/backoff.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view value(reinterpret_cast<const char*>(data), size);
  constexpr int64_t kNow = 1'795'636'800;  // 2026-11-25
  if (auto wait = siterelay::sync::ParseRetryAfter(value, kNow)) {
    FUZZ_CHECK(*wait >= 0 && *wait <= siterelay::sync::kMaxRetryAfterSeconds);
  }
  if (auto t = siterelay::ParseHttpDate(value)) {
    auto again = siterelay::ParseHttpDate(siterelay::FormatHttpDate(*t));
    FUZZ_CHECK(again && *again == *t);
  }
  return 0;
}
