// Retry timing for everything that talks upstream: exponential backoff with jitter, so that
// relays (and transfers) that failed together do not all come back in the same instant, and the
// origin's own Retry-After (RFC 9110 section 10.2.3). Pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace siterelay::sync {

// `base_ms` doubled per earlier attempt (attempt 0: base), then spread over [d/2, d] at random.
uint64_t Backoff(uint64_t base_ms, int attempt);

// Retry-After as seconds from `now`: delta-seconds or an HTTP-date; nullopt when malformed.
// Capped at kMaxRetryAfterSeconds so an origin cannot park the relay for days.
inline constexpr int64_t kMaxRetryAfterSeconds = 3600;
std::optional<int64_t> ParseRetryAfter(std::string_view value, int64_t now);

}  // namespace siterelay::sync
