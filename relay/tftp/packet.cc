#include "relay/tftp/packet.h"

#include <algorithm>
#include <cassert>

#include "relay/base/strings.h"
#include "relay/tftp/limits.h"

namespace siterelay::tftp {
namespace {

std::string_view AsView(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// RFC 1350 section 5: every field of two bytes is in network byte order.
uint16_t ReadU16(std::string_view bytes) {
  return static_cast<uint16_t>((static_cast<unsigned>(static_cast<uint8_t>(bytes[0])) << 8) |
                               static_cast<uint8_t>(bytes[1]));
}

void AppendU16(uint16_t value, std::string* out) {
  out->push_back(static_cast<char>(value >> 8));
  out->push_back(static_cast<char>(value & 0xff));
}

void AppendString(std::string_view s, std::string* out) {
  assert(s.find('\0') == std::string_view::npos && "a NUL would end the field early");
  out->append(s);
  out->push_back('\0');
}

// A peer's bytes for a log message: quoted, and cut so one datagram cannot make a long line.
std::string Shown(std::string_view s) {
  constexpr size_t kShownBytes = 32;
  if (s.size() <= kShownBytes) return Quote(s);
  return Quote(s.substr(0, kShownBytes)) + "...";
}

// Splits off one NUL-terminated field. False when there is no NUL left.
bool NextField(std::string_view& rest, std::string_view* field) {
  size_t nul = rest.find('\0');
  if (nul == std::string_view::npos) return false;
  *field = rest.substr(0, nul);
  rest.remove_prefix(nul + 1);
  return true;
}

// The option list of an RRQ, WRQ or OACK (RFC 2347): name NUL value NUL, repeated.
Status ParseOptions(std::string_view rest, OptionList* out) {
  while (!rest.empty()) {
    std::string_view name;
    if (!NextField(rest, &name)) return Status::InvalidArgument("option name without NUL");
    if (name.empty()) {
      // An empty name can only be padding: tftp-hpa's tftpd stops reading at the first empty
      // string, and clients that pad their request with NULs work with it, so they work here.
      if (rest.find_first_not_of('\0') != std::string_view::npos) {
        return Status::InvalidArgument("empty option name");
      }
      break;
    }
    if (name.size() > kMaxOptionNameBytes) {
      return Status::InvalidArgument("option name too long: " + Shown(name));
    }
    std::string_view value;
    if (rest.empty()) return Status::InvalidArgument("option without a value: " + Shown(name));
    if (!NextField(rest, &value)) {
      return Status::InvalidArgument("option value without NUL: " + Shown(name));
    }
    if (value.size() > kMaxOptionValueBytes) {
      return Status::InvalidArgument("option value too long: " + Shown(name));
    }
    if (out->size() >= kMaxOptions) return Status::InvalidArgument("too many options");
    // RFC 2347: option names are case-insensitive, so "BLKSIZE" and "blksize" are one option
    // twice, and which of the two values counts would be a guess.
    std::string lower = AsciiToLower(name);
    for (const auto& option : *out) {
      if (option.first == lower) return Status::InvalidArgument("duplicate option " + Shown(name));
    }
    out->emplace_back(std::move(lower), std::string(value));
  }
  return Status::Ok();
}

// A decimal number as the option RFCs write them: ASCII digits only, no sign, no spaces.
std::optional<uint64_t> ParseNumber(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    auto digit = static_cast<uint64_t>(c - '0');
    if (n > (UINT64_MAX - digit) / 10) return std::nullopt;
    n = n * 10 + digit;
  }
  return n;
}

// The value of a numeric option within [min, max], or InvalidArgument naming the option.
Result<uint64_t> NumberInRange(std::string_view name, std::string_view value, uint64_t min,
                               uint64_t max) {
  std::optional<uint64_t> n = ParseNumber(value);
  if (!n) return Status::InvalidArgument(std::string(name) + " is not a number: " + Shown(value));
  if (*n < min || *n > max) {
    return Status::InvalidArgument(std::string(name) + " " + std::to_string(*n) + " is outside " +
                                   std::to_string(min) + ".." + std::to_string(max));
  }
  return *n;
}

}  // namespace

std::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kOctet:
      return "octet";
    case Mode::kNetascii:
      return "netascii";
  }
  return "octet";
}

Result<Opcode> PeekOpcode(std::span<const uint8_t> datagram) {
  if (datagram.size() < 2) return Status::InvalidArgument("datagram shorter than an opcode");
  uint16_t op = ReadU16(AsView(datagram));
  if (op < static_cast<uint16_t>(Opcode::kRrq) || op > static_cast<uint16_t>(Opcode::kOack)) {
    return Status::InvalidArgument("unknown opcode " + std::to_string(op));
  }
  return static_cast<Opcode>(op);
}

Result<Request> ParseRequest(std::span<const uint8_t> datagram) {
  if (datagram.size() > kMaxRequestBytes) return Status::InvalidArgument("request too long");
  SR_ASSIGN_OR_RETURN(Opcode op, PeekOpcode(datagram));
  if (op != Opcode::kRrq && op != Opcode::kWrq) {
    return Status::InvalidArgument("not a read or write request");
  }
  Request r;
  r.write = op == Opcode::kWrq;
  std::string_view rest = AsView(datagram).substr(2);

  std::string_view filename;
  if (!NextField(rest, &filename)) return Status::InvalidArgument("filename without NUL");
  if (filename.empty()) return Status::InvalidArgument("empty filename");
  if (filename.size() > kMaxFilenameBytes) return Status::InvalidArgument("filename too long");
  r.filename = std::string(filename);

  std::string_view mode;
  if (!NextField(rest, &mode)) return Status::InvalidArgument("mode without NUL");
  // RFC 1350: the mode is "in any combination of upper and lower case".
  if (EqualsIgnoreCase(mode, "octet")) {
    r.mode = Mode::kOctet;
  } else if (EqualsIgnoreCase(mode, "netascii")) {
    r.mode = Mode::kNetascii;
  } else if (EqualsIgnoreCase(mode, "mail")) {
    return Status::InvalidArgument("mail mode is obsolete");
  } else {
    return Status::InvalidArgument("unknown mode " + Shown(mode));
  }

  SR_RETURN_IF_ERROR(ParseOptions(rest, &r.options));
  return r;
}

Result<Ack> ParseAck(std::span<const uint8_t> datagram) {
  if (datagram.size() != 4) return Status::InvalidArgument("ACK is not 4 bytes");
  std::string_view bytes = AsView(datagram);
  if (ReadU16(bytes) != static_cast<uint16_t>(Opcode::kAck)) {
    return Status::InvalidArgument("not an ACK");
  }
  return Ack{ReadU16(bytes.substr(2))};
}

Result<ErrorPacket> ParseError(std::span<const uint8_t> datagram) {
  if (datagram.size() < 4) return Status::InvalidArgument("ERROR shorter than its header");
  std::string_view bytes = AsView(datagram);
  if (ReadU16(bytes) != static_cast<uint16_t>(Opcode::kError)) {
    return Status::InvalidArgument("not an ERROR");
  }
  ErrorPacket e;
  e.code = static_cast<ErrorCode>(ReadU16(bytes.substr(2)));
  std::string_view message = bytes.substr(4);
  message = message.substr(0, message.find('\0'));  // npos: no NUL, the whole rest
  e.message = std::string(message.substr(0, kMaxErrorMessageBytes));
  return e;
}

Result<Data> ParseData(std::span<const uint8_t> datagram, size_t max_payload) {
  if (datagram.size() < 4) return Status::InvalidArgument("DATA shorter than its header");
  std::string_view bytes = AsView(datagram);
  if (ReadU16(bytes) != static_cast<uint16_t>(Opcode::kData)) {
    return Status::InvalidArgument("not DATA");
  }
  if (datagram.size() - 4 > max_payload) {
    return Status::InvalidArgument("DATA of " + std::to_string(datagram.size() - 4) +
                                   " bytes exceeds the block size " + std::to_string(max_payload));
  }
  return Data{ReadU16(bytes.substr(2)), datagram.subspan(4)};
}

Result<OptionList> ParseOack(std::span<const uint8_t> datagram) {
  SR_ASSIGN_OR_RETURN(Opcode op, PeekOpcode(datagram));
  if (op != Opcode::kOack) return Status::InvalidArgument("not an OACK");
  OptionList options;
  SR_RETURN_IF_ERROR(ParseOptions(AsView(datagram).substr(2), &options));
  return options;
}

void EncodeDataHeader(uint16_t block, std::string* out) {
  out->clear();
  AppendU16(static_cast<uint16_t>(Opcode::kData), out);
  AppendU16(block, out);
}

void EncodeAck(uint16_t block, std::string* out) {
  out->clear();
  AppendU16(static_cast<uint16_t>(Opcode::kAck), out);
  AppendU16(block, out);
}

void EncodeError(ErrorCode code, std::string_view message, std::string* out) {
  out->clear();
  AppendU16(static_cast<uint16_t>(Opcode::kError), out);
  AppendU16(static_cast<uint16_t>(code), out);
  message = message.substr(0, message.find('\0'));
  AppendString(message.substr(0, kMaxErrorMessageBytes), out);
}

void EncodeOack(const OptionList& options, std::string* out) {
  out->clear();
  AppendU16(static_cast<uint16_t>(Opcode::kOack), out);
  for (const auto& [name, value] : options) {
    AppendString(name, out);
    AppendString(value, out);
  }
}

void EncodeRequest(const Request& r, std::string* out) {
  out->clear();
  AppendU16(static_cast<uint16_t>(r.write ? Opcode::kWrq : Opcode::kRrq), out);
  AppendString(r.filename, out);
  AppendString(ModeName(r.mode), out);
  for (const auto& [name, value] : r.options) {
    AppendString(name, out);
    AppendString(value, out);
  }
}

Result<Negotiated> Negotiate(const Request& request, const ServerLimits& limits) {
  const uint16_t max_blksize = std::clamp(limits.max_blksize, kMinBlksize, kMaxBlksize);
  const uint16_t max_windowsize = std::max(limits.max_windowsize, kDefaultWindowsize);
  Negotiated n;
  bool seen_blksize = false;
  bool seen_timeout = false;
  bool seen_tsize = false;
  bool seen_windowsize = false;
  auto first_time = [](bool* seen, std::string_view name) -> Status {
    if (*seen) return Status::InvalidArgument("duplicate option " + std::string(name));
    *seen = true;
    return Status::Ok();
  };

  for (const auto& [raw_name, value] : request.options) {
    // ParseRequest() lower-cases names already; a Request built by hand may not have.
    std::string name = AsciiToLower(raw_name);
    if (name == "blksize") {
      SR_RETURN_IF_ERROR(first_time(&seen_blksize, name));
      SR_ASSIGN_OR_RETURN(uint64_t v, NumberInRange(name, value, kMinBlksize, kMaxBlksize));
      n.blksize = std::min(static_cast<uint16_t>(v), max_blksize);
      n.oack.emplace_back(name, std::to_string(n.blksize));
    } else if (name == "timeout") {
      SR_RETURN_IF_ERROR(first_time(&seen_timeout, name));
      SR_ASSIGN_OR_RETURN(uint64_t v,
                          NumberInRange(name, value, kMinTimeoutSeconds, kMaxTimeoutSeconds));
      n.timeout_seconds = static_cast<int>(v);
      n.oack.emplace_back(name, std::to_string(v));
    } else if (name == "tsize") {
      SR_RETURN_IF_ERROR(first_time(&seen_tsize, name));
      SR_ASSIGN_OR_RETURN(uint64_t v, NumberInRange(name, value, 0, UINT64_MAX));
      if (request.write) {
        // RFC 2349: on a WRQ the client announces the size, and the OACK echoes it.
        n.tsize_sent = v;
        n.oack.emplace_back(name, std::to_string(v));
      } else {
        // RFC 2349: an RRQ sends 0 and the OACK carries the file's size, which only the server
        // knows; SetTsize() fills it in, DropOption() takes it out. A client that sends another
        // number on an RRQ gets the same answer: the number means nothing there.
        n.tsize_requested = true;
        n.oack.emplace_back(name, "0");
      }
    } else if (name == "windowsize") {
      SR_RETURN_IF_ERROR(first_time(&seen_windowsize, name));
      SR_ASSIGN_OR_RETURN(uint64_t v, NumberInRange(name, value, 1, kMaxWindowsize));
      // RFC 7440: the server may answer a smaller window than asked for.
      n.windowsize = std::min(static_cast<uint16_t>(v), max_windowsize);
      n.oack.emplace_back(name, std::to_string(n.windowsize));
    }
    // RFC 2347: an option the server does not know is left out of the OACK, not refused.
  }
  return n;
}

void SetTsize(Negotiated* n, uint64_t size) {
  for (auto& [name, value] : n->oack) {
    if (name == "tsize") value = std::to_string(size);
  }
}

void DropOption(Negotiated* n, std::string_view name) {
  auto matches = [&](const auto& option) { return EqualsIgnoreCase(option.first, name); };
  if (std::find_if(n->oack.begin(), n->oack.end(), matches) == n->oack.end()) return;
  std::erase_if(n->oack, matches);
  if (EqualsIgnoreCase(name, "blksize")) n->blksize = kDefaultBlksize;
  if (EqualsIgnoreCase(name, "windowsize")) n->windowsize = kDefaultWindowsize;
  if (EqualsIgnoreCase(name, "timeout")) n->timeout_seconds = 0;
  if (EqualsIgnoreCase(name, "tsize")) n->tsize_requested = false;
}

void NetasciiEncoder::Encode(std::span<const uint8_t> in, std::string* out) {
  out->reserve(out->size() + in.size());
  for (uint8_t b : in) {
    if (b == '\n') {
      out->append("\r\n", 2);
    } else if (b == '\r') {
      out->append("\r\0", 2);
    } else {
      out->push_back(static_cast<char>(b));
    }
  }
}

void NetasciiDecoder::Decode(std::span<const uint8_t> in, std::string* out) {
  out->reserve(out->size() + in.size());
  for (uint8_t b : in) {
    if (pending_cr_) {
      pending_cr_ = false;
      if (b == '\n') {
        out->push_back('\n');
        continue;
      }
      if (b == '\0') {
        out->push_back('\r');
        continue;
      }
      out->push_back('\r');  // a stray CR: keep it, then treat `b` as any other byte
    }
    if (b == '\r') {
      pending_cr_ = true;
    } else {
      out->push_back(static_cast<char>(b));
    }
  }
}

void NetasciiDecoder::Finish(std::string* out) {
  if (pending_cr_) out->push_back('\r');
  pending_cr_ = false;
}

}  // namespace siterelay::tftp
