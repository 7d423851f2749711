// libFuzzer target for the FTP control-connection parsers (relay/ftp/command.h) and, briefly,
// the listing formats (relay/ftp/listing.h).
//
// The input is what a client has sent on the control connection. The session appends each read
// to its buffer, takes lines off it with TakeLine() and parses each; so beyond never crashing:
//   - Framing: a line never holds an LF, is at most kMaxLineBytes + 1 bytes, and is taken with at
//     least as many bytes as it has; kNeedMore and kTooLong change nothing, and kNeedMore leaves
//     less than kMaxRawLineBytes buffered. The same bytes arriving in other reads (split anywhere,
//     in small pieces) give the same lines and the same final answer: no line depends on where a
//     read ended, even inside an IAC sequence or between CR and LF.
//   - ParseCommand: only InvalidArgument; an accepted line is a verb of 1-4 upper-case letters
//     and an argument without NUL, CR or LF, which put back together give the line.
//   - The argument parsers, fed each command's argument and the whole input: refusals carry the
//     promised codes (InvalidArgument, kUnimplemented only for a well-formed type or protocol,
//     PermissionDenied for escapes); PORT and EPRT answers have a port and an address family, and
//     parse back from what PasvReply() or a rebuilt EPRT make of them; REST prints back to its
//     digits; TYPE ignores case.
//   - JoinPath: an absolute normalised path ('/' first, no "//", no "." or ".." segment, no
//     trailing '/', within kMaxPathBytes, no backslash, NUL, CR or LF), a fixed point of itself,
//     and never accepting a backslash.
//   - FormatFtpTime is 14 digits for any time; a LIST line is one line ending in CRLF.
#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "relay/ftp/command.h"
#include "relay/ftp/limits.h"
#include "relay/ftp/listing.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace siterelay::ftp;  // NOLINT: a fuzzer of this one module
using siterelay::Result;
using siterelay::StatusCode;

struct Framing {
  std::vector<std::string> lines;
  LineStatus last = LineStatus::kNeedMore;
};

// Takes every line off `in`, checking what each call promises. Stops at kNeedMore or kTooLong.
void Drain(std::string* in, Framing* f) {
  while (true) {
    const std::string before = *in;
    std::string line = "\x01sentinel";
    LineStatus s = TakeLine(in, &line);
    f->last = s;
    if (s != LineStatus::kLine) {
      FUZZ_CHECK(*in == before);
      FUZZ_CHECK(line == "\x01sentinel");
      if (s == LineStatus::kNeedMore) FUZZ_CHECK(in->size() < kMaxRawLineBytes);
      return;
    }
    FUZZ_CHECK(in->size() < before.size());
    FUZZ_CHECK(line.size() < before.size() - in->size());  // its LF was taken too
    FUZZ_CHECK(before.compare(before.size() - in->size(), std::string::npos, *in) == 0);
    FUZZ_CHECK(line.find('\n') == std::string::npos);
    FUZZ_CHECK(line.size() <= kMaxLineBytes + 1);
    f->lines.push_back(std::move(line));
  }
}

bool IsDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

void CheckCommand(std::string_view line, const Result<Command>& c) {
  if (!c.ok()) {
    FUZZ_CHECK(c.status().code() == StatusCode::kInvalidArgument);
    FUZZ_CHECK(!c.status().message().empty());
    return;
  }
  FUZZ_CHECK(line.size() <= kMaxLineBytes);
  FUZZ_CHECK(!c->verb.empty() && c->verb.size() <= 4);
  for (char ch : c->verb) FUZZ_CHECK(ch >= 'A' && ch <= 'Z');
  FUZZ_CHECK(c->arg.find_first_of(std::string_view("\0\r\n", 3)) == std::string::npos);
  const bool has_space = line.find(' ') != std::string_view::npos;
  std::string rebuilt = c->verb + (has_space ? " " + c->arg : "");
  FUZZ_CHECK(rebuilt.size() == line.size());
  FUZZ_CHECK(Upper(rebuilt) == Upper(line));
  FUZZ_CHECK(line.substr(line.size() - c->arg.size()) == c->arg);
}

uint16_t PortOf(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &ss, sizeof sin);
    return ntohs(sin.sin_port);
  }
  sockaddr_in6 sin6;
  std::memcpy(&sin6, &ss, sizeof sin6);
  return ntohs(sin6.sin6_port);
}

bool SameEndpoint(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family || PortOf(a) != PortOf(b)) return false;
  if (a.ss_family == AF_INET) {
    sockaddr_in x, y;
    std::memcpy(&x, &a, sizeof x);
    std::memcpy(&y, &b, sizeof y);
    return std::memcmp(&x.sin_addr, &y.sin_addr, sizeof x.sin_addr) == 0;
  }
  sockaddr_in6 x, y;
  std::memcpy(&x, &a, sizeof x);
  std::memcpy(&y, &b, sizeof y);
  return std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
}

void CheckPort(std::string_view arg) {
  auto r = ParsePort(arg);
  if (!r.ok()) {
    FUZZ_CHECK(r.status().code() == StatusCode::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(r->ss_family == AF_INET);
  FUZZ_CHECK(PortOf(*r) != 0);
  for (char c : arg) FUZZ_CHECK((c >= '0' && c <= '9') || c == ',');
  // What the session would answer to PASV on that address parses back to it.
  sockaddr_in sin;
  std::memcpy(&sin, &*r, sizeof sin);
  std::string reply = PasvReply(sin);
  size_t open = reply.find('(');
  size_t close = reply.find(')');
  FUZZ_CHECK(open != std::string::npos && close != std::string::npos && open < close);
  auto again = ParsePort(std::string_view(reply).substr(open + 1, close - open - 1));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(SameEndpoint(*again, *r));
}

void CheckEprt(std::string_view arg) {
  auto r = ParseEprt(arg);
  if (!r.ok()) {
    const StatusCode code = r.status().code();
    FUZZ_CHECK(code == StatusCode::kInvalidArgument || code == kUnimplemented);
    if (code == kUnimplemented) {
      // Only a well-formed request for another protocol: |digits|...|...|.
      FUZZ_CHECK(arg.size() >= 2 && arg.front() == arg.back());
      size_t second = arg.find(arg.front(), 1);
      FUZZ_CHECK(IsDigits(arg.substr(1, second - 1)));
      std::string_view proto = arg.substr(1, second - 1);
      FUZZ_CHECK(proto != "1" && proto != "2");
    }
    return;
  }
  const char d = arg.front();
  FUZZ_CHECK(d >= 33 && d <= 126);
  FUZZ_CHECK(arg.back() == d);
  FUZZ_CHECK(r->ss_family == AF_INET || r->ss_family == AF_INET6);
  FUZZ_CHECK(PortOf(*r) != 0);
  // Rebuilt with '|' and the canonical address text, it parses to the same endpoint.
  char text[INET6_ADDRSTRLEN] = {};
  const void* addr = nullptr;
  sockaddr_in sin;
  sockaddr_in6 sin6;
  if (r->ss_family == AF_INET) {
    std::memcpy(&sin, &*r, sizeof sin);
    addr = &sin.sin_addr;
  } else {
    std::memcpy(&sin6, &*r, sizeof sin6);
    addr = &sin6.sin6_addr;
  }
  FUZZ_CHECK(inet_ntop(r->ss_family, addr, text, sizeof text) != nullptr);
  std::string rebuilt = std::string("|") + (r->ss_family == AF_INET ? "1" : "2") + "|" + text +
                        "|" + std::to_string(PortOf(*r)) + "|";
  auto again = ParseEprt(rebuilt);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(SameEndpoint(*again, *r));
}

void CheckRest(std::string_view arg) {
  auto r = ParseRestOffset(arg);
  if (!r.ok()) {
    FUZZ_CHECK(r.status().code() == StatusCode::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(*r <= static_cast<uint64_t>(INT64_MAX));
  FUZZ_CHECK(IsDigits(arg));
  std::string_view digits = arg.substr(std::min(arg.find_first_not_of('0'), arg.size() - 1));
  FUZZ_CHECK(std::to_string(*r) == digits);
}

void CheckType(std::string_view arg) {
  auto r = ParseType(arg);
  auto upper = ParseType(Upper(arg));
  FUZZ_CHECK(r.ok() == upper.ok());
  if (!r.ok()) {
    const StatusCode code = r.status().code();
    FUZZ_CHECK(code == StatusCode::kInvalidArgument || code == kUnimplemented);
    FUZZ_CHECK(upper.status().code() == code);
    FUZZ_CHECK(!arg.empty() || code == StatusCode::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(*r == 'A' || *r == 'I');
  FUZZ_CHECK(*upper == *r);
}

void CheckNormalised(const std::string& p) {
  FUZZ_CHECK(!p.empty() && p.front() == '/');
  FUZZ_CHECK(p.size() <= kMaxPathBytes);
  FUZZ_CHECK(p == "/" || p.back() != '/');
  FUZZ_CHECK(p.find("//") == std::string::npos);
  FUZZ_CHECK(p.find("/./") == std::string::npos);
  FUZZ_CHECK(p.find("/../") == std::string::npos);
  FUZZ_CHECK(p.size() < 2 || p.compare(p.size() - 2, 2, "/.") != 0);
  FUZZ_CHECK(p.size() < 3 || p.compare(p.size() - 3, 3, "/..") != 0);
  FUZZ_CHECK(p.find_first_of(std::string_view("\\\0\r\n", 4)) == std::string::npos);
}

void CheckJoin(std::string_view cwd, std::string_view arg) {
  auto r = JoinPath(cwd, arg);
  if (arg.find('\\') != std::string_view::npos) FUZZ_CHECK(!r.ok());
  if (!r.ok()) {
    const StatusCode code = r.status().code();
    FUZZ_CHECK(code == StatusCode::kPermissionDenied || code == StatusCode::kInvalidArgument);
    return;
  }
  CheckNormalised(*r);
  // A normalised path is its own normal form, from anywhere, and names the working directory.
  auto again = JoinPath("/elsewhere", *r);
  FUZZ_CHECK(again.ok() && *again == *r);
  auto here = JoinPath(*r, "");
  FUZZ_CHECK(here.ok() && *here == *r);
  // An absolute argument does not depend on the working directory.
  if (!arg.empty() && arg.front() == '/') {
    auto from_root = JoinPath("/", arg);
    FUZZ_CHECK(from_root.ok() && *from_root == *r);
  }
}

void CheckArgument(std::string_view arg) {
  CheckPort(arg);
  CheckEprt(arg);
  CheckRest(arg);
  CheckType(arg);
  CheckJoin("/a", arg);
  CheckJoin("/", arg);
}

uint64_t Read64(const uint8_t* data, size_t size, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | (at + i < size ? data[at + i] : 0u);
  return v;
}

void CheckListing(const uint8_t* data, size_t size) {
  const auto modified = static_cast<int64_t>(Read64(data, size, 0));
  const auto now = static_cast<int64_t>(Read64(data, size, 8));
  std::string t = FormatFtpTime(modified);
  FUZZ_CHECK(t.size() == 14 && IsDigits(t));
  ListEntry e{"0004f282e824.cfg", (size & 1) != 0, Read64(data, size, 16), modified};
  std::string line = FormatListLine(e, now);
  FUZZ_CHECK(line.find('\n') == line.size() - 1);
  FUZZ_CHECK(line.size() > 2 && line.compare(line.size() - 2, 2, "\r\n") == 0);
  FUZZ_CHECK(line.compare(line.size() - 19, 19, " 0004f282e824.cfg\r\n") == 0);
  std::string facts = FormatFacts(e);
  FUZZ_CHECK(facts.find("modify=" + t + ";") != std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);

  // The whole input in one read.
  std::string whole = input;
  Framing at_once;
  Drain(&whole, &at_once);

  // The same bytes in reads of 1..16 bytes, the size taken from the last byte.
  const size_t piece = size == 0 ? 1 : data[size - 1] % 16 + 1;
  std::string buffer;
  Framing in_pieces;
  for (size_t at = 0; at < size && in_pieces.last != LineStatus::kTooLong; at += piece) {
    buffer.append(input, at, piece);
    Drain(&buffer, &in_pieces);
  }
  FUZZ_CHECK(in_pieces.lines == at_once.lines);
  FUZZ_CHECK(in_pieces.last == at_once.last);
  if (at_once.last == LineStatus::kNeedMore) FUZZ_CHECK(buffer == whole);

  for (const std::string& line : at_once.lines) {
    auto c = ParseCommand(line);
    CheckCommand(line, c);
    if (c.ok()) CheckArgument(c->arg);
  }
  // And the input as an argument on its own, so the argument parsers see bytes no line carries.
  if (size <= kMaxLineBytes) CheckArgument(input);
  CheckListing(data, size);
  return 0;
}
