#include "relay/ftp/listing.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <string_view>

namespace siterelay::ftp {
namespace {

constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// 9999-12-31 23:59:59 UTC, the last second a four-digit year can spell.
constexpr int64_t kLastFourDigitSecond = 253402300799;

// GNU ls (coreutils ls.c): "A Gregorian year has 365.2425 * 24 * 60 * 60 == 31556952 seconds on
// the average"; a time is recent when it is less than half of that in the past.
constexpr int64_t kSixMonthsSeconds = 31556952 / 2;
// A file up to an hour in the future is still shown with its time (the clock of whoever wrote
// it may run a little ahead), as traditional ls and vsftpd do.
constexpr int64_t kFutureSlackSeconds = 60 * 60;

int64_t Clamp(int64_t t) { return std::clamp<int64_t>(t, 0, kLastFourDigitSecond); }

std::tm Utc(int64_t unix_seconds) {
  auto t = static_cast<time_t>(Clamp(unix_seconds));
  std::tm tm{};
  gmtime_r(&t, &tm);  // cannot fail within 1970..9999
  return tm;
}

}  // namespace

std::string FormatListLine(const ListEntry& e, int64_t now) {
  const int64_t modified = Clamp(e.modified);
  now = Clamp(now);
  const bool recent = modified > now - kSixMonthsSeconds && modified <= now + kFutureSlackSeconds;
  const std::tm tm = Utc(modified);
  char date[32];
  if (recent) {
    std::snprintf(date, sizeof date, "%s %2d %02d:%02d",
                  kMonths[static_cast<size_t>(tm.tm_mon)].data(), tm.tm_mday, tm.tm_hour,
                  tm.tm_min);
  } else {
    std::snprintf(date, sizeof date, "%s %2d  %d", kMonths[static_cast<size_t>(tm.tm_mon)].data(),
                  tm.tm_mday, tm.tm_year + 1900);
  }
  std::string line = e.dir ? "dr-xr-xr-x 2 ftp ftp " : "-r--r--r-- 1 ftp ftp ";
  line += std::to_string(e.dir ? 0 : e.size);
  line += ' ';
  line += date;
  line += ' ';
  line += e.name;
  line += "\r\n";
  return line;
}

std::string FormatFacts(const ListEntry& e) {
  std::string facts = e.dir ? "type=dir;" : "type=file;size=" + std::to_string(e.size) + ";";
  facts += "modify=" + FormatFtpTime(e.modified) + ";";
  facts += e.dir ? "perm=el; " : "perm=r; ";
  facts += e.name;
  return facts;
}

std::string FormatFtpTime(int64_t unix_seconds) {
  const std::tm tm = Utc(unix_seconds);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

}  // namespace siterelay::ftp
