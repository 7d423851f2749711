// Logging: one line per event on stderr, with a level, a UTC timestamp and secrets masked.
//
//   SR_LOG(kInfo) << "imported " << n << " files";
//
// Every line passes through MaskSecrets() before it is written, so a URL with credentials or an
// Authorization header never reaches the log whole, whatever the caller forgot. Control
// characters (from peer input) are escaped so that one event is always one line.
// Thread safety: SR_LOG may be used from any thread; each line is written with one write(2).
//
// Each SR_LOG site (file and line) has a budget: kLogBurst lines, refilled at kLogLinesPerSecond.
// Past it, lines from that site are counted instead of written, and the next line it writes says
// how many were left out. Anyone on the LAN can make the relay log (a flood of malformed TFTP
// requests, refused logins), and a small box's disk or journal must not fill with one line
// repeated; the other sites keep their own budgets, so nothing else goes quiet. SR_ACCESS_LOG is
// for the one line per request or transfer (the access log): it has no budget, as its volume is
// the traffic's, and a storm of a thousand phones must be logged whole. Its lines are also
// gathered and written together (at kAccessLogFlushBytes, at any other line, or by FlushLog(),
// which `siterelay serve` calls every kAccessLogFlushMs and when it stops): one write(2) per
// request was a fifth of the loop's time per request. A kill -9 loses at most those last
// milliseconds of access lines, never another line. Debug lines have none
// either, as the operator asked for them, nor errors, which are the relay's own failures. A
// site's count of lines left out shows with its next line; a flood that stops shows it never.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>

namespace siterelay {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Parses "debug", "info", "warning", "error".
bool ParseLogLevel(std::string_view text, LogLevel* out);

// Replaces where lines go (tests capture them). nullptr restores stderr.
void SetLogSink(std::function<void(std::string_view line)> sink);

// Masks the password of `scheme://user:password@host` as `****` (phones log them the same way,
// PHONES.md) and the credentials of `Authorization: Basic ...`. Leaves everything else as is.
std::string MaskSecrets(std::string_view text);

inline constexpr size_t kAccessLogFlushBytes = 64 * 1024;
inline constexpr uint64_t kAccessLogFlushMs = 100;
// Writes the access lines gathered so far. Any thread.
void FlushLog();

inline constexpr int kLogBurst = 100;
inline constexpr int kLogLinesPerSecond = 10;
// Tests: the clock the budgets refill by (monotonic nanoseconds); nullptr restores the real one.
void SetLogClockForTest(int64_t (*now_ns)());

class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line, bool budgeted = true);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  const char* file_;
  int line_;
  bool budgeted_;
  bool access_;
  std::ostringstream stream_;
};

// Turns the streamed expression into void so SR_LOG can sit in a ?: (glog's idiom), which keeps
// `if (x) SR_LOG(kInfo) << y; else ...` unambiguous.
struct LogVoidify {
  void operator&(std::ostream&) {}
};

}  // namespace siterelay

#define SR_LOG_IMPL(level, budgeted)                                                    \
  (::siterelay::LogLevel::level < ::siterelay::GetLogLevel())                           \
      ? (void)0                                                                         \
      : ::siterelay::LogVoidify() &                                                     \
            ::siterelay::LogMessage(::siterelay::LogLevel::level, __FILE__, __LINE__, budgeted) \
                .stream()
#define SR_LOG(level) SR_LOG_IMPL(level, true)
#define SR_ACCESS_LOG(level) SR_LOG_IMPL(level, false)
