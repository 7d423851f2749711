#include "relay/base/http_date.h"

#include <array>
#include <cstdio>
#include <ctime>

namespace siterelay {
namespace {

constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                    "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

int MonthIndex(std::string_view m) {
  for (size_t i = 0; i < kMonths.size(); ++i) {
    if (m == kMonths[i]) return static_cast<int>(i);
  }
  return -1;
}

bool Digits(std::string_view s, size_t n, int* out) {
  if (s.size() != n) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

bool ParseClock(std::string_view s, std::tm* tm) {
  return s.size() == 8 && s[2] == ':' && s[5] == ':' && Digits(s.substr(0, 2), 2, &tm->tm_hour) &&
         Digits(s.substr(3, 2), 2, &tm->tm_min) && Digits(s.substr(6, 2), 2, &tm->tm_sec) &&
         tm->tm_hour < 24 && tm->tm_min < 60 && tm->tm_sec < 61;
}

std::optional<int64_t> ToUnix(std::tm* tm) {
  if (tm->tm_mday < 1 || tm->tm_mday > 31 || tm->tm_year < 70) return std::nullopt;
  time_t t = timegm(tm);
  // A leap second at the very end of 9999 rolls into year 10000, which no HTTP date can spell.
  constexpr time_t kLastHttpDate = 253402300799;  // Fri, 31 Dec 9999 23:59:59 GMT
  if (t < 0 || t > kLastHttpDate) return std::nullopt;
  return static_cast<int64_t>(t);
}

}  // namespace

std::string FormatHttpDate(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                kDays[static_cast<size_t>(tm.tm_wday)].data(), tm.tm_mday,
                kMonths[static_cast<size_t>(tm.tm_mon)].data(), tm.tm_year + 1900, tm.tm_hour,
                tm.tm_min, tm.tm_sec);
  return buf;
}

std::optional<int64_t> ParseHttpDate(std::string_view s) {
  std::tm tm{};
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (s.size() == 29 && s[3] == ',' && s[4] == ' ' && s[7] == ' ' && s[11] == ' ' &&
      s[16] == ' ' && s[25] == ' ' && s.substr(26) == "GMT") {
    int year = 0;
    tm.tm_mon = MonthIndex(s.substr(8, 3));
    if (tm.tm_mon < 0 || !Digits(s.substr(5, 2), 2, &tm.tm_mday) ||
        !Digits(s.substr(12, 4), 4, &year) || !ParseClock(s.substr(17, 8), &tm)) {
      return std::nullopt;
    }
    tm.tm_year = year - 1900;
    return ToUnix(&tm);
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (s.size() == 24 && s[3] == ' ' && s[7] == ' ' && s[10] == ' ' && s[19] == ' ') {
    int year = 0;
    tm.tm_mon = MonthIndex(s.substr(4, 3));
    std::string_view day = s.substr(8, 2);
    if (day[0] == ' ') day.remove_prefix(1);
    if (tm.tm_mon < 0 || !Digits(day, day.size(), &tm.tm_mday) ||
        !ParseClock(s.substr(11, 8), &tm) || !Digits(s.substr(20, 4), 4, &year)) {
      return std::nullopt;
    }
    tm.tm_year = year - 1900;
    return ToUnix(&tm);
  }
  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
  size_t comma = s.find(", ");
  if (comma != std::string_view::npos && s.size() == comma + 24 && s.substr(s.size() - 3) == "GMT") {
    std::string_view d = s.substr(comma + 2);  // "06-Nov-94 08:49:37 GMT"
    int yy = 0;
    if (d[2] != '-' || d[6] != '-' || d[9] != ' ' || d[18] != ' ') return std::nullopt;
    tm.tm_mon = MonthIndex(d.substr(3, 3));
    if (tm.tm_mon < 0 || !Digits(d.substr(0, 2), 2, &tm.tm_mday) ||
        !Digits(d.substr(7, 2), 2, &yy) || !ParseClock(d.substr(10, 8), &tm)) {
      return std::nullopt;
    }
    tm.tm_year = yy < 70 ? yy + 100 : yy;  // two-digit years: RFC 9110 section 5.6.7
    return ToUnix(&tm);
  }
  return std::nullopt;
}

}  // namespace siterelay
