#include "relay/ftp/listing.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace siterelay::ftp {
namespace {

constexpr int64_t kNow = 1795637640;                 // 2026-11-25 20:14:00 UTC
constexpr int64_t kSixMonths = 15778476;             // GNU ls: half of 365.2425 days
constexpr int64_t kNewYear2026 = 1767225600;         // 2026-01-01 00:00:00 UTC
constexpr int64_t kLastSecondOf9999 = 253402300799;  // 9999-12-31 23:59:59 UTC

ListEntry File(std::string name, uint64_t size, int64_t modified) {
  return ListEntry{std::move(name), false, size, modified};
}

ListEntry Dir(std::string name, int64_t modified) {
  return ListEntry{std::move(name), true, 0, modified};
}

// The date columns of a LIST line: what lies between the size and the name.
std::string DateOf(const ListEntry& e, int64_t now) {
  std::string line = FormatListLine(e, now);
  std::string head = e.dir ? "dr-xr-xr-x 2 ftp ftp 0 " : "-r--r--r-- 1 ftp ftp 0 ";
  EXPECT_EQ(line.substr(0, head.size()), head);
  std::string tail = " " + e.name + "\r\n";
  EXPECT_EQ(line.substr(line.size() - tail.size()), tail);
  return line.substr(head.size(), line.size() - head.size() - tail.size());
}

// --- FormatListLine ---

TEST(FormatListLineTest, WritesARecentFileAsLsDoes) {
  EXPECT_EQ(FormatListLine(File("0004f282e824.cfg", 12345, kNow), kNow),
            "-r--r--r-- 1 ftp ftp 12345 Nov 25 20:14 0004f282e824.cfg\r\n");
}

TEST(FormatListLineTest, WritesADirectoryWithSizeZero) {
  EXPECT_EQ(FormatListLine(Dir("firmware", kNow - 60), kNow),
            "dr-xr-xr-x 2 ftp ftp 0 Nov 25 20:13 firmware\r\n");
  ListEntry d = Dir("logs", kNow);
  d.size = 4096;  // whatever a caller puts there, a directory lists as 0
  EXPECT_EQ(FormatListLine(d, kNow), "dr-xr-xr-x 2 ftp ftp 0 Nov 25 20:14 logs\r\n");
}

TEST(FormatListLineTest, PadsTheDayOfMonthWithASpace) {
  EXPECT_EQ(DateOf(File("a", 0, 1793865780), kNow), "Nov  5 08:03");  // 2026-11-05 08:03:00
}

TEST(FormatListLineTest, KeepsSpacesInNamesAndWritesLargeSizes) {
  EXPECT_EQ(FormatListLine(File("sip 5.9.ld", UINT64_MAX, kNow), kNow),
            "-r--r--r-- 1 ftp ftp 18446744073709551615 Nov 25 20:14 sip 5.9.ld\r\n");
}

TEST(FormatListLineTest, WritesTheYearForFilesOlderThanSixMonths) {
  EXPECT_EQ(DateOf(File("a", 0, 1764101640), kNow), "Nov 25  2025");  // a year before
  EXPECT_EQ(DateOf(File("a", 0, 0), kNow), "Jan  1  1970");
}

TEST(FormatListLineTest, SwitchesToTheYearExactlySixMonthsBack) {
  // now - kSixMonths is 2026-05-27 05:19:24; ls shows the time only for what is newer.
  EXPECT_EQ(DateOf(File("a", 0, kNow - kSixMonths + 1), kNow), "May 27 05:19");
  EXPECT_EQ(DateOf(File("a", 0, kNow - kSixMonths), kNow), "May 27  2026");
}

TEST(FormatListLineTest, ShowsTheTimeUpToAnHourInTheFuture) {
  EXPECT_EQ(DateOf(File("a", 0, kNow + 3600), kNow), "Nov 25 21:14");
  EXPECT_EQ(DateOf(File("a", 0, kNow + 3601), kNow), "Nov 25  2026");
}

TEST(FormatListLineTest, ShowsTheTimeAcrossAYearBoundary) {
  // Recent is about seconds, not the calendar year: last year's last second, seen on New Year's
  // Day, still shows its time, and so does a file from a minute after midnight seen just before.
  EXPECT_EQ(DateOf(File("a", 0, kNewYear2026 - 1), kNewYear2026), "Dec 31 23:59");
  EXPECT_EQ(DateOf(File("a", 0, kNewYear2026 + 60), kNewYear2026 - 60), "Jan  1 00:01");
  // Seven months before 2026-01-03, in the previous year: its year.
  EXPECT_EQ(DateOf(File("a", 0, 1748736000), kNewYear2026 + 2 * 86400), "Jun  1  2025");
}

TEST(FormatListLineTest, ClampsTimesOutsideFourDigitYears) {
  EXPECT_EQ(DateOf(File("a", 0, -86400), kNow), "Jan  1  1970");
  EXPECT_EQ(DateOf(File("a", 0, INT64_MAX), kNow), "Dec 31  9999");
  EXPECT_EQ(DateOf(File("a", 0, INT64_MIN), INT64_MIN), "Jan  1 00:00");
}

// --- FormatFacts ---

TEST(FormatFactsTest, WritesTypeSizeModifyAndReadPermissionForAFile) {
  EXPECT_EQ(FormatFacts(File("0004f282e824.cfg", 12345, kNow)),
            "type=file;size=12345;modify=20261125201400;perm=r; 0004f282e824.cfg");
}

TEST(FormatFactsTest, WritesEnterAndListPermissionAndNoSizeForADirectory) {
  EXPECT_EQ(FormatFacts(Dir("firmware", kNow)), "type=dir;modify=20261125201400;perm=el; firmware");
}

TEST(FormatFactsTest, KeepsTheNameAfterTheSpaceAsItIs) {
  // RFC 3659 section 7.2: everything after the first space is the name, semicolons included.
  EXPECT_EQ(FormatFacts(File("a; b", 0, 0)), "type=file;size=0;modify=19700101000000;perm=r; a; b");
}

// --- FormatFtpTime ---

TEST(FormatFtpTimeTest, WritesUtcDigits) {
  EXPECT_EQ(FormatFtpTime(kNow), "20261125201400");
  EXPECT_EQ(FormatFtpTime(kNow + 59), "20261125201459");
  EXPECT_EQ(FormatFtpTime(kNewYear2026 - 1), "20251231235959");
  EXPECT_EQ(FormatFtpTime(0), "19700101000000");
}

TEST(FormatFtpTimeTest, ClampsToFourDigitYears) {
  EXPECT_EQ(FormatFtpTime(-1), "19700101000000");
  EXPECT_EQ(FormatFtpTime(kLastSecondOf9999), "99991231235959");
  EXPECT_EQ(FormatFtpTime(kLastSecondOf9999 + 1), "99991231235959");
  EXPECT_EQ(FormatFtpTime(INT64_MAX), "99991231235959");
}

}  // namespace
}  // namespace siterelay::ftp
