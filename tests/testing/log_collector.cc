// log_collector: the upstream end of the relay's log batches (CONTRACT.md, "Upstream formats",
// "Log batches") for the integration tests. It accepts `POST <any path>` batches, checks every
// byte of them against the contract (the three headers, one zstd frame, NDJSON with exactly the
// six fields of the right types), records each acknowledged batch once however often it is
// delivered, and writes down every request, so a test asserts on what the upstream received.
// Faults are injected through a mode (answer with an error status, stall, close without an
// answer) set with `POST /control` or --mode, and SIGUSR1 takes the listener down and back up.
//
// usage: log_collector --out DIR [--listen HOST:PORT] [--port-file FILE] [--user U --password P]
//                      [--mode MODE]                                    (--help for the details)
// Exit: 0 after SIGTERM or SIGINT; 2 usage or start-up errors (one line on stderr).
//
// Files in DIR (both opened for append, so a restart with the same DIR adds to them; the set of
// acknowledged Idempotency-Keys lives in memory only and starts empty at each start):
//   lines.ndjson  every record of every new acknowledged batch, the line exactly as received
//                 (a CR before the LF dropped), in arrival order, fsync'ed before the 200 is sent.
//   requests.log  one line per request other than /control, written and fsync'ed before the
//                 answer: `<unix ms> <key> <status> <records> <dup|new> <body bytes> <fnv1a64 of
//                 the body> <note>` (see kUsage).
//
// Threads: the main thread owns the listening socket and the signals (through a signalfd, with
// the signals blocked in every thread); each connection has its own thread with blocking sockets
// and timeouts, HTTP/1.1 keep-alive honoured. Everything they share lives in Collector under one
// mutex. Requests are parsed here rather than with relay/http so the collector checks the relay
// from the outside, sharing none of its code; this is a test tool, so there is no fuzzer behind
// it, but every size is bounded (kMax* below) and bad input only ever costs its own connection.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

// Limits: every buffer that grows with what a peer sends has a ceiling here.
constexpr size_t kMaxHeadBytes = 16 * 1024;            // request line + fields (+ trailers)
constexpr size_t kMaxFields = 100;                     // header fields of one request
constexpr size_t kMaxChunkLineBytes = 1024;            // one chunk-size line, extensions too
constexpr size_t kMaxBodyBytes = 16 * 1024 * 1024;     // a request body as sent (compressed)
constexpr size_t kMaxDecodedBytes = 64 * 1024 * 1024;  // a batch after zstd decompression
constexpr size_t kMaxControlBodyBytes = 1024;          // a POST /control body
constexpr size_t kMaxKeyBytes = 200;                   // an Idempotency-Key
constexpr size_t kMaxConnections = 128;                // open at once; more are closed at once
constexpr int kReadTimeoutSeconds = 60;                // idle keep-alive and slow senders
constexpr int kWriteTimeoutSeconds = 30;
constexpr auto kStallLimit = std::chrono::minutes(10);  // the longest a stalled request is held
constexpr int kRelistenRetryMs = 200;                   // after SIGUSR1 found the port taken

constexpr const char* kUsage = R"(usage: log_collector --out DIR [options]

The upstream end of siterelay's log batches (CONTRACT.md "Log batches"), for the tests.

  --out DIR            where lines.ndjson and requests.log are appended (created if missing)
  --listen HOST:PORT   address to listen on (default 127.0.0.1:0; IPv6 as [::1]:0)
  --port-file FILE     once listening, write the bound port and a newline to FILE (atomically)
  --user U             with --password: batches need this HTTP Basic login, else 401
  --password P
  --mode MODE          the mode at start (default ok); see below

Requests:
  POST <any path but /control>  a log batch. Needs Content-Type: application/x-ndjson,
        Content-Encoding: zstd and an Idempotency-Key (visible ASCII, no spaces); the body is
        exactly one zstd frame (no dictionary) of at most 64 MiB decoded, of NDJSON lines each
        ending in LF, each an object with exactly relay (non-empty string), mac (12 lower-case
        hex digits), file ("app" or "boot"), seq (integer >= 0), received (string,
        YYYY-MM-DDTHH:MM:SS[.fraction]Z) and line (string). Answers: 200 and recorded if the key
        is new; 200 and not recorded if the key was acknowledged before with the same body
        (a duplicate delivery); 422 if it was acknowledged with a different body; 400 for a bad
        batch (the reason in the body and in requests.log); 401 without the right login.
  GET /control     {"mode":..., "requests":N, "new_batches":N, "duplicates":N, "records":N,
                    "rejected":N, "injected":N, "last_reject":"..."}
  POST /control    body is a MODE; answers like GET /control, or 400 for a bad MODE.
  /control never needs the login and is never subject to the mode.

Modes (for every request but /control; the request is read whole first):
  ok                      check and record as above
  fail CODE [SECONDS]     answer CODE (200-599) without recording; with SECONDS, Retry-After
  stall                   never answer; hold the connection until the mode changes, the peer
                          hangs up, SIGUSR1, SIGTERM or 10 minutes, then close it
  close                   close the connection without answering

Signals: SIGUSR1 closes the listening socket and every open connection (connects are refused)
or, when down, listens again on the same port. SIGTERM or SIGINT: exit 0.

requests.log, one line per request but /control:
  <unix ms> <key> <status> <records> <dup|new> <body bytes> <fnv1a64 of body, hex> <note>
  key is - when missing or unusable; status is - when no answer was sent (stall, close);
  records counts the batch's records when it decoded and parsed, else 0; dup means the key had
  been acknowledged before this request; note is "recorded", "duplicate", "mode <MODE>" or why
  the batch was refused.
)";

// ---------------------------------------------------------------------------------------------
// Small helpers.

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "log_collector: %s\n", message.c_str());
  std::exit(2);
}

void Log(const std::string& message) {
  std::fprintf(stderr, "log_collector: %s\n", message.c_str());
}

// The one place errno becomes text. EAGAIN on a socket with SO_RCVTIMEO is the timeout.
std::string ErrnoText(int err) {
  if (err == EAGAIN || err == EWOULDBLOCK) return "timed out";
  return std::strerror(err);
}

char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = LowerAscii(c);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerAscii(a[i]) != LowerAscii(b[i])) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Non-empty decimal digits to a value no larger than `max`.
std::optional<uint64_t> ParseDecimal(std::string_view s, uint64_t max) {
  if (s.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : s) {
    if (!IsDigit(c)) return std::nullopt;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (value > (max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

// Text from a peer made safe for a one-line log field: control bytes and non-ASCII become '?'.
std::string Printable(std::string_view s) {
  std::string out(s.substr(0, 300));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return out;
}

// FNV-1a 64: enough for a test to see that a retry carried byte-identical bytes.
uint64_t Fnv1a64(std::string_view bytes) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::string Hex64(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<std::string> DecodeBase64(std::string_view in) {
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  uint32_t bits = 0;
  int nbits = 0;
  for (char c : in) {
    const int v = value_of(c);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out.push_back(static_cast<char>((bits >> nbits) & 0xffU));
    }
  }
  return out;
}

bool WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Modes.

struct Mode {
  enum Kind { kOk, kFail, kStall, kClose } kind = kOk;
  int status = 0;        // kFail
  int retry_after = -1;  // kFail: seconds for Retry-After, or -1 for none
  std::string text = "ok";
};

// "ok", "fail CODE [SECONDS]", "stall" or "close", words separated by blanks.
std::optional<Mode> ParseMode(std::string_view text, std::string* error) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::strchr(" \t\r\n", text[i]) != nullptr) ++i;
    const size_t start = i;
    while (i < text.size() && std::strchr(" \t\r\n", text[i]) == nullptr) ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  Mode mode;
  if (words.size() == 1 && words[0] == "ok") {
    mode.kind = Mode::kOk;
  } else if (words.size() == 1 && words[0] == "stall") {
    mode.kind = Mode::kStall;
  } else if (words.size() == 1 && words[0] == "close") {
    mode.kind = Mode::kClose;
  } else if ((words.size() == 2 || words.size() == 3) && words[0] == "fail") {
    // 1xx are interim answers, not final ones (RFC 9110 15.2), so a fail mode cannot use them.
    const auto status = ParseDecimal(words[1], 599);
    if (!status || *status < 200) {
      *error = "fail needs a status code from 200 to 599";
      return std::nullopt;
    }
    mode.kind = Mode::kFail;
    mode.status = static_cast<int>(*status);
    if (words.size() == 3) {
      const auto seconds = ParseDecimal(words[2], 86400 * 365);
      if (!seconds) {
        *error = "fail's Retry-After must be whole seconds";
        return std::nullopt;
      }
      mode.retry_after = static_cast<int>(*seconds);
    }
  } else {
    *error = "mode must be ok, fail CODE [SECONDS], stall or close";
    return std::nullopt;
  }
  mode.text.clear();
  for (std::string_view w : words) {
    if (!mode.text.empty()) mode.text += ' ';
    mode.text += w;
  }
  return mode;
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 requests (RFC 9112), read with blocking calls from one connection.

struct Request {
  std::string method;
  std::string target;
  bool http11 = true;
  std::vector<std::pair<std::string, std::string>> fields;  // lower-case names, trimmed values
  std::string body;

  // The values of every field called `name` (lower case).
  std::vector<std::string_view> All(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const auto& [n, v] : fields) {
      if (n == name) out.push_back(v);
    }
    return out;
  }
  // The value of `name` if it occurs exactly once.
  std::optional<std::string_view> One(std::string_view name) const {
    const auto all = All(name);
    if (all.size() != 1) return std::nullopt;
    return all[0];
  }
  bool HasToken(std::string_view name, std::string_view token) const {
    for (std::string_view value : All(name)) {
      while (!value.empty()) {
        const size_t comma = value.find(',');
        if (EqualsIgnoreCase(TrimOws(value.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
      }
    }
    return false;
  }
  bool KeepAlive() const {
    if (HasToken("connection", "close")) return false;
    return http11 || HasToken("connection", "keep-alive");
  }
};

// A failure to read a request that is answered (then the connection closes), or not (status 0:
// the peer went away or timed out before a whole request).
struct ReadError {
  int status = 0;
  std::string reason;
};

class Connection {
 public:
  explicit Connection(int fd) : fd_(fd) {}

  // Reads one whole request into `request`. False with `error` set when there is none.
  bool ReadRequest(Request* request, ReadError* error) {
    std::string head;
    if (!ReadHead(&head, error)) return false;
    if (!ParseHead(head, request, error)) return false;
    return ReadBody(request, error);
  }

  bool Send(std::string_view bytes) { return SendAll(fd_, bytes); }

 private:
  // Fills buf_ with at least one more byte. False at EOF, error or timeout.
  bool Fill() {
    char chunk[64 * 1024];
    for (;;) {
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n > 0) {
        buf_.append(chunk, static_cast<size_t>(n));
        return true;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) last_error_ = ErrnoText(errno);
      return false;
    }
  }

  // Up to and including the next CRLF CRLF, within kMaxHeadBytes. Bare LFs are not accepted: the
  // relay speaks through libcurl, which ends every line with CRLF.
  bool ReadHead(std::string* head, ReadError* error) {
    // RFC 9112 2.2: a server SHOULD ignore at least one empty line before a request-line.
    size_t searched = 0;
    for (;;) {
      while (buf_.compare(0, 2, "\r\n") == 0) buf_.erase(0, 2);
      const size_t end = buf_.find("\r\n\r\n", searched > 3 ? searched - 3 : 0);
      if (end != std::string::npos && end + 4 <= kMaxHeadBytes) {
        *head = buf_.substr(0, end + 2);  // the last field's CRLF kept
        buf_.erase(0, end + 4);
        return true;
      }
      if (buf_.size() >= kMaxHeadBytes) {
        *error = {431, "request head over " + std::to_string(kMaxHeadBytes) + " bytes"};
        return false;
      }
      searched = buf_.size();
      if (!Fill()) {
        *error = {0, buf_.empty() ? "" : Ended("inside a request head")};
        return false;
      }
    }
  }

  static bool ParseHead(std::string_view head, Request* request, ReadError* error) {
    size_t eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || sp1 == 0 || sp2 == sp1 + 1 ||
        line.find(' ', sp2 + 1) != std::string_view::npos) {
      *error = {400, "malformed request line"};
      return false;
    }
    request->method = std::string(line.substr(0, sp1));
    request->target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
    const std::string_view version = line.substr(sp2 + 1);
    if (version == "HTTP/1.1") {
      request->http11 = true;
    } else if (version == "HTTP/1.0") {
      request->http11 = false;
    } else {
      *error = {version.substr(0, 5) == "HTTP/" ? 505 : 400, "unsupported HTTP version"};
      return false;
    }
    return ParseFields(head, &request->fields, error);
  }

  // Field lines, each ending in CRLF (RFC 9112 5). No obs-fold, no space before the colon.
  static bool ParseFields(std::string_view text,
                          std::vector<std::pair<std::string, std::string>>* fields,
                          ReadError* error) {
    while (!text.empty()) {
      const size_t eol = text.find("\r\n");
      const std::string_view line = text.substr(0, eol);
      text.remove_prefix(eol + 2);
      const size_t colon = line.find(':');
      if (colon == 0 || colon == std::string_view::npos || line[0] == ' ' || line[0] == '\t' ||
          line[colon - 1] == ' ' || line[colon - 1] == '\t') {
        *error = {400, "malformed header field"};
        return false;
      }
      if (fields->size() >= kMaxFields) {
        *error = {431, "more than " + std::to_string(kMaxFields) + " header fields"};
        return false;
      }
      fields->emplace_back(Lower(line.substr(0, colon)),
                           std::string(TrimOws(line.substr(colon + 1))));
    }
    return true;
  }

  bool ReadBody(Request* request, ReadError* error) {
    const auto transfer_encodings = request->All("transfer-encoding");
    const auto lengths = request->All("content-length");
    // RFC 9112 6.1: both framings at once are a smuggling signal; a sender must not do it.
    if (!transfer_encodings.empty() && !lengths.empty()) {
      *error = {400, "both Transfer-Encoding and Content-Length"};
      return false;
    }
    const bool chunked = !transfer_encodings.empty();
    if (chunked &&
        (transfer_encodings.size() != 1 || !EqualsIgnoreCase(transfer_encodings[0], "chunked"))) {
      *error = {501, "Transfer-Encoding other than chunked"};
      return false;
    }
    uint64_t length = 0;
    if (!lengths.empty()) {
      const auto parsed =
          lengths.size() == 1 ? ParseDecimal(lengths[0], UINT64_MAX / 2) : std::nullopt;
      if (!parsed) {
        *error = {400, "bad Content-Length"};
        return false;
      }
      length = *parsed;
      if (length > kMaxBodyBytes) {
        *error = {413, "body over " + std::to_string(kMaxBodyBytes) + " bytes"};
        return false;
      }
    }
    // RFC 9110 10.1.1: a client that sent Expect: 100-continue waits for the interim answer
    // (libcurl does, for a second, on large POSTs).
    if (!request->All("expect").empty()) {
      if (!request->HasToken("expect", "100-continue") || request->All("expect").size() != 1) {
        *error = {417, "unsupported Expect"};
        return false;
      }
      if ((chunked || length > 0) && request->http11 && !Send("HTTP/1.1 100 Continue\r\n\r\n")) {
        *error = {0, "peer went away"};
        return false;
      }
    }
    if (chunked) return ReadChunked(&request->body, error);
    while (buf_.size() < length) {
      if (!Fill()) {
        *error = {0, Ended("inside a body")};
        return false;
      }
    }
    request->body = buf_.substr(0, length);
    buf_.erase(0, length);
    return true;
  }

  // A CRLF-terminated line of at most `limit` bytes, without the CRLF.
  bool ReadLine(size_t limit, std::string* line, ReadError* error, const char* what) {
    for (;;) {
      const size_t eol = buf_.find("\r\n");
      if (eol != std::string::npos && eol <= limit) {
        *line = buf_.substr(0, eol);
        buf_.erase(0, eol + 2);
        return true;
      }
      if (buf_.size() > limit + 1) {
        *error = {400, std::string(what) + " over " + std::to_string(limit) + " bytes"};
        return false;
      }
      if (!Fill()) {
        *error = {0, Ended("inside a chunked body")};
        return false;
      }
    }
  }

  // RFC 9112 7.1: chunk-size [; extensions] CRLF data CRLF ... 0 CRLF trailers CRLF.
  bool ReadChunked(std::string* body, ReadError* error) {
    for (;;) {
      std::string line;
      if (!ReadLine(kMaxChunkLineBytes, &line, error, "chunk-size line")) return false;
      const std::string_view size_text = TrimOws(std::string_view(line).substr(0, line.find(';')));
      uint64_t size = 0;
      if (size_text.empty() || size_text.size() > 15) {
        *error = {400, "bad chunk size"};
        return false;
      }
      for (char c : size_text) {
        const char l = LowerAscii(c);
        int digit = -1;
        if (IsDigit(l)) digit = l - '0';
        if (l >= 'a' && l <= 'f') digit = l - 'a' + 10;
        if (digit < 0) {
          *error = {400, "bad chunk size"};
          return false;
        }
        size = size * 16 + static_cast<uint64_t>(digit);
      }
      if (size == 0) break;
      if (size > kMaxBodyBytes - body->size()) {
        *error = {413, "body over " + std::to_string(kMaxBodyBytes) + " bytes"};
        return false;
      }
      while (buf_.size() < size + 2) {
        if (!Fill()) {
          *error = {0, Ended("inside a chunk")};
          return false;
        }
      }
      if (buf_.compare(size, 2, "\r\n") != 0) {
        *error = {400, "chunk data not followed by CRLF"};
        return false;
      }
      body->append(buf_, 0, size);
      buf_.erase(0, size + 2);
    }
    // Trailer fields are read and dropped (RFC 9110 6.5: a recipient may discard them).
    size_t trailer_bytes = 0;
    for (;;) {
      std::string line;
      if (!ReadLine(kMaxHeadBytes, &line, error, "trailer field")) return false;
      if (line.empty()) return true;
      trailer_bytes += line.size() + 2;
      if (trailer_bytes > kMaxHeadBytes) {
        *error = {431, "trailers over " + std::to_string(kMaxHeadBytes) + " bytes"};
        return false;
      }
    }
  }

  // Why a read found no more bytes: the peer closed, or the socket's error (a timeout).
  std::string Ended(const char* where) const {
    return std::string("connection ended ") + where +
           (last_error_.empty() ? "" : " (" + last_error_ + ")");
  }

  int fd_;
  std::string buf_;
  std::string last_error_;  // of the last failed recv, empty after a clean EOF
};

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Content Too Large";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Status";
  }
}

struct Response {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
  std::vector<std::pair<std::string, std::string>> fields;
  bool close = false;

  std::string Serialize() const {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) + "\r\n";
    out += "Content-Type: " + content_type + "\r\n";
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    for (const auto& [name, value] : fields) out += name + ": " + value + "\r\n";
    if (close) out += "Connection: close\r\n";
    out += "\r\n";
    out += body;
    return out;
  }
};

Response TextResponse(int status, std::string text) {
  Response response;
  response.status = status;
  response.body = std::move(text) + "\n";
  return response;
}

// ---------------------------------------------------------------------------------------------
// Batches (CONTRACT.md, "Log batches").

struct Batch {
  bool ok = false;
  std::string reason;  // when !ok
  size_t records = 0;  // when the NDJSON parsed, else 0
  std::string lines;   // when ok: every record line with its LF, CRs dropped
};

// YYYY-MM-DDTHH:MM:SS[.fraction]Z: RFC 3339 5.6 date-time, in UTC written as Z as the contract
// asks ("<RFC 3339 UTC>"); a numeric offset, even +00:00, is refused so a relay that sends local
// time is caught. Leap seconds (60) are allowed as RFC 3339 does.
bool IsRfc3339Utc(std::string_view s) {
  auto number = [&](size_t at, size_t digits, int lo, int hi) {
    if (at + digits > s.size()) return false;
    int value = 0;
    for (size_t i = at; i < at + digits; ++i) {
      if (!IsDigit(s[i])) return false;
      value = value * 10 + (s[i] - '0');
    }
    return value >= lo && value <= hi;
  };
  if (s.size() < 20 || !number(0, 4, 0, 9999) || s[4] != '-' || !number(5, 2, 1, 12) ||
      s[7] != '-' || !number(8, 2, 1, 31) || s[10] != 'T' || !number(11, 2, 0, 23) ||
      s[13] != ':' || !number(14, 2, 0, 59) || s[16] != ':' || !number(17, 2, 0, 60)) {
    return false;
  }
  size_t i = 19;
  if (s[i] == '.') {
    ++i;
    const size_t start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == start) return false;
  }
  return i + 1 == s.size() && s[i] == 'Z';
}

// One NDJSON line: an object with exactly the contract's six fields, each of the right type.
// Empty string on success, else why not.
std::string CheckRecord(std::string_view line) {
  // The parser callback sees every key of the top-level object, so a duplicated key (which
  // nlohmann would silently collapse) is caught.
  std::vector<std::string> keys;
  bool duplicate_key = false;
  const nlohmann::json::parser_callback_t on_event =
      [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) noexcept {
        if (depth == 1 && event == nlohmann::json::parse_event_t::key && parsed.is_string()) {
          const auto& key = parsed.get_ref<const std::string&>();
          for (const auto& k : keys) duplicate_key = duplicate_key || k == key;
          keys.push_back(key);
        }
        return true;
      };
  const nlohmann::json record = nlohmann::json::parse(line.begin(), line.end(), on_event,
                                                      /*allow_exceptions=*/false);
  if (record.is_discarded()) return "not valid JSON (or not UTF-8)";
  if (!record.is_object()) return "not a JSON object";
  if (duplicate_key) return "a field appears twice";
  for (const auto& [name, value] : record.items()) {
    if (name != "relay" && name != "mac" && name != "file" && name != "seq" && name != "received" &&
        name != "line") {
      return "unexpected field \"" + Printable(name) + "\"";
    }
  }
  auto string_field = [&](const char* name) -> const std::string* {
    const auto it = record.find(name);
    if (it == record.end() || !it->is_string()) return nullptr;
    return &it->get_ref<const std::string&>();
  };
  const std::string* relay = string_field("relay");
  if (relay == nullptr || relay->empty()) return "relay missing, not a string or empty";
  const std::string* mac = string_field("mac");
  if (mac == nullptr || mac->size() != 12 ||
      mac->find_first_not_of("0123456789abcdef") != std::string::npos) {
    return "mac missing or not 12 lower-case hex digits";
  }
  const std::string* file = string_field("file");
  if (file == nullptr || (*file != "app" && *file != "boot")) {
    return "file missing or not \"app\" or \"boot\"";
  }
  const auto seq = record.find("seq");
  // nlohmann stores every non-negative integer as unsigned, so a signed one is negative; one
  // past UINT64_MAX becomes a float and is refused too.
  if (seq == record.end() || !seq->is_number_unsigned()) {
    return "seq missing or not an integer >= 0";
  }
  const std::string* received = string_field("received");
  if (received == nullptr || !IsRfc3339Utc(*received)) {
    return "received missing or not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SS[.f]Z)";
  }
  if (string_field("line") == nullptr) return "line missing or not a string";
  return "";
}

// The body as sent: exactly one zstd frame, then NDJSON lines.
Batch DecodeBatch(std::string_view body) {
  Batch batch;
  if (body.empty()) {
    batch.reason = "empty body";
    return batch;
  }
  // One frame and nothing after it: a skippable frame, a second frame or trailing bytes are
  // refused, as the contract promises that plain `zstd -d` decodes the body to the NDJSON.
  // RFC 8878 3.1.1: a frame starts with the magic number 0xFD2FB528, little-endian.
  if (body.size() < 4 || body.substr(0, 4) != std::string_view("\x28\xb5\x2f\xfd", 4)) {
    batch.reason = "body does not start with a zstd frame";
    return batch;
  }
  const size_t frame_size = ZSTD_findFrameCompressedSize(body.data(), body.size());
  if (ZSTD_isError(frame_size) != 0) {
    batch.reason = std::string("zstd: ") + ZSTD_getErrorName(frame_size);
    return batch;
  }
  if (frame_size != body.size()) {
    batch.reason = std::to_string(body.size() - frame_size) + " bytes after the zstd frame";
    return batch;
  }
  if (ZSTD_getDictID_fromFrame(body.data(), body.size()) != 0) {
    batch.reason = "zstd frame needs a dictionary";
    return batch;
  }
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!dctx) {
    std::fprintf(stderr, "log_collector: out of memory\n");
    std::abort();
  }
  std::string decoded;
  ZSTD_inBuffer in{body.data(), body.size(), 0};
  size_t remaining = 1;
  while (remaining != 0) {
    // Room for one byte past the ceiling, so a batch of exactly kMaxDecodedBytes passes and
    // one byte more is caught whichever call of the loop produces it.
    const size_t before = decoded.size();
    decoded.resize(std::min(kMaxDecodedBytes + 1, before + 1024 * 1024));
    ZSTD_outBuffer out{decoded.data() + before, decoded.size() - before, 0};
    remaining = ZSTD_decompressStream(dctx.get(), &out, &in);
    decoded.resize(before + out.pos);
    if (decoded.size() > kMaxDecodedBytes) {
      batch.reason = "decodes to more than " + std::to_string(kMaxDecodedBytes) + " bytes";
      return batch;
    }
    if (ZSTD_isError(remaining) != 0) {
      batch.reason = std::string("zstd: ") + ZSTD_getErrorName(remaining);
      return batch;
    }
    if (remaining != 0 && in.pos == in.size && out.pos < out.size) {
      batch.reason = "zstd frame is truncated";
      return batch;
    }
  }
  if (decoded.empty()) {
    batch.reason = "batch has no lines";
    return batch;
  }
  // NDJSON 3.1: every JSON text is followed by LF, which a CR may precede; an empty line is
  // refused (3.2 lets a parser choose, and the relay has no reason to send one).
  if (decoded.back() != '\n') {
    batch.reason = "last line does not end with LF";
    return batch;
  }
  std::string_view rest = decoded;
  size_t line_number = 0;
  while (!rest.empty()) {
    const size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string why = line.empty() ? "empty line" : CheckRecord(line);
    if (!why.empty()) {
      batch.reason = "line " + std::to_string(line_number) + ": " + why;
      return batch;
    }
    batch.lines.append(line);
    batch.lines.push_back('\n');
  }
  batch.records = line_number;
  batch.ok = true;
  return batch;
}

// ---------------------------------------------------------------------------------------------
// The collector: the state every connection thread shares, under mu_.

class Collector {
 public:
  Collector(std::string dir, std::optional<std::string> login, Mode mode)
      : dir_(std::move(dir)), login_(std::move(login)), mode_(std::move(mode)) {
    lines_fd_ = OpenAppend(dir_ + "/lines.ndjson");
    requests_fd_ = OpenAppend(dir_ + "/requests.log");
  }
  ~Collector() {
    ::close(lines_fd_);
    ::close(requests_fd_);
  }
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  // Serves one connection until it ends. Called on the connection's own thread.
  void Serve(int fd) {
    Connection connection(fd);
    for (;;) {
      Request request;
      ReadError error;
      if (!connection.ReadRequest(&request, &error)) {
        if (error.status != 0) {
          Log("refused a request: " + error.reason);
          Response response = TextResponse(error.status, error.reason);
          response.close = true;
          if (connection.Send(response.Serialize())) LingerClose(fd);
        }
        // A request cut off or refused before it was read whole still goes into requests.log
        // (an idle keep-alive connection ending does not: there was no request).
        if (error.status != 0 || !request.method.empty()) LogUnread(request, error);
        return;
      }
      Response response;
      const Action action = Handle(request, &response);
      if (action == Action::kClose) return;
      if (action == Action::kStall) {
        Stall(fd);
        return;
      }
      response.close = response.close || !request.KeepAlive();
      if (!connection.Send(response.Serialize()) || response.close) return;
    }
  }

  // Connection bookkeeping, so SIGUSR1 and SIGTERM can end every open connection.
  bool Register(int fd) {
    std::lock_guard<std::mutex> lock(mu_);
    if (open_fds_.size() >= kMaxConnections) return false;
    open_fds_.insert(fd);
    return true;
  }
  void Unregister(int fd) {
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.erase(fd);
  }
  // Shuts down every open connection (their threads then see EOF and end) and wakes stalls.
  // The fds are closed by their own threads only, after Unregister, so none is reused here.
  void EndConnections(bool stopping) {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    stopping_ = stopping_ || stopping;
    ++generation_;
    cv_.notify_all();
  }

 private:
  enum class Action { kAnswer, kClose, kStall };

  static int OpenAppend(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) Die("cannot open " + path + ": " + ErrnoText(errno));
    return fd;
  }

  // Holds a stalled request, unanswered, until the mode changes, kStallLimit passes or the peer
  // hangs up (checked once a second, so a relay that gives up and retries does not pile up
  // held connections until kMaxConnections refuses it).
  void Stall(int fd) {
    const auto deadline = std::chrono::steady_clock::now() + kStallLimit;
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t generation = generation_;
    while (!cv_.wait_for(lock, std::chrono::seconds(1),
                         [&] { return stopping_ || generation_ != generation; })) {
      pollfd peer{fd, POLLRDHUP, 0};
      if (std::chrono::steady_clock::now() >= deadline ||
          (::poll(&peer, 1, 0) > 0 && (peer.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0)) {
        return;
      }
    }
  }

  // After an answer sent before the request was read whole (413, 431...): the peer may still
  // be sending, and closing now would reset the connection and could destroy the answer before
  // the peer reads it (RFC 9112 9.6), so stop writing and drain for a short while first.
  static void LingerClose(int fd) {
    ::shutdown(fd, SHUT_WR);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    char sink[64 * 1024];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd peer{fd, POLLIN, 0};
      if (::poll(&peer, 1, 200) < 0 && errno != EINTR) return;
      if ((peer.revents & POLLIN) != 0 && ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) <= 0) {
        return;
      }
    }
  }

  Action Handle(const Request& request, Response* response) {
    if (IsControl(request)) {
      *response = Control(request);
      return Action::kAnswer;
    }
    return HandleBatch(request, response);
  }

  Response Control(const Request& request) {
    if (request.method == "POST") {
      if (request.body.size() > kMaxControlBodyBytes) {
        return TextResponse(413, "mode over " + std::to_string(kMaxControlBodyBytes) + " bytes");
      }
      std::string error;
      auto mode = ParseMode(request.body, &error);
      if (!mode) return TextResponse(400, error);
      std::lock_guard<std::mutex> lock(mu_);
      Log("mode " + mode->text);
      mode_ = std::move(*mode);
      ++generation_;  // a stalled request ends when the mode changes
      cv_.notify_all();
      return StateLocked();
    }
    if (request.method == "GET") {
      std::lock_guard<std::mutex> lock(mu_);
      return StateLocked();
    }
    Response response = TextResponse(405, "GET or POST /control");
    response.fields.emplace_back("Allow", "GET, POST");
    return response;
  }

  Response StateLocked() const {
    const nlohmann::json state = {{"mode", mode_.text},          {"requests", requests_},
                                  {"new_batches", new_batches_}, {"duplicates", duplicates_},
                                  {"records", records_},         {"rejected", rejected_},
                                  {"injected", injected_},       {"last_reject", last_reject_}};
    Response response;
    response.content_type = "application/json";
    // Every string in it is ASCII already; replace, rather than throw, if that ever changes.
    response.body = state.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    return response;
  }

  // Everything a batch request would get in mode ok, without touching shared state. An empty
  // `reason` in the result means a valid batch.
  struct Verdict {
    int status = 200;
    std::string reason;
    std::string key = "-";
    Batch batch;  // decoded when the headers were right
  };

  Verdict Check(const Request& request) const {
    Verdict v;
    v.key = KeyField(request);  // logged whatever else is wrong with the request
    if (login_) {
      bool ok = false;
      if (const auto authorization = request.One("authorization")) {
        const size_t sp = authorization->find(' ');
        if (sp != std::string_view::npos &&
            EqualsIgnoreCase(authorization->substr(0, sp), "Basic")) {
          const auto decoded = DecodeBase64(TrimOws(authorization->substr(sp + 1)));
          ok = decoded && *decoded == *login_;
        }
      }
      if (!ok) {
        v.status = 401;
        v.reason = request.All("authorization").empty() ? "no credentials" : "wrong credentials";
        return v;
      }
    }
    if (request.method != "POST") {
      v.status = 405;
      v.reason = "method " + Printable(request.method) + " (batches are POSTed)";
      return v;
    }
    if (v.key == "-") {
      v.status = 400;
      v.reason = "Idempotency-Key missing, repeated or not 1-" + std::to_string(kMaxKeyBytes) +
                 " visible ASCII characters";
      return v;
    }
    const auto type = request.One("content-type");
    if (!type ||
        !EqualsIgnoreCase(TrimOws(type->substr(0, type->find(';'))), "application/x-ndjson")) {
      v.status = 400;
      v.reason = "Content-Type missing or not application/x-ndjson";
      return v;
    }
    const auto encoding = request.One("content-encoding");
    if (!encoding || !EqualsIgnoreCase(*encoding, "zstd")) {
      v.status = 400;
      v.reason = "Content-Encoding missing or not exactly zstd";
      return v;
    }
    v.batch = DecodeBatch(request.body);
    if (!v.batch.ok) {
      v.status = 400;
      v.reason = v.batch.reason;
    }
    return v;
  }

  static bool IsControl(const Request& request) {
    return std::string_view(request.target).substr(0, request.target.find('?')) == "/control";
  }

  // The key a request names, as a requests.log field: "-" when it has none that is usable.
  static std::string KeyField(const Request& request) {
    const auto key = request.One("idempotency-key");
    if (!key || key->empty() || key->size() > kMaxKeyBytes ||
        std::any_of(key->begin(), key->end(), [](char c) { return c <= ' ' || c >= 0x7f; })) {
      return "-";
    }
    return std::string(*key);
  }

  // A request refused or cut off before its body was read: `error.status` answered, or none.
  void LogUnread(const Request& request, const ReadError& error) {
    if (IsControl(request)) return;
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_;
    const std::string key = KeyField(request);
    const bool dup = key != "-" && seen_.count(key) != 0;
    const std::string note = error.reason.empty() ? "connection ended" : error.reason;
    if (error.status != 0) {
      ++rejected_;
      last_reject_ = Printable(note);
    }
    AppendRequestLocked(key, error.status != 0 ? std::to_string(error.status) : "-", 0, dup, "",
                        note);
  }

  void AppendRequestLocked(const std::string& key, const std::string& status, size_t records,
                           bool dup, std::string_view body, const std::string& note) {
    const std::string entry = std::to_string(UnixMs()) + " " + Printable(key) + " " + status + " " +
                              std::to_string(records) + " " + (dup ? "dup" : "new") + " " +
                              std::to_string(body.size()) + " " + Hex64(Fnv1a64(body)) + " " +
                              Printable(note) + "\n";
    std::string error;
    if (!AppendLocked(requests_fd_, entry, &error)) Log(error);
  }

  Action HandleBatch(const Request& request, Response* response) {
    Verdict v = Check(request);  // the slow part (zstd, JSON), outside the lock
    const uint64_t digest = Fnv1a64(request.body);
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_;
    const auto seen = seen_.find(v.key);
    const bool dup = v.key != "-" && seen != seen_.end();
    std::string status;
    std::string note;
    Action action = Action::kAnswer;
    switch (mode_.kind) {
      case Mode::kClose:
      case Mode::kStall:
        ++injected_;
        status = "-";
        note = "mode " + mode_.text;
        action = mode_.kind == Mode::kClose ? Action::kClose : Action::kStall;
        break;
      case Mode::kFail:
        ++injected_;
        *response = TextResponse(mode_.status, "mode " + mode_.text);
        if (mode_.retry_after >= 0) {
          response->fields.emplace_back("Retry-After", std::to_string(mode_.retry_after));
        }
        note = "mode " + mode_.text;
        break;
      case Mode::kOk:
        if (v.status != 200) {
          note = v.reason;
        } else if (dup && seen->second != digest) {
          // The contract retries the byte-identical batch; the same key over other bytes means
          // the relay re-cut a batch it had already sent (draft-ietf-httpapi-idempotency-key-
          // header 2.7 answers such a reuse with 422).
          v.status = 422;
          note = "Idempotency-Key acknowledged before with a different body (fnv1a64 " +
                 Hex64(seen->second) + ")";
        } else if (dup) {
          ++duplicates_;
          note = "duplicate";
        } else if (!AppendLocked(lines_fd_, v.batch.lines, &note)) {
          v.status = 500;
        } else {
          seen_.emplace(v.key, digest);
          ++new_batches_;
          records_ += v.batch.records;
          note = "recorded";
        }
        if (v.status != 200) {
          ++rejected_;
          last_reject_ = Printable(note);
          Log("answered " + std::to_string(v.status) + " to key " + Printable(v.key) + ": " + note);
        }
        *response = TextResponse(v.status, v.status == 200 ? "ok" : note);
        if (v.status == 401) {
          response->fields.emplace_back("WWW-Authenticate", "Basic realm=\"log_collector\"");
        }
        if (v.status == 405) response->fields.emplace_back("Allow", "POST");
        break;
    }
    if (status.empty()) status = std::to_string(response->status);
    AppendRequestLocked(v.key, status, v.batch.records, dup, request.body, note);
    return action;
  }

  // Appends and fsyncs; on failure the file is cut back so no partial batch stays in it.
  bool AppendLocked(int fd, std::string_view bytes, std::string* error) {
    const off_t before = ::lseek(fd, 0, SEEK_END);
    if (WriteAll(fd, bytes) && ::fsync(fd) == 0) return true;
    *error = std::string("cannot write to ") + dir_ + ": " + ErrnoText(errno);
    if (before >= 0 && ::ftruncate(fd, before) != 0) *error += " (and cannot cut it back)";
    return false;
  }

  const std::string dir_;
  const std::optional<std::string> login_;  // "user:password"

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Mode mode_;
  uint64_t generation_ = 0;  // bumped by every mode change, SIGUSR1 down and SIGTERM
  bool stopping_ = false;
  std::set<int> open_fds_;
  std::unordered_map<std::string, uint64_t> seen_;  // acknowledged key -> fnv1a64 of its body
  int lines_fd_ = -1;
  int requests_fd_ = -1;
  uint64_t requests_ = 0;
  uint64_t new_batches_ = 0;
  uint64_t duplicates_ = 0;
  uint64_t records_ = 0;
  uint64_t rejected_ = 0;
  uint64_t injected_ = 0;
  std::string last_reject_;
};

// ---------------------------------------------------------------------------------------------
// Listening, signals, connection threads.

struct ListenAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string host;
};

std::optional<ListenAddress> ParseListen(std::string_view text) {
  ListenAddress address;
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  const auto number = ParseDecimal(port, 65535);
  if (!number) return std::nullopt;
  address.host = std::string(host);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
  if (::inet_pton(AF_INET, address.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(*number));
    address.length = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, address.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(*number));
    address.length = sizeof(sockaddr_in6);
  } else {
    return std::nullopt;
  }
  return address;
}

void SetPort(ListenAddress* address, uint16_t port) {
  if (address->storage.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&address->storage)->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&address->storage)->sin6_port = htons(port);
  }
}

// A listening socket on `address`, or -1 with `error` set.
int Listen(const ListenAddress& address, uint16_t* port, std::string* error) {
  const int fd = ::socket(address.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = "socket: " + ErrnoText(errno);
    return -1;
  }
  // SO_REUSEADDR so SIGUSR1 can listen again on the same port while the connections it closed
  // sit in TIME_WAIT.
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage bound{};
  socklen_t bound_length = sizeof bound;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) != 0 ||
      ::listen(fd, 128) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0) {
    *error = "cannot listen on " + address.host + ": " + ErrnoText(errno);
    ::close(fd);
    return -1;
  }
  *port = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                           : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return fd;
}

// Write-temp-rename, so a test polling for the file never reads half a number.
void WritePortFile(const std::string& path, uint16_t port) {
  const std::string temp = path + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || !WriteAll(fd, std::to_string(port) + "\n") || ::fsync(fd) != 0 ||
      ::close(fd) != 0 || ::rename(temp.c_str(), path.c_str()) != 0) {
    Die("cannot write " + path + ": " + ErrnoText(errno));
  }
}

struct ConnectionThread {
  std::thread thread;
  std::atomic<bool> done{false};
};

void SetTimeout(int fd, int option, int seconds) {
  timeval tv{};
  tv.tv_sec = seconds;
  ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
}

struct Options {
  std::string listen = "127.0.0.1:0";
  std::string port_file;
  std::string out;
  std::optional<std::string> user;
  std::optional<std::string> password;
  std::string mode = "ok";
};

Options ParseOptions(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    std::string value;
    const size_t equals = arg.find('=');
    if (arg.rfind("--", 0) == 0 && equals != std::string::npos) {
      value = arg.substr(equals + 1);
      arg.resize(equals);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      Die(arg + " needs a value (--help for usage)");
    }
    if (arg == "--listen") {
      options.listen = value;
    } else if (arg == "--port-file") {
      options.port_file = value;
    } else if (arg == "--out") {
      options.out = value;
    } else if (arg == "--user") {
      options.user = value;
    } else if (arg == "--password") {
      options.password = value;
    } else if (arg == "--mode") {
      options.mode = value;
    } else {
      Die("unknown option " + arg + " (--help for usage)");
    }
  }
  if (options.out.empty()) Die("--out DIR is required (--help for usage)");
  if (options.user.has_value() != options.password.has_value()) {
    Die("--user and --password go together");
  }
  if (options.user && options.user->find(':') != std::string::npos) {
    Die("--user cannot contain ':' (RFC 7617 2)");
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = ParseOptions(argc, argv);
  std::string error;
  auto mode = ParseMode(options.mode, &error);
  if (!mode) Die("--mode: " + error);
  auto address = ParseListen(options.listen);
  if (!address) Die("--listen wants HOST:PORT with a numeric IPv4 or [IPv6] host");
  if (::mkdir(options.out.c_str(), 0755) != 0 && errno != EEXIST) {
    Die("cannot create " + options.out + ": " + ErrnoText(errno));
  }

  // Signals are taken through a signalfd on this thread, so they are blocked before any other
  // thread exists (threads inherit the mask) and no handler runs inside the server's code.
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  if (::pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) Die("cannot block signals");
  const int signal_fd = ::signalfd(-1, &signals, SFD_CLOEXEC);
  if (signal_fd < 0) Die("signalfd: " + ErrnoText(errno));

  std::optional<std::string> login;
  if (options.user) login = *options.user + ":" + *options.password;
  Collector collector(options.out, login, std::move(*mode));

  uint16_t port = 0;
  int listen_fd = Listen(*address, &port, &error);
  if (listen_fd < 0) Die(error);
  SetPort(&*address, port);  // SIGUSR1 comes back on the same port
  if (!options.port_file.empty()) WritePortFile(options.port_file, port);
  Log("listening on " + address->host + " port " + std::to_string(port));

  bool want_listening = true;
  std::list<std::unique_ptr<ConnectionThread>> threads;
  auto reap = [&threads] {
    for (auto it = threads.begin(); it != threads.end();) {
      if ((*it)->done) {
        (*it)->thread.join();
        it = threads.erase(it);
      } else {
        ++it;
      }
    }
  };

  for (;;) {
    pollfd fds[2] = {{signal_fd, POLLIN, 0}, {listen_fd, POLLIN, 0}};
    const nfds_t count = listen_fd >= 0 ? 2 : 1;
    const bool retrying = want_listening && listen_fd < 0;
    if (::poll(fds, count, retrying ? kRelistenRetryMs : 1000) < 0 && errno != EINTR) {
      Die("poll: " + ErrnoText(errno));
    }
    reap();
    if (retrying) {
      listen_fd = Listen(*address, &port, &error);
      if (listen_fd >= 0) Log("up: listening again on port " + std::to_string(port));
    }
    if ((fds[0].revents & POLLIN) != 0) {
      signalfd_siginfo info{};
      if (::read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (info.ssi_signo == SIGUSR1) {
          want_listening = !want_listening;
          if (!want_listening && listen_fd >= 0) {
            ::close(listen_fd);
            listen_fd = -1;
            collector.EndConnections(/*stopping=*/false);
            Log("down: listener and connections closed (SIGUSR1 brings them back)");
          } else if (want_listening) {
            listen_fd = Listen(*address, &port, &error);
            if (listen_fd >= 0) {
              Log("up: listening again on port " + std::to_string(port));
            } else {
              Log(error + "; retrying every " + std::to_string(kRelistenRetryMs) + " ms");
            }
          }
          continue;
        }
        break;  // SIGTERM or SIGINT
      }
    }
    if (count == 2 && (fds[1].revents & POLLIN) != 0) {
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
          Log("accept: " + ErrnoText(errno));
        }
        continue;
      }
      if (!collector.Register(fd)) {
        Log("over " + std::to_string(kMaxConnections) + " connections: closed a new one");
        ::close(fd);
        continue;
      }
      SetTimeout(fd, SO_RCVTIMEO, kReadTimeoutSeconds);
      SetTimeout(fd, SO_SNDTIMEO, kWriteTimeoutSeconds);
      auto entry = std::make_unique<ConnectionThread>();
      ConnectionThread* raw = entry.get();
      raw->thread = std::thread([&collector, fd, raw] {
        collector.Serve(fd);
        collector.Unregister(fd);
        ::close(fd);
        raw->done = true;
      });
      threads.push_back(std::move(entry));
    }
  }

  Log("stopping");
  if (listen_fd >= 0) ::close(listen_fd);
  collector.EndConnections(/*stopping=*/true);
  for (auto& entry : threads) entry->thread.join();
  ::close(signal_fd);
  return 0;
}
