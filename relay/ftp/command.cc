#include "relay/ftp/command.h"

#include <arpa/inet.h>

#include <array>
#include <cstring>
#include <optional>
#include <vector>

#include "relay/base/strings.h"
#include "relay/ftp/limits.h"

namespace siterelay::ftp {
namespace {

// Telnet (RFC 854) bytes the control connection may carry.
constexpr unsigned char kIac = 255;   // Interpret As Command
constexpr unsigned char kWill = 251;  // WILL, WONT, DO, DONT: 251..254, each followed by an option
constexpr unsigned char kDont = 254;
constexpr unsigned char kFirstCommand = 240;  // SE; 240..250 are two-byte commands

// A peer's bytes for a log message: quoted, and cut so one line cannot make a long log line.
std::string Shown(std::string_view s) {
  constexpr size_t kShownBytes = 32;
  if (s.size() <= kShownBytes) return Quote(s);
  return Quote(s.substr(0, kShownBytes)) + "...";
}

bool IsAsciiLetter(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

char AsciiUpper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

// ASCII digits only, no sign or space, at most `max`. Leading zeros are fine ("010" is ten, never
// octal: RFC 959 writes every number in decimal).
std::optional<uint64_t> ParseDecimal(std::string_view s, uint64_t max) {
  if (!AllDigits(s)) return std::nullopt;
  uint64_t n = 0;
  for (char c : s) {
    auto digit = static_cast<uint64_t>(c - '0');
    if (digit > max || n > (max - digit) / 10) return std::nullopt;
    n = n * 10 + digit;
  }
  return n;
}

// Splits `s` at every `sep`; "a,,b" gives three fields, the middle one empty.
std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> fields;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) {
      fields.push_back(s.substr(start));
      return fields;
    }
    fields.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

}  // namespace

Result<Command> ParseCommand(std::string_view line) {
  if (line.size() > kMaxLineBytes) {
    return Status::InvalidArgument("command line of " + std::to_string(line.size()) +
                                   " bytes is over " + std::to_string(kMaxLineBytes));
  }
  if (line.empty()) return Status::InvalidArgument("empty command line");
  // TakeLine() never leaves an LF in a line, but a CR or NUL can arrive alone (a bare CR, or
  // Telnet's CR NUL), and none of them has a place in a verb, a path or a number: they would only
  // end up in a reply line or a file name.
  if (line.find_first_of(std::string_view("\0\r\n", 3)) != std::string_view::npos) {
    return Status::InvalidArgument("NUL, CR or LF in command line " + Shown(line));
  }
  size_t space = line.find(' ');
  std::string_view verb = line.substr(0, space);
  if (verb.empty() || verb.size() > 4) {
    return Status::InvalidArgument("no command verb of 1-4 letters in " + Shown(line));
  }
  Command c;
  for (char ch : verb) {
    if (!IsAsciiLetter(ch)) return Status::InvalidArgument("command verb " + Shown(verb));
    c.verb.push_back(AsciiUpper(ch));
  }
  if (space != std::string_view::npos) c.arg = std::string(line.substr(space + 1));
  return c;
}

LineStatus TakeLine(std::string* in, std::string* line) {
  const std::string& raw = *in;
  // Most reads carry a whole line, or a part of one that is far from any limit: look for the LF
  // first, so a peer sending a byte at a time costs a memchr per read, not a decode.
  if (raw.find('\n') == std::string::npos && raw.size() < kMaxLineBytes + 2) {
    return LineStatus::kNeedMore;
  }
  std::string out;
  size_t i = 0;
  while (i < raw.size()) {
    auto c = static_cast<unsigned char>(raw[i]);
    if (c == '\n') {
      if (!out.empty() && out.back() == '\r') out.pop_back();
      *line = std::move(out);
      in->erase(0, i + 1);
      return LineStatus::kLine;
    }
    // The LF must be one of the first kMaxRawLineBytes bytes; this one is not, and nothing after
    // it can be either.
    if (i + 1 >= kMaxRawLineBytes) return LineStatus::kTooLong;
    if (c != kIac) {
      out.push_back(static_cast<char>(c));
      ++i;
    } else {
      if (i + 1 == raw.size()) return LineStatus::kNeedMore;  // the rest of it comes next read
      auto command = static_cast<unsigned char>(raw[i + 1]);
      if (command == kIac) {
        out.push_back(static_cast<char>(kIac));
        i += 2;
      } else if (command >= kWill && command <= kDont) {
        if (i + 2 == raw.size()) return LineStatus::kNeedMore;
        i += 3;
      } else if (command >= kFirstCommand) {
        i += 2;
      } else {
        // Not Telnet: keep the 0xFF, and look at the next byte on its own (it may be the LF).
        out.push_back(static_cast<char>(kIac));
        ++i;
      }
    }
    // kMaxLineBytes and its CRLF, and still no LF.
    if (out.size() >= kMaxLineBytes + 2) return LineStatus::kTooLong;
  }
  return i >= kMaxRawLineBytes ? LineStatus::kTooLong : LineStatus::kNeedMore;
}

Result<sockaddr_storage> ParsePort(std::string_view arg) {
  std::vector<std::string_view> fields = Split(arg, ',');
  if (fields.size() != 6) {
    return Status::InvalidArgument("PORT needs 6 numbers, not " + Shown(arg));
  }
  std::array<uint8_t, 6> n{};
  for (size_t i = 0; i < 6; ++i) {
    std::optional<uint64_t> b = ParseDecimal(fields[i], 255);
    if (!b) return Status::InvalidArgument("PORT number is not 0-255: " + Shown(fields[i]));
    n[i] = static_cast<uint8_t>(*b);
  }
  auto port = static_cast<uint16_t>((n[4] << 8) | n[5]);
  if (port == 0) return Status::InvalidArgument("PORT with port 0");

  sockaddr_storage storage;
  std::memset(&storage, 0, sizeof storage);
  sockaddr_in sin;
  std::memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  std::memcpy(&sin.sin_addr, n.data(), 4);  // h1 is the first byte in network order
  std::memcpy(&storage, &sin, sizeof sin);
  return storage;
}

Result<sockaddr_storage> ParseEprt(std::string_view arg) {
  // RFC 2428 section 2: "The delimiter character MUST be one of the ASCII characters in range 33
  // to 126 inclusive."
  if (arg.size() < 2 || arg[0] < 33 || arg[0] > 126) {
    return Status::InvalidArgument("EPRT without a delimiter: " + Shown(arg));
  }
  const char d = arg[0];
  if (arg.back() != d) return Status::InvalidArgument("EPRT not closed by its delimiter");
  // What lies between the first and the last delimiter: proto, address, port.
  std::vector<std::string_view> fields = Split(arg.substr(1, arg.size() - 2), d);
  if (fields.size() != 3) return Status::InvalidArgument("EPRT needs 3 fields: " + Shown(arg));
  const std::string_view proto = fields[0];
  const std::string_view address = fields[1];
  const std::string_view port_text = fields[2];

  if (!AllDigits(proto)) return Status::InvalidArgument("EPRT protocol " + Shown(proto));
  std::optional<uint64_t> port = ParseDecimal(port_text, 65535);
  if (!port || *port == 0) {
    return Status::InvalidArgument("EPRT port is not 1-65535: " + Shown(port_text));
  }
  // inet_pton needs a NUL-terminated string; an address is short, and a longer field is none.
  constexpr size_t kMaxAddressText = INET6_ADDRSTRLEN;
  if (address.empty() || address.size() >= kMaxAddressText) {
    return Status::InvalidArgument("EPRT address " + Shown(address));
  }
  char text[kMaxAddressText] = {};
  std::memcpy(text, address.data(), address.size());

  sockaddr_storage storage;
  std::memset(&storage, 0, sizeof storage);
  if (proto == "1") {
    sockaddr_in sin;
    std::memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(static_cast<uint16_t>(*port));
    if (inet_pton(AF_INET, text, &sin.sin_addr) != 1) {
      return Status::InvalidArgument("EPRT IPv4 address " + Shown(address));
    }
    std::memcpy(&storage, &sin, sizeof sin);
  } else if (proto == "2") {
    sockaddr_in6 sin6;
    std::memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(static_cast<uint16_t>(*port));
    if (inet_pton(AF_INET6, text, &sin6.sin6_addr) != 1) {
      return Status::InvalidArgument("EPRT IPv6 address " + Shown(address));
    }
    std::memcpy(&storage, &sin6, sizeof sin6);
  } else {
    // A well-formed request for a protocol we do not speak: RFC 2428 wants 522 for it, with the
    // protocols we do support, not a syntax error.
    return Status(kUnimplemented, "EPRT network protocol " + Shown(proto));
  }
  return storage;
}

std::string PasvReply(const sockaddr_in& a) {
  std::array<uint8_t, 4> h{};
  std::memcpy(h.data(), &a.sin_addr, 4);
  uint16_t port = ntohs(a.sin_port);
  return "227 Entering Passive Mode (" + std::to_string(h[0]) + "," + std::to_string(h[1]) + "," +
         std::to_string(h[2]) + "," + std::to_string(h[3]) + "," + std::to_string(port >> 8) + "," +
         std::to_string(port & 0xff) + ").";
}

std::string EpsvReply(uint16_t port) {
  return "229 Entering Extended Passive Mode (|||" + std::to_string(port) + "|)";
}

Result<uint64_t> ParseRestOffset(std::string_view arg) {
  // A REST past the end of the file is the session's business (it answers RETR with 551 then);
  // here only what an off_t cannot hold is refused.
  constexpr uint64_t kMaxOffset = static_cast<uint64_t>(INT64_MAX);
  std::optional<uint64_t> n = ParseDecimal(arg, kMaxOffset);
  if (!n) {
    return Status::InvalidArgument("REST offset is not 0.." + std::to_string(kMaxOffset) + ": " +
                                   Shown(arg));
  }
  return *n;
}

Result<char> ParseType(std::string_view arg) {
  auto unimplemented = [&] { return Status(kUnimplemented, "TYPE " + Shown(arg)); };
  auto invalid = [&] { return Status::InvalidArgument("TYPE " + Shown(arg)); };
  if (arg.empty()) return invalid();
  const char type = AsciiUpper(arg[0]);
  std::string_view rest = arg.substr(1);
  switch (type) {
    case 'I':
      if (!rest.empty()) return invalid();  // image takes no form code
      return 'I';
    case 'A':
    case 'E': {
      // RFC 959: A and E take an optional form code, N (non-print, the default), T (Telnet
      // format effectors) or C (ASA carriage control). Only A N is offered: the others are
      // printer formats nobody has asked an FTP server for in decades.
      char form = 'N';
      if (!rest.empty()) {
        if (rest.size() != 2 || rest[0] != ' ') return invalid();
        form = AsciiUpper(rest[1]);
        if (form != 'N' && form != 'T' && form != 'C') return invalid();
      }
      if (type == 'A' && form == 'N') return 'A';
      return unimplemented();
    }
    case 'L': {
      // "L 8", and "L8" as vsftpd also reads it.
      if (!rest.empty() && rest[0] == ' ') rest.remove_prefix(1);
      if (!AllDigits(rest)) return invalid();
      if (ParseDecimal(rest, 255) == std::optional<uint64_t>(8)) return 'I';
      return unimplemented();
    }
    default:
      return invalid();
  }
}

Result<std::string> JoinPath(std::string_view cwd, std::string_view arg) {
  // Refused before anything is joined, so no spelling of the same escape gets through another
  // way: a backslash is a separator to Windows clients and to anything that hands the path on
  // (a "..\.." must not become a name here and an escape there), a NUL ends a C string early,
  // and CR or LF would split the reply line the path is echoed in.
  for (std::string_view s : {cwd, arg}) {
    if (s.find_first_of(std::string_view("\\\0\r\n", 4)) != std::string_view::npos) {
      return Status::PermissionDenied("backslash, NUL, CR or LF in path " + Shown(s));
    }
  }
  std::vector<std::string_view> segments;
  // Applies one '/'-separated path to `segments`. False when ".." would climb above "/".
  auto apply = [&segments](std::string_view path) {
    for (std::string_view segment : Split(path, '/')) {
      if (segment.empty() || segment == ".") continue;
      if (segment == "..") {
        if (segments.empty()) return false;
        segments.pop_back();
        continue;
      }
      segments.push_back(segment);
    }
    return true;
  };
  // cwd goes through the same steps as arg, so even a cwd that is not normalised yields a
  // normalised result.
  if (arg.empty() || arg[0] != '/') {
    if (!apply(cwd)) return Status::PermissionDenied("working directory above / " + Shown(cwd));
  }
  if (!apply(arg)) return Status::PermissionDenied("path leaves / " + Shown(arg));

  std::string out;
  for (std::string_view segment : segments) {
    out += '/';
    out += segment;
    if (out.size() > kMaxPathBytes) {
      return Status::InvalidArgument("path longer than " + std::to_string(kMaxPathBytes) +
                                     " bytes");
    }
  }
  if (out.empty()) out = "/";
  return out;
}

}  // namespace siterelay::ftp
