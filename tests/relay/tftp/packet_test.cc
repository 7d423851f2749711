#include "relay/tftp/packet.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "relay/tftp/limits.h"

namespace siterelay::tftp {
namespace {

using namespace std::string_literals;  // "...\0..."s keeps the NULs

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// An RRQ (or WRQ) datagram with the given fields, the options as name, value, name, value...
std::string RequestBytes(std::string_view filename, std::string_view mode,
                         std::initializer_list<std::string_view> options = {}, bool write = false) {
  std::string d = write ? "\0\2"s : "\0\1"s;
  d += filename;
  d += '\0';
  d += mode;
  d += '\0';
  for (std::string_view s : options) {
    d += s;
    d += '\0';
  }
  return d;
}

Request Rrq(OptionList options, bool write = false) {
  Request r;
  r.write = write;
  r.filename = "0004f282e824.cfg";
  r.options = std::move(options);
  return r;
}

// --- PeekOpcode ---

TEST(PeekOpcodeTest, ReadsEveryOpcodeInNetworkByteOrder) {
  EXPECT_EQ(*PeekOpcode(Bytes("\0\1"s)), Opcode::kRrq);
  EXPECT_EQ(*PeekOpcode(Bytes("\0\2xyz"s)), Opcode::kWrq);
  EXPECT_EQ(*PeekOpcode(Bytes("\0\3"s)), Opcode::kData);
  EXPECT_EQ(*PeekOpcode(Bytes("\0\4"s)), Opcode::kAck);
  EXPECT_EQ(*PeekOpcode(Bytes("\0\5"s)), Opcode::kError);
  EXPECT_EQ(*PeekOpcode(Bytes("\0\6"s)), Opcode::kOack);
}

TEST(PeekOpcodeTest, RefusesDatagramsShorterThanAnOpcode) {
  EXPECT_EQ(PeekOpcode(Bytes("")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PeekOpcode(Bytes("\0"s)).status().code(), StatusCode::kInvalidArgument);
}

TEST(PeekOpcodeTest, RefusesUnknownOpcodes) {
  EXPECT_EQ(PeekOpcode(Bytes("\0\0"s)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PeekOpcode(Bytes("\0\7"s)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PeekOpcode(Bytes("\1\1"s)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PeekOpcode(Bytes("\xff\xff"s)).status().message(), "unknown opcode 65535");
}

// --- ParseRequest ---

TEST(ParseRequestTest, ParsesAPhoneRrq) {
  auto r = ParseRequest(Bytes(RequestBytes("0004f282e824.cfg", "octet")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->write);
  EXPECT_EQ(r->filename, "0004f282e824.cfg");
  EXPECT_EQ(r->mode, Mode::kOctet);
  EXPECT_TRUE(r->options.empty());
}

TEST(ParseRequestTest, ParsesAWrqWithOptionsInOrderNamesLowerCasedValuesAsSent) {
  auto r = ParseRequest(Bytes(RequestBytes(
      "logs/0004f282e824-app.log", "octet",
      {"TSIZE", "1234", "BlkSize", "1468", "x-Vendor", "Some Value"}, /*write=*/true)));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->write);
  EXPECT_EQ(r->filename, "logs/0004f282e824-app.log");
  EXPECT_EQ(r->options,
            (OptionList{{"tsize", "1234"}, {"blksize", "1468"}, {"x-vendor", "Some Value"}}));
}

TEST(ParseRequestTest, KeepsTheFilenameAsSent) {
  // Normalising is FileService's job; the parser must not hide what the phone asked for.
  auto r = ParseRequest(Bytes(RequestBytes("/a//../B.CFG", "octet")));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->filename, "/a//../B.CFG");
}

TEST(ParseRequestTest, ModesAreCaseInsensitive) {
  EXPECT_EQ(ParseRequest(Bytes(RequestBytes("f", "OCTET")))->mode, Mode::kOctet);
  EXPECT_EQ(ParseRequest(Bytes(RequestBytes("f", "Octet")))->mode, Mode::kOctet);
  EXPECT_EQ(ParseRequest(Bytes(RequestBytes("f", "NetAscii")))->mode, Mode::kNetascii);
  EXPECT_EQ(ParseRequest(Bytes(RequestBytes("f", "netascii")))->mode, Mode::kNetascii);
}

TEST(ParseRequestTest, RefusesObsoleteMailMode) {
  auto r = ParseRequest(Bytes(RequestBytes("f", "MAIL")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "mail mode is obsolete");
}

TEST(ParseRequestTest, RefusesUnknownModeAndQuotesIt) {
  auto r = ParseRequest(Bytes(RequestBytes("f", "binary")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "unknown mode \"binary\"");
}

TEST(ParseRequestTest, RefusesOptionNamesThatDifferOnlyInCase) {
  auto r = ParseRequest(Bytes(RequestBytes("f", "octet", {"blksize", "512", "BLKSIZE", "1024"})));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "duplicate option \"BLKSIZE\"");
}

TEST(ParseRequestTest, IgnoresNulPaddingAfterTheLastField) {
  auto r = ParseRequest(Bytes(RequestBytes("f", "octet") + std::string(20, '\0')));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->options.empty());
  r = ParseRequest(Bytes(RequestBytes("f", "octet", {"blksize", "1468"}) + "\0\0"s));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->options, (OptionList{{"blksize", "1468"}}));
}

TEST(ParseRequestTest, AcceptsAnEmptyOptionValueAndLeavesItToNegotiate) {
  auto r = ParseRequest(Bytes(RequestBytes("f", "octet", {"x", ""})));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->options, (OptionList{{"x", ""}}));
}

struct BadRequest {
  std::string bytes;
  std::string_view reason;
};

class ParseRequestErrorTest : public ::testing::TestWithParam<BadRequest> {};

TEST_P(ParseRequestErrorTest, RefusesWithAReason) {
  auto r = ParseRequest(Bytes(GetParam().bytes));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), GetParam().reason);
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, ParseRequestErrorTest,
    ::testing::Values(BadRequest{"", "datagram shorter than an opcode"},
                      BadRequest{"\0"s, "datagram shorter than an opcode"},
                      BadRequest{"\0\x09g\0octet\0"s, "unknown opcode 9"},
                      BadRequest{"\0\3f\0octet\0"s, "not a read or write request"},
                      BadRequest{"\0\6f\0octet\0"s, "not a read or write request"},
                      BadRequest{"\0\1"s, "filename without NUL"},
                      BadRequest{"\0\1file.cfg"s, "filename without NUL"},
                      BadRequest{"\0\1\0octet\0"s, "empty filename"},
                      BadRequest{"\0\1f\0"s, "mode without NUL"},
                      BadRequest{"\0\1f\0octet"s, "mode without NUL"},
                      BadRequest{"\0\1f\0\0"s, "unknown mode \"\""},
                      BadRequest{"\0\1f\0octet\0blksize"s, "option name without NUL"},
                      BadRequest{"\0\1f\0octet\0blksize\0"s, "option without a value: \"blksize\""},
                      BadRequest{"\0\1f\0octet\0blksize\0"s + "512",
                                 "option value without NUL: \"blksize\""},
                      BadRequest{"\0\1f\0octet\0\0blksize\0"s + "512\0"s, "empty option name"},
                      BadRequest{"\0\1f\0octet\0\0\0x"s, "empty option name"},
                      BadRequest{"\0\1f\0octet\0tsize\0"s + "0\0TSize\0"s + "0\0"s,
                                 "duplicate option \"TSize\""}),
    [](const ::testing::TestParamInfo<BadRequest>& p) { return "Case" + std::to_string(p.index); });

// Limits at N-1, N and N+1 (STYLE.md).

TEST(ParseRequestLimitTest, RequestOfMaxBytesIsAcceptedOneMoreIsRefused) {
  std::string base = RequestBytes("f", "octet");
  for (size_t size : {kMaxRequestBytes - 1, kMaxRequestBytes}) {
    std::string d = base + std::string(size - base.size(), '\0');  // NUL padding
    ASSERT_EQ(d.size(), size);
    EXPECT_TRUE(ParseRequest(Bytes(d)).ok()) << size;
  }
  std::string over = base + std::string(kMaxRequestBytes + 1 - base.size(), '\0');
  EXPECT_EQ(ParseRequest(Bytes(over)).status().message(), "request too long");
}

TEST(ParseRequestLimitTest, RequestOverRfc2347s512OctetsIsAccepted) {
  // Two long options past 512 bytes: a miscounting client is served, not refused.
  std::string d = RequestBytes(std::string(400, 'f'), "octet",
                               {"x-a", std::string(60, 'v'), "x-b", std::string(60, 'v')});
  ASSERT_GT(d.size(), 512u);
  EXPECT_TRUE(ParseRequest(Bytes(d)).ok());
}

TEST(ParseRequestLimitTest, FilenameOfMaxBytesIsAcceptedOneMoreIsRefused) {
  for (size_t n : {kMaxFilenameBytes - 1, kMaxFilenameBytes}) {
    auto r = ParseRequest(Bytes(RequestBytes(std::string(n, 'a'), "octet")));
    ASSERT_TRUE(r.ok()) << n;
    EXPECT_EQ(r->filename.size(), n);
  }
  auto r = ParseRequest(Bytes(RequestBytes(std::string(kMaxFilenameBytes + 1, 'a'), "octet")));
  EXPECT_EQ(r.status().message(), "filename too long");
}

TEST(ParseRequestLimitTest, MaxOptionsAreAcceptedOneMoreIsRefused) {
  auto with_options = [](size_t count) {
    std::string d = RequestBytes("f", "octet");
    for (size_t i = 0; i < count; ++i) d += "o" + std::to_string(i) + '\0' + "1" + '\0';
    return d;
  };
  for (size_t n : {kMaxOptions - 1, kMaxOptions}) {
    auto r = ParseRequest(Bytes(with_options(n)));
    ASSERT_TRUE(r.ok()) << n;
    EXPECT_EQ(r->options.size(), n);
  }
  EXPECT_EQ(ParseRequest(Bytes(with_options(kMaxOptions + 1))).status().message(),
            "too many options");
}

TEST(ParseRequestLimitTest, OptionNameOfMaxBytesIsAcceptedOneMoreIsRefused) {
  for (size_t n : {kMaxOptionNameBytes - 1, kMaxOptionNameBytes}) {
    auto r = ParseRequest(Bytes(RequestBytes("f", "octet", {std::string(n, 'n'), "1"})));
    ASSERT_TRUE(r.ok()) << n;
    EXPECT_EQ(r->options[0].first.size(), n);
  }
  auto r = ParseRequest(
      Bytes(RequestBytes("f", "octet", {std::string(kMaxOptionNameBytes + 1, 'n'), "1"})));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().message().starts_with("option name too long"));
}

TEST(ParseRequestLimitTest, OptionValueOfMaxBytesIsAcceptedOneMoreIsRefused) {
  for (size_t n : {kMaxOptionValueBytes - 1, kMaxOptionValueBytes}) {
    auto r = ParseRequest(Bytes(RequestBytes("f", "octet", {"x", std::string(n, 'v')})));
    ASSERT_TRUE(r.ok()) << n;
    EXPECT_EQ(r->options[0].second.size(), n);
  }
  auto r = ParseRequest(
      Bytes(RequestBytes("f", "octet", {"x", std::string(kMaxOptionValueBytes + 1, 'v')})));
  EXPECT_EQ(r.status().message(), "option value too long: \"x\"");
}

TEST(EncodeRequestTest, WritesTheWireFormat) {
  Request r;
  r.write = true;
  r.filename = "a.cfg";
  r.mode = Mode::kNetascii;
  r.options = {{"blksize", "1468"}};
  std::string out = "left over";
  EncodeRequest(r, &out);
  EXPECT_EQ(out, "\0\2a.cfg\0netascii\0blksize\0"s + "1468\0"s);
}

TEST(EncodeRequestTest, ParseGivesBackWhatWasEncoded) {
  Request r;
  r.filename = "firmware/3111-44500-001.sip.ld";
  r.mode = Mode::kNetascii;
  r.options = {{"tsize", "0"}, {"blksize", "1468"}, {"windowsize", "8"}, {"x", ""}};
  for (bool write : {false, true}) {
    r.write = write;
    std::string d;
    EncodeRequest(r, &d);
    auto parsed = ParseRequest(Bytes(d));
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(*parsed, r);
  }
}

// --- ACK ---

TEST(AckTest, EncodesAndParsesTheBlockNumber) {
  std::string out = "left over";
  EncodeAck(0x1234, &out);
  EXPECT_EQ(out, "\0\4\x12\x34"s);
  auto ack = ParseAck(Bytes(out));
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->block, 0x1234);
  EncodeAck(65535, &out);
  EXPECT_EQ(ParseAck(Bytes(out))->block, 65535);
}

TEST(AckTest, RefusesAnythingButExactlyFourBytesWithOpcode4) {
  EXPECT_EQ(ParseAck(Bytes("\0\4\0"s)).status().message(), "ACK is not 4 bytes");
  EXPECT_EQ(ParseAck(Bytes("\0\4\0\1\0"s)).status().message(), "ACK is not 4 bytes");
  EXPECT_EQ(ParseAck(Bytes("\0\3\0\1"s)).status().message(), "not an ACK");
}

// --- ERROR ---

TEST(ErrorPacketTest, EncodesTheWireFormat) {
  std::string out = "left over";
  EncodeError(ErrorCode::kFileNotFound, "File not found", &out);
  EXPECT_EQ(out, "\0\5\0\1File not found\0"s);
  EncodeError(ErrorCode::kOptionRefused, "", &out);
  EXPECT_EQ(out, "\0\5\0\x08\0"s);
}

TEST(ErrorPacketTest, ParseGivesBackWhatWasEncoded) {
  for (ErrorCode code :
       {ErrorCode::kNotDefined, ErrorCode::kAccessViolation, ErrorCode::kDiskFull,
        ErrorCode::kIllegalOperation, ErrorCode::kUnknownTid, ErrorCode::kFileExists,
        ErrorCode::kNoSuchUser, ErrorCode::kOptionRefused}) {
    std::string out;
    EncodeError(code, "transfer cancelled", &out);
    auto e = ParseError(Bytes(out));
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(*e, (ErrorPacket{code, "transfer cancelled"}));
  }
}

TEST(ErrorPacketTest, KeepsACodeOutsideTheRfcList) {
  auto e = ParseError(Bytes("\0\5\0\x63oops\0"s));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(static_cast<uint16_t>(e->code), 99);
  EXPECT_EQ(e->message, "oops");
}

TEST(ErrorPacketTest, ReadsAMessageWithoutItsNulAndStopsAtTheFirstNul) {
  EXPECT_EQ(ParseError(Bytes("\0\5\0\0no terminator"s))->message, "no terminator");
  EXPECT_EQ(ParseError(Bytes("\0\5\0\0one\0two\0"s))->message, "one");
  EXPECT_EQ(ParseError(Bytes("\0\5\0\0"s))->message, "");
}

TEST(ErrorPacketTest, RefusesShortDatagramsAndOtherOpcodes) {
  EXPECT_EQ(ParseError(Bytes("\0\5\0"s)).status().message(), "ERROR shorter than its header");
  EXPECT_EQ(ParseError(Bytes("\0\4\0\1"s)).status().message(), "not an ERROR");
}

TEST(ErrorPacketLimitTest, MessagesOfMaxBytesAreKeptLongerOnesAreCut) {
  for (size_t n : {kMaxErrorMessageBytes - 1, kMaxErrorMessageBytes, kMaxErrorMessageBytes + 1}) {
    std::string message(n, 'm');
    auto e = ParseError(Bytes("\0\5\0\0"s + message + "\0"s));
    ASSERT_TRUE(e.ok()) << n;
    EXPECT_EQ(e->message.size(), std::min(n, kMaxErrorMessageBytes)) << n;

    std::string out;
    EncodeError(ErrorCode::kNotDefined, message, &out);
    EXPECT_EQ(out.size(), 4 + std::min(n, kMaxErrorMessageBytes) + 1) << n;
  }
}

TEST(ErrorPacketTest, EncodeCutsTheMessageAtANulSoThePacketStaysOne) {
  std::string out;
  EncodeError(ErrorCode::kNotDefined, "before\0after"s, &out);
  EXPECT_EQ(out, "\0\5\0\0before\0"s);
}

// --- DATA ---

TEST(DataTest, PayloadPointsIntoTheDatagram) {
  std::string d = "\0\3\0\7hello"s;
  auto data = ParseData(Bytes(d), 512);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->block, 7);
  EXPECT_EQ(data->payload.data(), reinterpret_cast<const uint8_t*>(d.data()) + 4);
  EXPECT_EQ(data->payload.size(), 5u);
}

TEST(DataTest, AcceptsAnEmptyLastBlock) {
  auto data = ParseData(Bytes("\0\3\1\0"s), 512);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->block, 256);
  EXPECT_TRUE(data->payload.empty());
}

TEST(DataTest, PayloadUpToMaxIsAcceptedOneMoreIsRefused) {
  for (size_t n : {size_t{511}, size_t{512}}) {
    EXPECT_TRUE(ParseData(Bytes("\0\3\0\1"s + std::string(n, 'x')), 512).ok()) << n;
  }
  EXPECT_EQ(ParseData(Bytes("\0\3\0\1"s + std::string(513, 'x')), 512).status().message(),
            "DATA of 513 bytes exceeds the block size 512");
}

TEST(DataTest, RefusesShortDatagramsAndOtherOpcodes) {
  EXPECT_EQ(ParseData(Bytes("\0\3\0"s), 512).status().message(), "DATA shorter than its header");
  EXPECT_EQ(ParseData(Bytes("\0\4\0\1"s), 512).status().message(), "not DATA");
}

TEST(DataTest, HeaderPlusPayloadParsesBack) {
  std::string out = "left over";
  EncodeDataHeader(0xbeef, &out);
  EXPECT_EQ(out, "\0\3\xbe\xef"s);
  out += "payload";
  auto data = ParseData(Bytes(out), 512);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->block, 0xbeef);
  EXPECT_EQ(std::string(data->payload.begin(), data->payload.end()), "payload");
}

// --- OACK ---

TEST(OackTest, EncodesTheWireFormat) {
  std::string out = "left over";
  EncodeOack({{"blksize", "1468"}, {"tsize", "12345"}}, &out);
  EXPECT_EQ(out, "\0\6blksize\0"s + "1468\0tsize\0"s + "12345\0"s);
  EncodeOack({}, &out);
  EXPECT_EQ(out, "\0\6"s);
}

TEST(OackTest, ParseGivesBackWhatWasEncoded) {
  OptionList options = {{"timeout", "3"}, {"blksize", "1468"}, {"windowsize", "16"}};
  std::string out;
  EncodeOack(options, &out);
  auto parsed = ParseOack(Bytes(out));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, options);
}

TEST(OackTest, RefusesOtherOpcodesAndMalformedOptions) {
  EXPECT_EQ(ParseOack(Bytes("\0\4\0\0"s)).status().message(), "not an OACK");
  EXPECT_EQ(ParseOack(Bytes("\0\6blksize\0"s)).status().message(),
            "option without a value: \"blksize\"");
}

// --- Negotiate ---

TEST(NegotiateTest, NoOptionsMeansRfc1350DefaultsAndNoOack) {
  auto n = Negotiate(Rrq({}), ServerLimits{});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->blksize, 512);
  EXPECT_EQ(n->windowsize, 1);
  EXPECT_EQ(n->timeout_seconds, 0);
  EXPECT_FALSE(n->tsize_requested);
  EXPECT_FALSE(n->tsize_sent.has_value());
  EXPECT_TRUE(n->oack.empty());
}

TEST(NegotiateTest, AnswersInRequestOrderAndLeavesUnknownOptionsOut) {
  auto n = Negotiate(Rrq({{"multicast", ""},
                          {"windowsize", "8"},
                          {"utimeout", "500000"},
                          {"timeout", "3"},
                          {"blksize", "1024"},
                          {"tsize", "0"}}),
                     ServerLimits{});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(
      n->oack,
      (OptionList{{"windowsize", "8"}, {"timeout", "3"}, {"blksize", "1024"}, {"tsize", "0"}}));
  EXPECT_EQ(n->windowsize, 8);
  EXPECT_EQ(n->timeout_seconds, 3);
  EXPECT_EQ(n->blksize, 1024);
  EXPECT_TRUE(n->tsize_requested);
}

TEST(NegotiateTest, OptionNamesAreCaseInsensitiveEvenInAHandBuiltRequest) {
  auto n = Negotiate(Rrq({{"BlkSize", "1024"}}), ServerLimits{});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->blksize, 1024);
  EXPECT_EQ(n->oack, (OptionList{{"blksize", "1024"}}));
  EXPECT_FALSE(Negotiate(Rrq({{"blksize", "1024"}, {"BLKSIZE", "512"}}), ServerLimits{}).ok());
}

TEST(NegotiateTest, BlksizeRangeIs8To65464) {
  ServerLimits widest{kMaxBlksize, kMaxWindowsize};
  for (std::string v : {"7", "0", "65465", "65536", "99999999999999999999999"}) {
    auto n = Negotiate(Rrq({{"blksize", v}}), widest);
    ASSERT_FALSE(n.ok()) << v;
    EXPECT_EQ(n.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(Negotiate(Rrq({{"blksize", "7"}}), widest).status().message(),
            "blksize 7 is outside 8..65464");
  EXPECT_EQ(Negotiate(Rrq({{"blksize", "8"}}), widest)->blksize, 8);
  EXPECT_EQ(Negotiate(Rrq({{"blksize", "9"}}), widest)->blksize, 9);
  EXPECT_EQ(Negotiate(Rrq({{"blksize", "65463"}}), widest)->blksize, 65463);
  auto top = Negotiate(Rrq({{"blksize", "65464"}}), widest);
  EXPECT_EQ(top->blksize, 65464);
  EXPECT_EQ(top->oack, (OptionList{{"blksize", "65464"}}));
}

TEST(NegotiateTest, BlksizeAboveTheServerMaximumIsLoweredToIt) {
  ServerLimits limits;  // max_blksize 1468
  EXPECT_EQ(Negotiate(Rrq({{"blksize", "1467"}}), limits)->blksize, 1467);
  EXPECT_EQ(Negotiate(Rrq({{"blksize", "1468"}}), limits)->blksize, 1468);
  auto n = Negotiate(Rrq({{"blksize", "1469"}}), limits);
  EXPECT_EQ(n->blksize, 1468);
  EXPECT_EQ(n->oack, (OptionList{{"blksize", "1468"}}));
  EXPECT_EQ(Negotiate(Rrq({{"blksize", "65464"}}), limits)->blksize, 1468);
}

TEST(NegotiateTest, RefusesNumbersNotWrittenAsPlainDecimals) {
  for (std::string name : {"blksize", "timeout", "tsize", "windowsize"}) {
    for (std::string v : {"", "abc", "+5", "-5", " 5", "5 ", "0x10", "5.0"}) {
      auto n = Negotiate(Rrq({{name, v}}), ServerLimits{});
      ASSERT_FALSE(n.ok()) << name << "=" << v;
      EXPECT_EQ(n.status().message(), name + " is not a number: \"" + v + "\"");
    }
  }
}

TEST(NegotiateTest, AcceptsLeadingZerosAndAnswersThePlainNumber) {
  auto n = Negotiate(Rrq({{"blksize", "01024"}, {"timeout", "005"}}), ServerLimits{});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->oack, (OptionList{{"blksize", "1024"}, {"timeout", "5"}}));
}

TEST(NegotiateTest, TimeoutRangeIs1To255AndIsEchoed) {
  EXPECT_FALSE(Negotiate(Rrq({{"timeout", "0"}}), ServerLimits{}).ok());
  for (int t : {1, 2, 254, 255}) {
    auto n = Negotiate(Rrq({{"timeout", std::to_string(t)}}), ServerLimits{});
    ASSERT_TRUE(n.ok()) << t;
    EXPECT_EQ(n->timeout_seconds, t);
    EXPECT_EQ(n->oack, (OptionList{{"timeout", std::to_string(t)}}));
  }
  EXPECT_EQ(Negotiate(Rrq({{"timeout", "256"}}), ServerLimits{}).status().message(),
            "timeout 256 is outside 1..255");
}

TEST(NegotiateTest, WindowsizeRangeIs1To65535) {
  ServerLimits widest{kMaxBlksize, kMaxWindowsize};
  EXPECT_EQ(Negotiate(Rrq({{"windowsize", "0"}}), widest).status().message(),
            "windowsize 0 is outside 1..65535");
  EXPECT_EQ(Negotiate(Rrq({{"windowsize", "1"}}), widest)->windowsize, 1);
  EXPECT_EQ(Negotiate(Rrq({{"windowsize", "65534"}}), widest)->windowsize, 65534);
  EXPECT_EQ(Negotiate(Rrq({{"windowsize", "65535"}}), widest)->windowsize, 65535);
  EXPECT_FALSE(Negotiate(Rrq({{"windowsize", "65536"}}), widest).ok());
}

TEST(NegotiateTest, WindowsizeAboveTheServerMaximumIsCappedAtIt) {
  ServerLimits limits;  // max_windowsize 64
  EXPECT_EQ(Negotiate(Rrq({{"windowsize", "63"}}), limits)->windowsize, 63);
  EXPECT_EQ(Negotiate(Rrq({{"windowsize", "64"}}), limits)->windowsize, 64);
  auto n = Negotiate(Rrq({{"windowsize", "65"}}), limits);
  EXPECT_EQ(n->windowsize, 64);
  EXPECT_EQ(n->oack, (OptionList{{"windowsize", "64"}}));
  EXPECT_EQ(Negotiate(Rrq({{"windowsize", "65535"}}), limits)->windowsize, 64);
}

TEST(NegotiateTest, LimitsOutsideTheRfcRangesAreBroughtIntoThem) {
  ServerLimits broken{0, 0};
  auto n = Negotiate(Rrq({{"blksize", "1468"}, {"windowsize", "8"}}), broken);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->blksize, kMinBlksize);
  EXPECT_EQ(n->windowsize, 1);
  ServerLimits too_big{65535, 64};
  EXPECT_EQ(Negotiate(Rrq({{"blksize", "65464"}}), too_big)->blksize, 65464);
}

TEST(NegotiateTest, RrqTsizeGetsAPlaceholderThatSetTsizeFillsIn) {
  auto n = Negotiate(Rrq({{"tsize", "0"}, {"blksize", "1468"}}), ServerLimits{});
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n->tsize_requested);
  EXPECT_FALSE(n->tsize_sent.has_value());
  EXPECT_EQ(n->oack, (OptionList{{"tsize", "0"}, {"blksize", "1468"}}));
  SetTsize(&*n, 18446744073709551615u);
  EXPECT_EQ(n->oack, (OptionList{{"tsize", "18446744073709551615"}, {"blksize", "1468"}}));
  SetTsize(&*n, 4242);
  EXPECT_EQ(n->oack, (OptionList{{"tsize", "4242"}, {"blksize", "1468"}}));
}

TEST(NegotiateTest, RrqTsizeOtherThanZeroStillAsksForTheSize) {
  auto n = Negotiate(Rrq({{"tsize", "77"}}), ServerLimits{});
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n->tsize_requested);
  EXPECT_EQ(n->oack, (OptionList{{"tsize", "0"}}));
}

TEST(NegotiateTest, DropOptionLeavesAnUnknownSizeOut) {
  auto n = Negotiate(Rrq({{"blksize", "1024"}, {"tsize", "0"}}), ServerLimits{});
  ASSERT_TRUE(n.ok());
  DropOption(&*n, "tsize");
  EXPECT_FALSE(n->tsize_requested);
  EXPECT_EQ(n->oack, (OptionList{{"blksize", "1024"}}));
  SetTsize(&*n, 10);  // nothing to fill in any more
  EXPECT_EQ(n->oack, (OptionList{{"blksize", "1024"}}));
  DropOption(&*n, "TSIZE");  // absent: nothing changes
  EXPECT_EQ(n->oack, (OptionList{{"blksize", "1024"}}));
  EXPECT_EQ(n->blksize, 1024);
}

TEST(NegotiateTest, DropOptionReturnsTheFieldToItsDefaultAndCanEmptyTheOack) {
  auto n =
      Negotiate(Rrq({{"blksize", "1024"}, {"windowsize", "4"}, {"timeout", "2"}}), ServerLimits{});
  ASSERT_TRUE(n.ok());
  DropOption(&*n, "blksize");
  EXPECT_EQ(n->blksize, 512);
  DropOption(&*n, "WindowSize");
  EXPECT_EQ(n->windowsize, 1);
  DropOption(&*n, "timeout");
  EXPECT_EQ(n->timeout_seconds, 0);
  EXPECT_TRUE(n->oack.empty());  // no OACK: RFC 1350 behaviour
}

TEST(NegotiateTest, WrqTsizeIsKeptAndEchoed) {
  auto n = Negotiate(Rrq({{"tsize", "123456"}}, /*write=*/true), ServerLimits{});
  ASSERT_TRUE(n.ok());
  EXPECT_FALSE(n->tsize_requested);
  EXPECT_EQ(n->tsize_sent, 123456u);
  EXPECT_EQ(n->oack, (OptionList{{"tsize", "123456"}}));
  auto max = Negotiate(Rrq({{"tsize", "18446744073709551615"}}, true), ServerLimits{});
  EXPECT_EQ(max->tsize_sent, 18446744073709551615u);
  EXPECT_FALSE(Negotiate(Rrq({{"tsize", "18446744073709551616"}}, true), ServerLimits{}).ok());
}

TEST(NegotiateTest, ParsedRequestNegotiatesEndToEnd) {
  auto r = ParseRequest(Bytes(RequestBytes(
      "0004f282e824.cfg", "octet", {"BLKSIZE", "1432", "TSize", "0", "WindowSize", "128"})));
  ASSERT_TRUE(r.ok());
  auto n = Negotiate(*r, ServerLimits{});
  ASSERT_TRUE(n.ok());
  SetTsize(&*n, 2048);
  std::string oack;
  EncodeOack(n->oack, &oack);
  EXPECT_EQ(oack, "\0\6blksize\0"s + "1432\0tsize\0"s + "2048\0windowsize\0"s + "64\0"s);
}

// --- netascii ---

std::string Encoded(std::string_view in) {
  NetasciiEncoder e;
  std::string out;
  e.Encode(Bytes(in), &out);
  return out;
}

TEST(NetasciiTest, EncoderTurnsLfIntoCrLfAndCrIntoCrNul) {
  EXPECT_EQ(Encoded("a\nb\rc"), "a\r\nb\r\0c"s);
  EXPECT_EQ(Encoded("dos\r\n"), "dos\r\0\r\n"s);  // lossless: the client gets CR LF back
  EXPECT_EQ(Encoded(""), "");
  EXPECT_EQ(Encoded("\0\t\xff"s), "\0\t\xff"s);
}

TEST(NetasciiTest, EncoderAppendsToWhatTheCallerHasNotSentYet) {
  NetasciiEncoder e;
  std::string pending = "tail of the last block|";
  e.Encode(Bytes("x\n"), &pending);
  EXPECT_EQ(pending, "tail of the last block|x\r\n");
}

TEST(NetasciiTest, EncodingInPiecesGivesTheSameBytesWhereverTheFileIsCut) {
  const std::string file = "line1\r\nline2\n\rend\r";
  const std::string whole = Encoded(file);
  for (size_t cut = 0; cut <= file.size(); ++cut) {
    NetasciiEncoder e;
    std::string out;
    e.Encode(Bytes(std::string_view(file).substr(0, cut)), &out);
    e.Encode(Bytes(std::string_view(file).substr(cut)), &out);
    EXPECT_EQ(out, whole) << cut;
  }
}

TEST(NetasciiTest, DecoderJoinsACrAtTheEndOfOneBlockWithTheNextBlock) {
  NetasciiDecoder d;
  std::string out;
  d.Decode(Bytes("line1\r"), &out);
  EXPECT_EQ(out, "line1");  // the CR waits for its partner
  d.Decode(Bytes("\nbare\r"), &out);
  d.Decode(Bytes("\0cr"s), &out);
  d.Finish(&out);
  EXPECT_EQ(out, "line1\nbare\rcr");
}

TEST(NetasciiTest, DecoderKeepsAStrayCrAndATrailingOne) {
  NetasciiDecoder d;
  std::string out;
  d.Decode(Bytes("a\rb\r\r\n"), &out);
  d.Decode(Bytes("z\r"), &out);
  d.Finish(&out);
  EXPECT_EQ(out, "a\rb\r\nz\r");
}

TEST(NetasciiTest, DecodingWhatWasEncodedGivesTheFileBackAcrossEveryBlockBoundary) {
  std::string file;
  for (int i = 0; i < 256; ++i) file += static_cast<char>(i);
  file += "\r\n\n\r\r\0\r"s;
  const std::string wire = Encoded(file);
  for (size_t block : {size_t{1}, size_t{2}, size_t{3}, size_t{8}, size_t{512}}) {
    NetasciiDecoder d;
    std::string out;
    for (size_t at = 0; at < wire.size(); at += block) {
      d.Decode(Bytes(std::string_view(wire).substr(at, block)), &out);
    }
    d.Finish(&out);
    EXPECT_EQ(out, file) << block;
  }
}

}  // namespace
}  // namespace siterelay::tftp
