// TFTP packets (RFC 1350) and option negotiation (RFC 2347 OACK, 2348 blksize, 2349 timeout and
// tsize, 7440 windowsize): pure functions over byte spans — no I/O, no logging — used by the
// TFTP server (relay/tftp/server.h) and fuzzed in tests/fuzz/tftp_packet_fuzz.cc.
//
// Parsers take one whole UDP datagram and answer a value or InvalidArgument with a short reason
// for the log (never for the peer: the server answers with a terse ERROR packet of its own).
// Everything they return owns its bytes, except Data::payload, which points into the datagram
// and must not outlive it. Encoders clear `out` and write one whole packet into it, so the
// server can reuse one buffer per transfer. Limits are in limits.h.
//
// Thread safety: the functions keep no state and may be called from any thread. A
// NetasciiEncoder or NetasciiDecoder belongs to one transfer, used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relay/base/status.h"

namespace siterelay::tftp {

enum class Opcode : uint16_t { kRrq = 1, kWrq = 2, kData = 3, kAck = 4, kError = 5, kOack = 6 };

// RFC 1350 section 5, and 8 from RFC 2347. A parsed ErrorPacket keeps the code the peer sent,
// even one outside this list: the value is only logged.
enum class ErrorCode : uint16_t {
  kNotDefined = 0,
  kFileNotFound = 1,
  kAccessViolation = 2,
  kDiskFull = 3,
  kIllegalOperation = 4,
  kUnknownTid = 5,
  kFileExists = 6,
  kNoSuchUser = 7,
  kOptionRefused = 8,
};

// RFC 1350 modes. "mail" is refused: RFC 1350 already calls it obsolete, and a relay has no
// mailboxes to deliver to.
enum class Mode { kOctet, kNetascii };

// "octet" or "netascii", as written on the wire.
std::string_view ModeName(Mode mode);

using OptionList = std::vector<std::pair<std::string, std::string>>;

struct Request {  // RRQ or WRQ
  bool write = false;
  std::string filename;  // as sent (not normalised: FileService does that)
  Mode mode = Mode::kOctet;
  OptionList options;  // names lower-cased, in order, values as sent

  friend bool operator==(const Request&, const Request&) = default;
};

// Parses an RRQ/WRQ datagram. InvalidArgument with a short reason for anything malformed:
// missing NULs, empty filename, unknown mode, an option name without a value, duplicate option
// names (compared case-insensitively, RFC 2347), over limits. NUL bytes after the last option are
// padding and ignored, as tftp-hpa's tftpd ignores them; anything else after them is refused.
Result<Request> ParseRequest(std::span<const uint8_t> datagram);

struct Ack {
  uint16_t block = 0;
};

struct ErrorPacket {
  ErrorCode code = ErrorCode::kNotDefined;
  std::string message;  // no NUL, at most kMaxErrorMessageBytes

  friend bool operator==(const ErrorPacket&, const ErrorPacket&) = default;
};

struct Data {
  uint16_t block = 0;
  std::span<const uint8_t> payload;  // points into the datagram
};

// InvalidArgument when the datagram is shorter than 2 bytes or the opcode is not 1..6.
Result<Opcode> PeekOpcode(std::span<const uint8_t> datagram);

// Exactly 4 bytes with opcode 4.
Result<Ack> ParseAck(std::span<const uint8_t> datagram);

// Opcode 5, a code and a message. An ERROR ends the transfer whatever it says, so the message is
// read leniently: up to its NUL or the end of the datagram, cut at kMaxErrorMessageBytes.
Result<ErrorPacket> ParseError(std::span<const uint8_t> datagram);

// Opcode 3, a block number and 0..max_payload bytes (the negotiated blksize; RFC 1350: a payload
// shorter than that is the last block).
Result<Data> ParseData(std::span<const uint8_t> datagram, size_t max_payload);

// The option list of an OACK (opcode 6): names lower-cased, values as sent, the same rules as the
// options of a request. For tests and a test client; the server only sends OACKs.
Result<OptionList> ParseOack(std::span<const uint8_t> datagram);

// Encoders clear `out` first, then write the packet.
void EncodeDataHeader(uint16_t block, std::string* out);  // 4 bytes; the caller appends the payload
void EncodeAck(uint16_t block, std::string* out);
// The message is cut at its first NUL and at kMaxErrorMessageBytes, so the packet stays one.
void EncodeError(ErrorCode code, std::string_view message, std::string* out);
// Names and values must not contain NUL (those from Negotiate() never do).
void EncodeOack(const OptionList& options, std::string* out);
// The filename, names and values must not contain NUL. For tests and a test client.
void EncodeRequest(const Request& r, std::string* out);

// --- Option negotiation (RFC 2347-2349, 7440), pure ---

struct ServerLimits {
  uint16_t max_blksize = 1468;  // a DATA packet in one 1500-byte Ethernet frame over IPv4
  uint16_t max_windowsize = 64;
};

struct Negotiated {
  uint16_t blksize = 512;
  uint16_t windowsize = 1;
  int timeout_seconds = 0;       // 0: the client did not ask; the server uses its own default
  bool tsize_requested = false;  // RRQ with tsize: the server answers the real size, when known
  std::optional<uint64_t> tsize_sent;  // WRQ: the size the client announced
  OptionList oack;                     // what goes in the OACK, in request order; empty: no OACK
};

// Decides the transfer parameters from a request's options. Unknown options are ignored (not in
// the OACK, RFC 2347). An accepted option is answered in `oack` with its value written as a plain
// decimal number:
//   blksize     8..65464 (RFC 2348); above limits.max_blksize it is lowered to it, which RFC 2348
//               allows: the OACK may answer any value up to the one the client asked for.
//   timeout     1..255 seconds (RFC 2349), echoed unchanged: the RFC wants the same value back.
//   tsize       a number. RRQ: answered with the placeholder "0" that SetTsize() replaces. WRQ:
//               echoed, and kept in tsize_sent.
//   windowsize  1..65535 (RFC 7440); above limits.max_windowsize it is lowered to it.
// Anything else about a known option — a value out of range or not a decimal number, the same
// option twice — is InvalidArgument, which the server answers with ERROR 8 (RFC 2347).
// Limits outside the RFC ranges are brought into them (max_blksize to 8..65464, max_windowsize to
// at least 1); the configuration is expected to refuse such values before they get here.
Result<Negotiated> Negotiate(const Request& request, const ServerLimits& limits);

// Replaces the value of "tsize" in n->oack with `size` (RFC 2349: the size of the file in octets).
// Does nothing when tsize is not in the OACK.
void SetTsize(Negotiated* n, uint64_t size);

// Leaves option `name` (case-insensitive) out of the OACK, for when the server cannot honour it —
// a tsize for a file whose size is unknown, or for netascii, where the size on the wire is only
// known once the file has been converted. The matching field returns to its RFC 1350 default
// (blksize 512, windowsize 1, timeout 0, tsize_requested false), because a client uses only what
// the OACK confirms. Does nothing when the option is not in the OACK.
void DropOption(Negotiated* n, std::string_view name);

// --- netascii (RFC 764 as RFC 1350 uses it) ---

// Converts a file's bytes for a netascii RRQ: LF -> CR LF, CR -> CR NUL, everything else as is.
//
// Encode() appends to `out` and never clears it: each byte's whole expansion is written at once,
// so the caller keeps one buffer per transfer, cuts blksize-long DATA blocks from its front, and
// leaves what is left over for the next block. That is how an expansion split by a block boundary
// (the CR at the end of block n, its LF at the start of block n+1) gets sent whole: the split is
// the receiver's to join (see NetasciiDecoder), never a reason to change the bytes.
class NetasciiEncoder {
 public:
  void Encode(std::span<const uint8_t> in, std::string* out);
};

// Converts netascii DATA of a WRQ back to a file's bytes: CR LF -> LF, CR NUL -> CR. A CR may be
// the last byte of one block and its LF or NUL the first of the next, so the decoder holds that
// CR until it sees the following byte. A CR followed by anything else is kept with that byte
// (RFC 764 forbids it; being strict here would only fail an upload over one byte).
class NetasciiDecoder {
 public:
  // Appends the decoded bytes of `in` to `out`; a trailing CR is held back.
  void Decode(std::span<const uint8_t> in, std::string* out);
  // At the end of the transfer: appends a CR still held back.
  void Finish(std::string* out);

 private:
  bool pending_cr_ = false;
};

}  // namespace siterelay::tftp
