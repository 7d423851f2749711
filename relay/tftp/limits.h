// Every limit of the TFTP front-end, in one place (vsftpd's defs.h habit), and the ranges the
// option RFCs give. Each buffer that grows with what a peer sends has its ceiling here; tests in
// tests/relay/tftp/packet_test.cc probe N-1, N and N+1.
#pragma once

#include <cstddef>
#include <cstdint>

namespace siterelay::tftp {

// --- Ceilings on what a peer sends ---

// A whole RRQ/WRQ datagram. RFC 2347 says "the maximum size of a request packet is 512 octets",
// and a conforming client stays under it. We accept up to twice that: the server's receive
// buffer is much larger anyway (a DATA packet of an upload may carry 65464 bytes), parsing 1 KiB
// costs nothing, and a client that miscounts by a few bytes (a long path plus every option) is
// better served than refused. Anything larger is no TFTP request, and is refused unread.
inline constexpr size_t kMaxRequestBytes = 1024;

// The filename of a request: the longest one a request within RFC 2347's 512 octets can carry
// (512 - 2 opcode - 1 NUL - 6 for "octet" and its NUL). Phones ask for MAC-named files and
// firmware images a directory or two deep, far below this.
inline constexpr size_t kMaxFilenameBytes = 503;

// Options in one request. The RFCs define five (blksize, timeout, tsize, multicast,
// windowsize) and servers add a few of their own (tftp-hpa: utimeout, rollover); sixteen leaves
// room for unknown ones, which are ignored, without letting a request grow an unbounded list.
inline constexpr size_t kMaxOptions = 16;

// One option name. The longest known one, "windowsize", has 10 bytes.
inline constexpr size_t kMaxOptionNameBytes = 64;

// One option value. The longest known one is a tsize of 2^64-1 (20 digits) or a multicast
// "address,port,master" (RFC 2090: "255.255.255.255,65535,1" is 23 bytes).
inline constexpr size_t kMaxOptionValueBytes = 64;

// The message of an ERROR packet a peer sends, kept for the log. An ERROR ends the transfer
// whatever it says, so a longer message is cut here rather than refused. The same cut applies to
// the messages we send: RFC 1350 packets are at most 516 bytes, and ours stay far below.
inline constexpr size_t kMaxErrorMessageBytes = 255;

// --- Protocol ranges (not ours to choose) ---

// RFC 1350: a DATA block carries 512 bytes unless blksize says otherwise.
inline constexpr uint16_t kDefaultBlksize = 512;
// RFC 2348: a blksize is 8 to 65464 octets, inclusive.
inline constexpr uint16_t kMinBlksize = 8;
inline constexpr uint16_t kMaxBlksize = 65464;
// RFC 2349: the timeout option is 1 to 255 seconds.
inline constexpr int kMinTimeoutSeconds = 1;
inline constexpr int kMaxTimeoutSeconds = 255;
// RFC 7440: windowsize is 1 to 65535 blocks; 1 is RFC 1350's lock-step.
inline constexpr uint16_t kDefaultWindowsize = 1;
inline constexpr uint16_t kMaxWindowsize = 65535;

}  // namespace siterelay::tftp
