// FTP control-connection parsing (RFC 959, with RFC 2428 EPRT/EPSV and RFC 3659 REST): pure
// functions over bytes — no I/O, no logging — used by the FTP session (relay/ftp/session.h) and
// fuzzed in tests/fuzz/ftp_command_fuzz.cc.
//
// TakeLine() cuts complete lines off the session's input buffer; ParseCommand() splits one into a
// verb and its argument; the Parse*() functions read the arguments whose syntax the protocol
// fixes. A refusal carries a short reason meant for the log, never for the peer: the session
// answers with a terse reply of its own, chosen by the status code (see each function). Limits
// are in limits.h.
//
// Everything returned owns its bytes. Thread safety: the functions keep no state and may be
// called from any thread.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "relay/base/status.h"

namespace siterelay::ftp {

// The status code for "a parameter this server does not implement": FTP answers it with 504
// (TYPE, RFC 959) or 522 (EPRT's network protocol, RFC 2428), where a syntax error is 501.
inline constexpr StatusCode kUnimplemented = StatusCode::kUnimplemented;

struct Command {
  std::string verb;  // upper-cased, 1-4 ASCII letters
  std::string arg;   // everything after the first space, as sent; "" when there is none

  friend bool operator==(const Command&, const Command&) = default;
};

// Splits one complete line (its terminator removed, as TakeLine() gives it) into verb and
// argument: "NOOP" -> {NOOP, ""}, "retr a b.txt" -> {RETR, "a b.txt"}, "CWD " -> {CWD, ""}.
// RFC 959 section 5.3.1: commands are case-insensitive and the verb ends at the first space; the
// argument is kept byte for byte (a path may hold spaces, or start with one).
// InvalidArgument for an empty line, a verb that is not 1-4 ASCII letters, a NUL, CR or LF
// anywhere, or a line over kMaxLineBytes (the session answers 500).
Result<Command> ParseCommand(std::string_view line);

enum class LineStatus {
  kLine,      // *line holds one line; its bytes are gone from *in
  kNeedMore,  // no complete line yet; nothing was changed
  kTooLong,   // the line cannot end within the limits; the session answers 500 and closes
};

// Frames lines on the control connection, which RFC 959 runs over Telnet (section 4.1.1, RFC
// 854). A line ends at CRLF or at a bare LF (some clients end lines with LF alone). On the way,
// the Telnet layer is removed:
//   IAC IAC                         -> one 0xFF byte (RFC 854: a data byte of 255 is doubled)
//   IAC <WILL|WONT|DO|DONT> <opt>   -> dropped (option negotiation; we agree to nothing)
//   IAC <240..250>                  -> dropped: SE NOP DM BRK IP AO AYT EC EL GA SB. Clients send
//                                      ABOR as IAC IP IAC DM "ABOR" (RFC 959 section 4.1.3), and
//                                      that line must parse as ABOR.
//   IAC <0..239>                    -> the 0xFF is kept and the next byte read on its own (an
//                                      LF still ends the line): no Telnet command starts so, and
//                                      a client that speaks no Telnet at all and sends a raw 0xFF
//                                      in a name keeps its name (proftpd does the same).
// On kLine, *line is the line without its terminator and with the Telnet layer removed, and every
// byte up to and including its LF is erased from *in. The line may still be over kMaxLineBytes
// by one byte; ParseCommand() refuses it (500) without closing.
// On kNeedMore neither *in nor *line changes: a partial line stays in *in, and so does a partial
// IAC sequence at its end, which the next read completes. Then in->size() < kMaxRawLineBytes, so
// a caller that calls TakeLine() after every read holds a bounded buffer.
// kTooLong when the line would be longer than kMaxLineBytes + 2 bytes (its CRLF allowed for) or
// its raw bytes run past kMaxRawLineBytes, before an LF; nothing is changed.
LineStatus TakeLine(std::string* in, std::string* line);

// PORT h1,h2,h3,h4,p1,p2 (RFC 959 section 4.1.2): an IPv4 address and the port p1*256+p2, each
// number decimal 0-255 (digits only: no sign, no spaces), the port not 0. Returns a sockaddr_in
// inside the storage, port and address in network byte order. InvalidArgument otherwise (501).
Result<sockaddr_storage> ParsePort(std::string_view arg);

// EPRT <d><proto><d><address><d><port><d> (RFC 2428 section 2), e.g. |1|1.2.3.4|5282| or
// |2|::1|5282|. The delimiter d is any ASCII character 33-126; proto is 1 (IPv4, dotted quad) or
// 2 (IPv6, as inet_pton reads it); the port is decimal 1-65535. Returns a sockaddr_in or
// sockaddr_in6 inside the storage. A proto of digits other than 1 or 2 is kUnimplemented (522,
// "network protocol not supported"); anything else malformed is InvalidArgument (501).
Result<sockaddr_storage> ParseEprt(std::string_view arg);

// "227 Entering Passive Mode (127,0,0,1,195,80)." for the address and port of `a` (both in
// network byte order, as in any sockaddr_in). No CRLF.
std::string PasvReply(const sockaddr_in& a);

// "229 Entering Extended Passive Mode (|||50000|)" (RFC 2428 section 3). No CRLF.
std::string EpsvReply(uint16_t port);

// REST's argument (RFC 3659 section 5): a decimal byte offset, 0..2^63-1 (what an off_t can
// hold), ASCII digits only — no sign, no spaces. InvalidArgument otherwise (501).
Result<uint64_t> ParseRestOffset(std::string_view arg);

// TYPE's argument (RFC 959 section 5.3.2), case-insensitive, answered as 'A' or 'I':
//   "A", "A N"          -> 'A'  (ASCII, non-print: the only ASCII form anybody sends)
//   "I", "L 8"          -> 'I'  (image; local bytes of 8 bits are the same thing). "L8" too,
//                                as vsftpd accepts it.
//   "A T", "A C", "E", "E N", "E T", "E C", "L <n>" with n not 8
//                       -> kUnimplemented (504): well-formed, but not offered.
// Anything else — empty, an unknown type, missing or extra spaces, "L" without a byte size — is
// InvalidArgument (501).
Result<char> ParseType(std::string_view arg);

// The FTP working-directory model. `cwd` is an absolute, normalised path: "/" or "/a/b" (one
// JoinPath() returned). `arg` is absolute when it starts with '/', else relative to cwd; empty
// and "." segments and repeated '/' are dropped, ".." removes the segment before it. The result
// is absolute and normalised: "/" or "/a/b", no trailing '/', no "." or ".." segment.
//   Empty arg -> cwd.
//   PermissionDenied when ".." would go above "/" at any step ("..", "/../x", "a/../../b" from
//   "/"): CONTRACT.md wants escapes refused, never resolved (clamped to "/"). PermissionDenied,
//   too, for a backslash (a Windows separator that could hide a "..") or a NUL, CR or LF anywhere
//   (the result ends up in a reply line: "257 "/a/b"").
//   InvalidArgument when the result would be over kMaxPathBytes.
// This is the namespace the client sees; the session still hands the result to
// files::NormalizePath() with the account's root, which applies the rest of CONTRACT.md's rules.
Result<std::string> JoinPath(std::string_view cwd, std::string_view arg);

}  // namespace siterelay::ftp
