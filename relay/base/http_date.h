// HTTP dates (RFC 9110 section 5.6.7): Last-Modified and If-Modified-Since towards phones, and
// the origin's validators in sync. Pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace siterelay {

// IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT".
std::string FormatHttpDate(int64_t unix_seconds);
// Accepts the three formats a recipient must read: IMF-fixdate, RFC 850
// ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6 08:49:37 1994").
std::optional<int64_t> ParseHttpDate(std::string_view text);

}  // namespace siterelay
