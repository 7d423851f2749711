#include "relay/base/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include <string>
#include <vector>

namespace siterelay {
namespace {

class CapturedLog {
 public:
  CapturedLog() {
    SetLogSink([this](std::string_view line) { lines.emplace_back(line); });
  }
  ~CapturedLog() {
    SetLogSink(nullptr);
    SetLogLevel(LogLevel::kInfo);
  }
  std::vector<std::string> lines;
};

TEST(MaskSecretsTest, MasksUrlPasswordsAsPhonesDo) {
  EXPECT_EQ(MaskSecrets("GET 'https://sbaierhome%5Cftpuser:secret@host/000000000000.cfg'"),
            "GET 'https://sbaierhome%5Cftpuser:****@host/000000000000.cfg'");
  EXPECT_EQ(MaskSecrets("ftp://PlcmSpIp:PlcmSpIp@10.1.2.3"), "ftp://PlcmSpIp:****@10.1.2.3");
}

TEST(MaskSecretsTest, PasswordWithAtSignIsMaskedWhole) {
  EXPECT_EQ(MaskSecrets("ftp://u:p@ss@10.0.0.5/x"), "ftp://u:****@10.0.0.5/x");
}

TEST(MaskSecretsTest, PasswordWithSlashOrHashIsMasked) {
  EXPECT_EQ(MaskSecrets("GET https://u:pa/ss@h/x done"), "GET https://u:****@h/x done");
  EXPECT_EQ(MaskSecrets("ftp://u:a#b?c@h"), "ftp://u:****@h");
}

TEST(MaskSecretsTest, LeavesUrlsWithoutPasswordsAlone) {
  EXPECT_EQ(MaskSecrets("http://relay:8080/sip.ld and user@host"),
            "http://relay:8080/sip.ld and user@host");
  EXPECT_EQ(MaskSecrets("ftp://anonymous@host/"), "ftp://anonymous@host/");
}

TEST(MaskSecretsTest, MasksBasicCredentials) {
  EXPECT_EQ(MaskSecrets("Authorization: Basic UGxjbVNwSXA6UGxjbVNwSXA="),
            "Authorization: Basic ****");
  EXPECT_EQ(MaskSecrets("authorization: basic UGxjbVNwSXA6"), "authorization: basic ****");
}

TEST(LogTest, OneLinePerEventWithControlCharactersEscaped) {
  CapturedLog log;
  SR_LOG(kWarning) << "peer sent \"a\nb\r\"";
  ASSERT_EQ(log.lines.size(), 1u);
  EXPECT_NE(log.lines[0].find(" warn peer sent \"a\\nb\\r\""), std::string::npos)
      << log.lines[0];
}

TEST(LogTest, MasksSecretsInEveryLine) {
  CapturedLog log;
  SR_LOG(kError) << "origin https://tenant:hunter2@prov.example.com/ unreachable";
  ASSERT_EQ(log.lines.size(), 1u);
  EXPECT_EQ(log.lines[0].find("hunter2"), std::string::npos);
  EXPECT_NE(log.lines[0].find("tenant:****@prov.example.com"), std::string::npos);
}

TEST(LogTest, LevelFiltersAndDoesNotEvaluateTheMessage) {
  CapturedLog log;
  SetLogLevel(LogLevel::kWarning);
  int evaluated = 0;
  auto count = [&] { return ++evaluated; };
  SR_LOG(kInfo) << "hidden " << count();
  SR_LOG(kWarning) << "shown " << count();
  ASSERT_EQ(log.lines.size(), 1u);
  EXPECT_EQ(evaluated, 1);
  EXPECT_NE(log.lines[0].find("shown 1"), std::string::npos);
}

// A flood through one site (malformed TFTP requests from the LAN) writes kLogBurst lines, then a
// line now and then that tells how many were left out; another site is not held back by it.
// The budgets' clock, moved by hand. It starts far from every other test's, so that a site's
// budget left over from another test (ctest runs one per process; --gtest_repeat does not) is
// full again.
int64_t g_fake_ns = 0;
int64_t FakeNs() { return g_fake_ns; }

class LogBudgetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_fake_ns += 3'600'000'000'000;  // an hour on
    SetLogClockForTest(&FakeNs);
  }
  void TearDown() override { SetLogClockForTest(nullptr); }
  CapturedLog log;
};

// A flood through one site (malformed TFTP requests from the LAN) writes kLogBurst lines, then a
// line now and then that tells how many were left out; another site is not held back by it.
TEST_F(LogBudgetTest, ASiteFloodingTheLogIsHeldToItsBudget) {
  auto flood = [](int n) {
    for (int i = 0; i < n; ++i) SR_LOG(kWarning) << "dropped request " << i;
  };
  flood(1000);
  ASSERT_EQ(log.lines.size(), static_cast<size_t>(kLogBurst));
  SR_LOG(kInfo) << "another site";
  ASSERT_EQ(log.lines.size(), static_cast<size_t>(kLogBurst) + 1);
  EXPECT_NE(log.lines.back().find("another site"), std::string::npos);
  EXPECT_EQ(log.lines.back().find("left out"), std::string::npos);
  // A tenth of a second refills one line: the next one says what was left out.
  g_fake_ns += 1'000'000'000 / kLogLinesPerSecond;
  flood(2);
  ASSERT_EQ(log.lines.size(), static_cast<size_t>(kLogBurst) + 2);
  EXPECT_NE(log.lines.back().find("dropped request 0 [900 more like this left out in the last 1 s]"),
            std::string::npos)
      << log.lines.back();
}

// The access log (one line per request or transfer), debug lines and errors have no budget.
TEST_F(LogBudgetTest, AccessDebugAndErrorLinesAreNeverLeftOut) {
  SetLogLevel(LogLevel::kDebug);
  for (int i = 0; i < 3 * kLogBurst; ++i) SR_ACCESS_LOG(kInfo) << "GET /" << i;
  for (int i = 0; i < 3 * kLogBurst; ++i) SR_LOG(kDebug) << "detail " << i;
  for (int i = 0; i < 3 * kLogBurst; ++i) SR_LOG(kError) << "failure " << i;
  EXPECT_EQ(log.lines.size(), static_cast<size_t>(9 * kLogBurst));
}

// Access lines to stderr are gathered and written together: held back until another line (which
// they go ahead of, in order), kAccessLogFlushBytes, or FlushLog().
TEST(LogTest, AccessLinesAreWrittenTogetherAndInOrder) {
  char path[] = "/tmp/siterelay-log-test-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  int saved = ::dup(STDERR_FILENO);
  ::dup2(fd, STDERR_FILENO);
  auto written = [&] { return static_cast<long>(::lseek(fd, 0, SEEK_END)); };
  SR_ACCESS_LOG(kInfo) << "GET /a 200";
  SR_ACCESS_LOG(kInfo) << "GET /b 200";
  long held = written();
  SR_LOG(kWarning) << "something else";
  long after_other = written();
  SR_ACCESS_LOG(kInfo) << "GET /c 200";
  long held_again = written();
  FlushLog();
  long flushed = written();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(fd);
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ::unlink(path);
  EXPECT_EQ(held, 0) << "access lines written one by one";
  EXPECT_GT(after_other, 0);
  EXPECT_EQ(held_again, after_other);
  EXPECT_GT(flushed, held_again);
  size_t a = text.find("GET /a"), b = text.find("GET /b"), other = text.find("something else"),
         c = text.find("GET /c");
  ASSERT_NE(c, std::string::npos) << text;
  EXPECT_LT(a, b);
  EXPECT_LT(b, other);
  EXPECT_LT(other, c);
}

TEST(LogTest, ParsesLevels) {
  LogLevel l;
  EXPECT_TRUE(ParseLogLevel("debug", &l));
  EXPECT_EQ(l, LogLevel::kDebug);
  EXPECT_TRUE(ParseLogLevel("error", &l));
  EXPECT_EQ(l, LogLevel::kError);
  EXPECT_FALSE(ParseLogLevel("loud", &l));
}

}  // namespace
}  // namespace siterelay
