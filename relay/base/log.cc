#include "relay/base/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>
#include <utility>

#include "relay/base/strings.h"

namespace siterelay {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::mutex g_sink_mu;
std::function<void(std::string_view)>& Sink() {
  static std::function<void(std::string_view)> sink;
  return sink;
}

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warn";
    case LogLevel::kError: return "error";
  }
  return "?";
}

bool IsSchemeChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '-' || c == '.';
}

// Ends the stretch of a log line that may hold a URL's userinfo. Not '/', '?' or '#': a password
// may contain them unencoded, and masking too much of a line beats printing a password.
bool EndsUrl(char c) {
  return c == ' ' || c == '\'' || c == '"' || c == '\t' || c == '\n' || c == '\r' || c == '<' ||
         c == '>';
}

void WriteStderr(std::string_view text) {
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(STDERR_FILENO, text.data() + off, text.size() - off);
    if (n <= 0) break;  // Nowhere else to report a failing stderr.
    off += static_cast<size_t>(n);
  }
}

// Access lines not written yet (log.h); under g_sink_mu. Never destroyed, like the budgets.
std::string& PendingAccessLines() {
  static auto* pending = new std::string;
  return *pending;
}

void WritePending() {
  std::string& pending = PendingAccessLines();
  if (pending.empty()) return;
  WriteStderr(pending);
  pending.clear();
}

// The budget of one SR_LOG site (see log.h).
struct SiteBudget {
  double tokens = kLogBurst;
  int64_t refilled_ns = 0;
  uint64_t left_out = 0;
  int64_t first_left_out_ns = 0;
};

int64_t MonotonicNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
std::atomic<int64_t (*)()> g_log_clock{&MonotonicNs};

// Whether the site may write a line now; when it may after leaving lines out, *note says so.
// The map holds one entry per site that ever logged: bounded by the program's SR_LOG lines.
bool TakeFromBudget(const char* file, int line, std::string* note) {
  // Never destroyed: pool threads may still log while the program exits.
  static auto* mu = new std::mutex;
  static auto* sites = new std::map<std::pair<const char*, int>, SiteBudget>;
  int64_t now = g_log_clock.load()();
  std::lock_guard<std::mutex> lock(*mu);
  auto [it, fresh] = sites->try_emplace({file, line});
  SiteBudget& b = it->second;
  if (fresh) b.refilled_ns = now;
  b.tokens = std::min<double>(kLogBurst, b.tokens + static_cast<double>(now - b.refilled_ns) *
                                                        kLogLinesPerSecond / 1e9);
  b.refilled_ns = now;
  if (b.tokens < 1) {
    if (b.left_out++ == 0) b.first_left_out_ns = now;
    return false;
  }
  b.tokens -= 1;
  if (b.left_out > 0) {
    *note = " [" + std::to_string(b.left_out) + " more like this left out in the last " +
            std::to_string((now - b.first_left_out_ns) / 1'000'000'000 + 1) + " s]";
    b.left_out = 0;
  }
  return true;
}

}  // namespace

void SetLogClockForTest(int64_t (*now_ns)()) {
  g_log_clock.store(now_ns != nullptr ? now_ns : &MonotonicNs);
}

void SetLogLevel(LogLevel level) { g_level.store(level, std::memory_order_relaxed); }
LogLevel GetLogLevel() { return g_level.load(std::memory_order_relaxed); }

bool ParseLogLevel(std::string_view text, LogLevel* out) {
  if (text == "debug") *out = LogLevel::kDebug;
  else if (text == "info") *out = LogLevel::kInfo;
  else if (text == "warning" || text == "warn") *out = LogLevel::kWarning;
  else if (text == "error") *out = LogLevel::kError;
  else return false;
  return true;
}

void SetLogSink(std::function<void(std::string_view)> sink) {
  std::lock_guard<std::mutex> lock(g_sink_mu);
  Sink() = std::move(sink);
}

std::string MaskSecrets(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    // URL credentials: "://" then an authority; the password runs from the first ':' to the
    // last '@' of the authority (an unencoded '@' in a password is common, PHONES.md).
    if (text.compare(i, 3, "://") == 0 && i > 0 && IsSchemeChar(text[i - 1])) {
      out.append("://");
      size_t start = i + 3;
      size_t end = start;
      while (end < text.size() && !EndsUrl(text[end])) ++end;
      std::string_view url = text.substr(start, end - start);
      size_t at = url.rfind('@');
      size_t colon = url.find(':');
      if (at != std::string_view::npos && colon != std::string_view::npos && colon < at) {
        out.append(url.substr(0, colon + 1));
        out.append("****");
        out.append(url.substr(at));
      } else {
        out.append(url);
      }
      i = end;
      continue;
    }
    // "Authorization: Basic <b64>" in header dumps; auth schemes are case-insensitive (RFC 7235).
    static constexpr std::string_view kBasic = "Basic ";
    if (i + kBasic.size() <= text.size() && EqualsIgnoreCase(text.substr(i, kBasic.size()), kBasic)) {
      out.append(text.substr(i, kBasic.size()));
      size_t end = i + kBasic.size();
      while (end < text.size() && text[end] != ' ' && text[end] != '\r' && text[end] != '\n' &&
             text[end] != '"') {
        ++end;
      }
      if (end > i + kBasic.size()) out.append("****");
      i = end;
      continue;
    }
    out.push_back(text[i]);
    ++i;
  }
  return out;
}

LogMessage::LogMessage(LogLevel level, const char* file, int line, bool budgeted)
    : level_(level),
      file_(file),
      line_(line),
      budgeted_(budgeted && level != LogLevel::kDebug && level != LogLevel::kError),
      access_(!budgeted) {}

LogMessage::~LogMessage() {
  std::string left_out;
  if (budgeted_ && !TakeFromBudget(file_, line_, &left_out)) return;
  using std::chrono::system_clock;
  auto now = system_clock::now();
  std::time_t secs = system_clock::to_time_t(now);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis.count()));

  std::string body = MaskSecrets(stream_.str());
  std::string line;
  line.reserve(body.size() + 64);
  line.append(stamp);
  line.push_back(' ');
  line.append(LevelName(level_));
  line.push_back(' ');
  line.append(EscapeControl(body));
  line.append(left_out);
  if (level_ == LogLevel::kDebug) {
    line.append(" (");
    line.append(file_);
    line.push_back(':');
    line.append(std::to_string(line_));
    line.push_back(')');
  }
  line.push_back('\n');

  std::lock_guard<std::mutex> lock(g_sink_mu);
  if (Sink()) {
    Sink()(std::string_view(line).substr(0, line.size() - 1));
    return;
  }
  std::string& pending = PendingAccessLines();
  if (access_) {
    pending.append(line);
    if (pending.size() >= kAccessLogFlushBytes) WritePending();
    return;
  }
  WritePending();  // the lines before this one go first
  WriteStderr(line);
}

void FlushLog() {
  std::lock_guard<std::mutex> lock(g_sink_mu);
  WritePending();
}

}  // namespace siterelay
