// Directory listings and times as FTP clients read them: LIST lines in the Unix `ls -l` format,
// RFC 3659 facts for MLSD/MLST, and RFC 3659 times for MDTM. Pure functions — no I/O, no clock:
// the session passes the current time in, so tests pin it — used by the FTP session
// (relay/ftp/session.h).
//
// Names are written as they are. The session lists catalog entries, whose names
// files::NormalizePath() has already kept free of '/', NUL, CR, LF and other control characters;
// a name holding CRLF would otherwise forge a line of the listing.
//
// Times are UTC, as vsftpd's default (use_localtime=NO) writes them: a relay serves phones in
// every time zone from one clock, and MDTM is UTC by definition (RFC 3659 section 2.3). Times
// before 1970 or after 9999 are written as the nearest of those years' ends: the formats have
// four-digit years, and no file the relay serves is that old or that new.
//
// Thread safety: the functions keep no state and may be called from any thread.
#pragma once

#include <cstdint>
#include <string>

namespace siterelay::ftp {

struct ListEntry {
  std::string name;  // the last path segment, no '/'
  bool dir = false;
  uint64_t size = 0;     // bytes; not shown for a directory in facts, 0 in LIST
  int64_t modified = 0;  // Unix seconds
};

// One LIST line, CRLF included, in the format GNU ls -l writes and every client parses (curl,
// lftp, FileZilla, Poly phones, which all look for it since RFC 959 leaves LIST's format open):
//   "-r--r--r-- 1 ftp ftp 12345 Nov 25 20:14 name\r\n"   a file
//   "dr-xr-xr-x 2 ftp ftp 0 Nov 25 20:14 name\r\n"       a directory
// The modes say what every account may do with the tree: read files and enter and list
// directories. The few phone upload names that STOR accepts (CONTRACT.md) are not marked writable:
// that is decided per account and per name when the upload arrives, and no client looks at the
// mode before trying. Fields are separated by one space; clients split on runs of spaces, so
// sizes need no right alignment.
// The date is "Mon dd HH:MM" when `modified` lies within the six months before `now` (half of an
// average Gregorian year, 15778476 s, as GNU ls counts it) or at most an hour after it (a clock a
// little ahead of ours), otherwise "Mon dd  yyyy" — the year right-aligned under the time. The
// day of the month is padded with a space ("Nov  5"), as ls's %e does.
std::string FormatListLine(const ListEntry& e, int64_t now);

// RFC 3659 section 7 facts and the name, without CRLF: MLSD ends each with "\r\n", MLST's reply
// line starts with a space (section 7.2). perm: a file may be read (r); a directory may be
// entered (e) and listed (l).
//   "type=file;size=12345;modify=20261125201400;perm=r; name"
//   "type=dir;modify=20261125201400;perm=el; name"
std::string FormatFacts(const ListEntry& e);

// "YYYYMMDDHHMMSS" in UTC: MDTM's reply and the modify fact (RFC 3659 section 2.3).
std::string FormatFtpTime(int64_t unix_seconds);

}  // namespace siterelay::ftp
