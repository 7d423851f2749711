// Every limit of the FTP front-end's parsers, in one place (vsftpd's defs.h habit). Each buffer
// that grows with what a peer sends has its ceiling here; tests in tests/relay/ftp/command_test.cc
// probe N-1, N and N+1.
#pragma once

#include <cstddef>

namespace siterelay::ftp {

// One command line on the control connection, its CRLF not counted. The longest commands carry a
// path (RETR, STOR, CWD, SIZE, MLST...): phones ask for MAC-named files a directory or two deep,
// and even a deep firmware tree stays within about 1 KiB, so a verb, its space and a 1 KiB path
// fit with room to spare. vsftpd's VSFTP_MAX_COMMAND_LINE is 4 KiB; half of it still refuses
// nothing a phone or a desktop client sends, and keeps the per-connection buffer small.
inline constexpr size_t kMaxLineBytes = 2048;

// The same line as it arrives, before the Telnet layer (RFC 959 section 4.1.1, RFC 854) is
// removed: IAC IAC doubles a 0xFF byte, so a line of kMaxLineBytes may take twice as many bytes,
// and 64 more cover its CRLF and the Telnet commands a client sends in front of it (IAC IP IAC DM
// before ABOR is 4 bytes). Without this ceiling a peer sending nothing but IAC NOP would grow the
// input buffer without ever growing the line.
inline constexpr size_t kMaxRawLineBytes = 2 * kMaxLineBytes + 64;

// An absolute path JoinPath() returns, and so the working directory, which grows one CWD at a
// time. Any absolute path that fits in a command line fits here, so this refuses only what
// relative CWDs pile up past what a client could have named in one line.
inline constexpr size_t kMaxPathBytes = kMaxLineBytes;

// Replies a client has not read yet. Past this the session runs no further command and reads no
// further input until the client takes them: without it a client that pipelines FEAT (6 bytes in,
// about 200 out) and never reads grew the relay by a gigabyte in seconds. The longest single reply
// (FEAT, MLST's 250, a 257 quoting a path of kMaxPathBytes) is far below it, so one always fits.
inline constexpr size_t kMaxPendingReplyBytes = 64 * 1024;

}  // namespace siterelay::ftp
