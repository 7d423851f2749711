// libFuzzer target for the TFTP packet parsers and option negotiation (relay/tftp/packet.h).
//
// The input is one UDP datagram from anyone on the site network. The server peeks at its opcode
// and hands it to the matching parser, then negotiates the options of a request; so beyond never
// crashing, each answer must be one the server can act on safely:
//   - Only the parser for the datagram's opcode ever accepts it; a datagram PeekOpcode() refuses
//     is refused by every parser.
//   - A parsed request is within the limits of limits.h, its option names lower-case, unique and
//     NUL-free; encoding it and parsing the result gives the same request back, in no more bytes.
//   - Negotiate(), with the default, the widest and the narrowest server limits: blksize within
//     8..max and windowsize within 1..max when in the OACK, the RFC 1350 defaults when not;
//     timeout within 1..255; the OACK holds only options the client asked for, once each, in the
//     client's order, with the value of the matching field; it fails only when the client sent a
//     known option. SetTsize() and DropOption() keep the OACK and the fields in agreement.
//   - ACK, DATA, ERROR and OACK parse back from what the encoders make of them; DATA's payload
//     is the rest of the datagram, never more than the block size.
//   - netascii: encoding in two pieces equals encoding at once, and decoding, in blocks of any
//     size, gives the input back.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "relay/tftp/limits.h"
#include "relay/tftp/packet.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace siterelay::tftp;  // NOLINT: a fuzzer of this one module
using siterelay::StatusCode;

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

template <typename T>
void CheckRefused(const siterelay::Result<T>& r) {
  FUZZ_CHECK(!r.ok());
  FUZZ_CHECK(r.status().code() == StatusCode::kInvalidArgument);
  FUZZ_CHECK(!r.status().message().empty());
}

bool IsKnownOption(std::string_view name) {
  return name == "blksize" || name == "timeout" || name == "tsize" || name == "windowsize";
}

void CheckOptionList(const OptionList& options) {
  FUZZ_CHECK(options.size() <= kMaxOptions);
  for (size_t i = 0; i < options.size(); ++i) {
    const auto& [name, value] = options[i];
    FUZZ_CHECK(!name.empty());
    FUZZ_CHECK(name.size() <= kMaxOptionNameBytes);
    FUZZ_CHECK(value.size() <= kMaxOptionValueBytes);
    FUZZ_CHECK(name.find('\0') == std::string::npos);
    FUZZ_CHECK(value.find('\0') == std::string::npos);
    for (char c : name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
    for (size_t j = 0; j < i; ++j) FUZZ_CHECK(options[j].first != name);
  }
}

const std::string* Find(const OptionList& options, std::string_view name) {
  for (const auto& [n, v] : options) {
    if (n == name) return &v;
  }
  return nullptr;
}

// The fields of `n` say what its OACK says, within `limits` brought into the RFC ranges.
void CheckAgreement(const Request& r, const Negotiated& n, uint16_t max_blksize,
                    uint16_t max_windowsize) {
  if (const std::string* v = Find(n.oack, "blksize")) {
    FUZZ_CHECK(n.blksize >= kMinBlksize && n.blksize <= max_blksize);
    FUZZ_CHECK(*v == std::to_string(n.blksize));
  } else {
    FUZZ_CHECK(n.blksize == kDefaultBlksize);
  }
  if (const std::string* v = Find(n.oack, "windowsize")) {
    FUZZ_CHECK(n.windowsize >= 1 && n.windowsize <= max_windowsize);
    FUZZ_CHECK(*v == std::to_string(n.windowsize));
  } else {
    FUZZ_CHECK(n.windowsize == kDefaultWindowsize);
  }
  if (const std::string* v = Find(n.oack, "timeout")) {
    FUZZ_CHECK(n.timeout_seconds >= kMinTimeoutSeconds && n.timeout_seconds <= kMaxTimeoutSeconds);
    FUZZ_CHECK(*v == std::to_string(n.timeout_seconds));
  } else {
    FUZZ_CHECK(n.timeout_seconds == 0);
  }
  if (Find(n.oack, "tsize") != nullptr) {
    FUZZ_CHECK(r.write ? n.tsize_sent.has_value() && !n.tsize_requested : n.tsize_requested);
  } else {
    FUZZ_CHECK(!n.tsize_requested);
  }
  if (!r.write) FUZZ_CHECK(!n.tsize_sent.has_value());
}

void CheckNegotiate(const Request& r, ServerLimits limits) {
  const uint16_t max_blksize = std::clamp(limits.max_blksize, kMinBlksize, kMaxBlksize);
  const uint16_t max_windowsize = std::max(limits.max_windowsize, uint16_t{1});
  auto negotiated = Negotiate(r, limits);
  bool asked_known = std::any_of(r.options.begin(), r.options.end(),
                                 [](const auto& o) { return IsKnownOption(o.first); });
  if (!negotiated.ok()) {
    CheckRefused(negotiated);
    FUZZ_CHECK(asked_known);  // unknown options alone are ignored, never refused
    return;
  }
  Negotiated n = *negotiated;
  // The OACK answers every known option asked for and nothing else, in the client's order.
  size_t next = 0;
  for (const auto& [name, value] : n.oack) {
    FUZZ_CHECK(IsKnownOption(name));
    while (next < r.options.size() && r.options[next].first != name) ++next;
    FUZZ_CHECK(next < r.options.size());
    ++next;
  }
  size_t known = static_cast<size_t>(std::count_if(
      r.options.begin(), r.options.end(), [](const auto& o) { return IsKnownOption(o.first); }));
  FUZZ_CHECK(n.oack.size() == known);
  CheckOptionList(n.oack);
  if (!r.write && Find(n.oack, "tsize") != nullptr) FUZZ_CHECK(*Find(n.oack, "tsize") == "0");
  if (r.write && n.tsize_sent) FUZZ_CHECK(*Find(n.oack, "tsize") == std::to_string(*n.tsize_sent));
  CheckAgreement(r, n, max_blksize, max_windowsize);

  std::string oack;
  EncodeOack(n.oack, &oack);
  auto parsed = ParseOack(Bytes(oack));
  FUZZ_CHECK(parsed.ok());
  FUZZ_CHECK(*parsed == n.oack);

  Negotiated sized = n;
  SetTsize(&sized, 0xfedcba9876543210u);
  if (n.tsize_requested) FUZZ_CHECK(*Find(sized.oack, "tsize") == "18364758544493064720");
  FUZZ_CHECK(sized.oack.size() == n.oack.size());

  for (const auto& [name, value] : n.oack) {
    Negotiated dropped = n;
    DropOption(&dropped, name);
    FUZZ_CHECK(Find(dropped.oack, name) == nullptr);
    FUZZ_CHECK(dropped.oack.size() == n.oack.size() - 1);
    CheckAgreement(r, dropped, max_blksize, max_windowsize);
  }
}

void CheckRequest(std::span<const uint8_t> d, Opcode op) {
  auto r = ParseRequest(d);
  if (!r.ok()) {
    CheckRefused(r);
    return;
  }
  FUZZ_CHECK(d.size() <= kMaxRequestBytes);
  FUZZ_CHECK(r->write == (op == Opcode::kWrq));
  FUZZ_CHECK(!r->filename.empty());
  FUZZ_CHECK(r->filename.size() <= kMaxFilenameBytes);
  FUZZ_CHECK(r->filename.find('\0') == std::string::npos);
  CheckOptionList(r->options);

  std::string encoded;
  EncodeRequest(*r, &encoded);
  FUZZ_CHECK(encoded.size() <= d.size());  // only padding is dropped
  auto again = ParseRequest(Bytes(encoded));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *r);

  CheckNegotiate(*r, ServerLimits{});
  CheckNegotiate(*r, ServerLimits{kMaxBlksize, kMaxWindowsize});
  CheckNegotiate(*r, ServerLimits{kMinBlksize, 1});
}

void CheckData(std::span<const uint8_t> d) {
  for (size_t max : {size_t{kDefaultBlksize}, size_t{1468}, size_t{kMaxBlksize}}) {
    auto data = ParseData(d, max);
    if (d.size() < 4 || d.size() - 4 > max) {
      CheckRefused(data);
      continue;
    }
    FUZZ_CHECK(data.ok());
    FUZZ_CHECK(data->payload.data() == d.data() + 4);
    FUZZ_CHECK(data->payload.size() == d.size() - 4);
    std::string encoded;
    EncodeDataHeader(data->block, &encoded);
    encoded.append(reinterpret_cast<const char*>(data->payload.data()), data->payload.size());
    FUZZ_CHECK(Bytes(encoded).size() == d.size());
    FUZZ_CHECK(std::equal(d.begin(), d.end(), Bytes(encoded).begin()));
  }
}

void CheckAck(std::span<const uint8_t> d) {
  auto ack = ParseAck(d);
  if (d.size() != 4) {
    CheckRefused(ack);
    return;
  }
  FUZZ_CHECK(ack.ok());
  std::string encoded;
  EncodeAck(ack->block, &encoded);
  FUZZ_CHECK(std::equal(d.begin(), d.end(), Bytes(encoded).begin(), Bytes(encoded).end()));
}

void CheckError(std::span<const uint8_t> d) {
  auto e = ParseError(d);
  if (d.size() < 4) {
    CheckRefused(e);
    return;
  }
  FUZZ_CHECK(e.ok());
  FUZZ_CHECK(e->message.size() <= kMaxErrorMessageBytes);
  FUZZ_CHECK(e->message.find('\0') == std::string::npos);
  std::string encoded;
  EncodeError(e->code, e->message, &encoded);
  auto again = ParseError(Bytes(encoded));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *e);
}

void CheckOack(std::span<const uint8_t> d) {
  auto options = ParseOack(d);
  if (!options.ok()) {
    CheckRefused(options);
    return;
  }
  CheckOptionList(*options);
  std::string encoded;
  EncodeOack(*options, &encoded);
  FUZZ_CHECK(encoded.size() <= d.size());
  auto again = ParseOack(Bytes(encoded));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *options);
}

void CheckNetascii(std::span<const uint8_t> d) {
  std::string whole;
  NetasciiEncoder().Encode(d, &whole);
  size_t expansions = static_cast<size_t>(
      std::count_if(d.begin(), d.end(), [](uint8_t b) { return b == '\n' || b == '\r'; }));
  FUZZ_CHECK(whole.size() == d.size() + expansions);

  size_t cut = d.empty() ? 0 : d[0] % (d.size() + 1);
  NetasciiEncoder encoder;
  std::string pieces;
  encoder.Encode(d.first(cut), &pieces);
  encoder.Encode(d.subspan(cut), &pieces);
  FUZZ_CHECK(pieces == whole);

  size_t block = d.size() < 2 ? 1 : d[1] % 16 + 1;
  NetasciiDecoder decoder;
  std::string decoded;
  std::span<const uint8_t> wire = Bytes(whole);
  for (size_t at = 0; at < wire.size(); at += block) {
    decoder.Decode(wire.subspan(at, std::min(block, wire.size() - at)), &decoded);
  }
  decoder.Finish(&decoded);
  FUZZ_CHECK(std::equal(d.begin(), d.end(), Bytes(decoded).begin(), Bytes(decoded).end()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> d(data, size);
  auto op = PeekOpcode(d);
  // Whatever the opcode, only its own parser may accept the datagram.
  bool request = op.ok() && (*op == Opcode::kRrq || *op == Opcode::kWrq);
  if (!request) CheckRefused(ParseRequest(d));
  if (!op.ok() || *op != Opcode::kAck) CheckRefused(ParseAck(d));
  if (!op.ok() || *op != Opcode::kError) CheckRefused(ParseError(d));
  if (!op.ok() || *op != Opcode::kData) CheckRefused(ParseData(d, kMaxBlksize));
  if (!op.ok() || *op != Opcode::kOack) CheckRefused(ParseOack(d));

  if (op.ok()) {
    switch (*op) {
      case Opcode::kRrq:
      case Opcode::kWrq:
        CheckRequest(d, *op);
        break;
      case Opcode::kData:
        CheckData(d);
        break;
      case Opcode::kAck:
        CheckAck(d);
        break;
      case Opcode::kError:
        CheckError(d);
        break;
      case Opcode::kOack:
        CheckOack(d);
        break;
    }
  } else {
    CheckRefused(op);
    if (size >= 2) {
      unsigned value = (static_cast<unsigned>(data[0]) << 8) | data[1];
      FUZZ_CHECK(value == 0 || value > 6);
    }
  }
  CheckNetascii(d);
  return 0;
}
