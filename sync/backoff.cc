#include "sync/backoff.h"

#include <algorithm>
#include <charconv>
#include <random>

#include "relay/base/http_date.h"
#include "relay/base/strings.h"

namespace siterelay::sync {

uint64_t Backoff(uint64_t base_ms, int attempt) {
  thread_local std::minstd_rand rng(std::random_device{}());
  uint64_t d = base_ms << std::clamp(attempt, 0, 16);
  std::uniform_int_distribution<uint64_t> spread(d / 2, d);
  return spread(rng);
}

std::optional<int64_t> ParseRetryAfter(std::string_view value, int64_t now) {
  value = TrimOws(value);
  if (value.empty()) return std::nullopt;
  int64_t secs = 0;
  if (value.front() >= '0' && value.front() <= '9') {
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
    if (ec == std::errc::result_out_of_range) return kMaxRetryAfterSeconds;
    if (ec != std::errc() || p != value.data() + value.size()) return std::nullopt;
  } else {
    auto when = ParseHttpDate(value);
    if (!when) return std::nullopt;
    secs = *when - now;
  }
  return std::clamp<int64_t>(secs, 0, kMaxRetryAfterSeconds);
}

}  // namespace siterelay::sync
