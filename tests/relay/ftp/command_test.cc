#include "relay/ftp/command.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <string_view>

#include "relay/ftp/limits.h"

namespace siterelay::ftp {
namespace {

using namespace std::string_literals;  // "...\0..."s keeps the NULs

// Telnet bytes as a client sends them (RFC 854).
const std::string kIac = "\xff";
const std::string kIp = "\xf4";  // Interrupt Process
const std::string kDm = "\xf2";  // Data Mark
const std::string kNop = "\xf1";
const std::string kWill = "\xfb";
const std::string kDo = "\xfd";

// The address and port of a parsed PORT/EPRT, as text: "1.2.3.4:5282" or "[::1]:5282".
std::string Endpoint(const sockaddr_storage& ss) {
  char text[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &ss, sizeof sin);
    inet_ntop(AF_INET, &sin.sin_addr, text, sizeof text);
    return std::string(text) + ":" + std::to_string(ntohs(sin.sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &ss, sizeof sin6);
    inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof text);
    return "[" + std::string(text) + "]:" + std::to_string(ntohs(sin6.sin6_port));
  }
  return "family " + std::to_string(ss.ss_family);
}

template <typename T>
StatusCode CodeOf(const Result<T>& r) {
  return r.ok() ? StatusCode::kOk : r.status().code();
}

// --- ParseCommand ---

TEST(ParseCommandTest, ParsesAVerbWithoutArgument) {
  auto c = ParseCommand("NOOP");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(*c, (Command{"NOOP", ""}));
}

TEST(ParseCommandTest, UpperCasesTheVerbAndKeepsTheArgumentAsSent) {
  auto c = ParseCommand("retr a b.txt");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(*c, (Command{"RETR", "a b.txt"}));
  EXPECT_EQ(*ParseCommand("User PlcmSpIp"), (Command{"USER", "PlcmSpIp"}));
}

TEST(ParseCommandTest, ATrailingSpaceGivesAnEmptyArgument) {
  EXPECT_EQ(*ParseCommand("CWD "), (Command{"CWD", ""}));
}

TEST(ParseCommandTest, KeepsSpacesInsideAndAroundTheArgument) {
  // Only the first space separates: a path may start or end with a space.
  EXPECT_EQ(*ParseCommand("STOR  x "), (Command{"STOR", " x "}));
  EXPECT_EQ(*ParseCommand("PASS my secret"), (Command{"PASS", "my secret"}));
}

TEST(ParseCommandTest, AcceptsVerbsOfOneToFourLetters) {
  EXPECT_EQ(ParseCommand("X")->verb, "X");
  EXPECT_EQ(ParseCommand("xpwd")->verb, "XPWD");
}

TEST(ParseCommandTest, RefusesAnEmptyLine) {
  EXPECT_EQ(CodeOf(ParseCommand("")), StatusCode::kInvalidArgument);
}

TEST(ParseCommandTest, RefusesVerbsThatAreNotOneToFourLetters) {
  EXPECT_EQ(CodeOf(ParseCommand("NOOPS")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseCommand("RETRR x")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseCommand(" NOOP")), StatusCode::kInvalidArgument);  // empty verb
  EXPECT_EQ(CodeOf(ParseCommand("RET1 x")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseCommand("NOOP\t")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseCommand("N\xc3\x9c")), StatusCode::kInvalidArgument);  // not ASCII
}

TEST(ParseCommandTest, RefusesNulCrOrLfAnywhere) {
  EXPECT_EQ(CodeOf(ParseCommand("RETR a\0b"s)), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseCommand("RETR a\rb")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseCommand("RETR a\nb")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseCommand("NOOP\r")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseCommand("NO\0P"s)), StatusCode::kInvalidArgument);
}

TEST(ParseCommandTest, KeepsA0xffByteInTheArgument) {
  // What IAC IAC became in TakeLine(): a Latin-1 name is still a name.
  EXPECT_EQ(ParseCommand("RETR \xff.cfg")->arg, "\xff.cfg");
}

TEST(ParseCommandTest, AcceptsLinesUpToTheLimit) {
  std::string prefix = "RETR ";
  std::string at = prefix + std::string(kMaxLineBytes - prefix.size(), 'a');
  ASSERT_EQ(at.size(), kMaxLineBytes);
  EXPECT_TRUE(ParseCommand(at.substr(0, kMaxLineBytes - 1)).ok());
  auto c = ParseCommand(at);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->arg.size(), kMaxLineBytes - prefix.size());
  EXPECT_EQ(CodeOf(ParseCommand(at + "a")), StatusCode::kInvalidArgument);
}

// --- TakeLine ---

TEST(TakeLineTest, TakesOneCrlfLineAndLeavesTheRest) {
  std::string in = "USER PlcmSpIp\r\nPASS Plcm";
  std::string line;
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line, "USER PlcmSpIp");
  EXPECT_EQ(in, "PASS Plcm");
}

TEST(TakeLineTest, TakesPipelinedLinesOneByOne) {
  std::string in = "TYPE I\r\nPASV\r\nRETR x\r\n";
  std::string line;
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line, "TYPE I");
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line, "PASV");
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line, "RETR x");
  EXPECT_EQ(in, "");
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kNeedMore);
}

TEST(TakeLineTest, AcceptsABareLf) {
  std::string in = "NOOP\nQUIT\n";
  std::string line;
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line, "NOOP");
  EXPECT_EQ(in, "QUIT\n");
}

TEST(TakeLineTest, TakesAnEmptyLine) {
  // ParseCommand() refuses it; framing must still move past it.
  std::string in = "\r\nNOOP\r\n";
  std::string line = "old";
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line, "");
  EXPECT_EQ(in, "NOOP\r\n");
}

TEST(TakeLineTest, NeedsMoreWithoutTerminatorAndChangesNothing) {
  std::string in = "RETR 0004f282e824";
  std::string line = "untouched";
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kNeedMore);
  EXPECT_EQ(in, "RETR 0004f282e824");
  EXPECT_EQ(line, "untouched");
}

TEST(TakeLineTest, JoinsACrlfSplitAcrossReads) {
  std::string in = "NOOP\r";
  std::string line;
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kNeedMore);
  EXPECT_EQ(in, "NOOP\r");
  in += "\n";
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line, "NOOP");  // the CR belongs to the terminator, not to the line
  EXPECT_EQ(in, "");
}

TEST(TakeLineTest, KeepsACrThatIsNotPartOfTheTerminator) {
  // A bare CR inside is left for ParseCommand() to refuse, not silently dropped.
  std::string in = "RETR a\rb\r\n";
  std::string line;
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line, "RETR a\rb");
}

TEST(TakeLineTest, DropsTelnetInterruptAndSynchBeforeAbor) {
  // What curl and BSD ftp send to abort a transfer (RFC 959 section 4.1.3).
  std::string in = kIac + kIp + kIac + kDm + "ABOR\r\n";
  std::string line;
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line, "ABOR");
  EXPECT_EQ(*ParseCommand(line), (Command{"ABOR", ""}));
  EXPECT_EQ(in, "");
}

TEST(TakeLineTest, DropsTelnetCommandsInTheMiddleOfALine) {
  std::string in = "RE" + kIac + kNop + "TR a" + kIac + kWill + "\x01" + ".cfg" + kIac + kDo +
                   "\n" + "\r\n";  // the option byte may be anything, even an LF
  std::string line;
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line, "RETR a.cfg");
  EXPECT_EQ(in, "");
}

TEST(TakeLineTest, AcceptsALineOfDoubled0xffBytesUpToTheLimit) {
  // Every byte escaped: twice the raw bytes, still a line of kMaxLineBytes.
  std::string in;
  for (size_t i = 0; i < kMaxLineBytes; ++i) in += kIac + kIac;
  in += "\r\n";
  std::string line;
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line, std::string(kMaxLineBytes, '\xff'));
  in.clear();
  for (size_t i = 0; i < kMaxLineBytes + 2; ++i) in += kIac + kIac;
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kTooLong);
}

TEST(TakeLineTest, UndoublesIacIac) {
  std::string in = "RETR a" + kIac + kIac + "b\r\n";
  std::string line;
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line,
            "RETR a\xff"
            "b");
}

TEST(TakeLineTest, KeepsAnIacThatStartsNoTelnetCommand) {
  // A client that speaks no Telnet and sends a raw 0xFF keeps it, and its LF still ends the line.
  std::string in = "RETR a" + kIac + "b" + kIac + "\n";
  std::string line;
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line,
            "RETR a\xff"
            "b\xff");
}

TEST(TakeLineTest, WaitsForTheRestOfAnIacAtTheEndOfTheBuffer) {
  std::string line = "untouched";
  // A whole line before it comes out at once; the partial IAC stays for the next read.
  std::string in = "NOOP\r\n" + kIac;
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(in, kIac);
  line = "untouched";
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kNeedMore);
  in += kIp + kIac;
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kNeedMore);
  EXPECT_EQ(in, kIac + kIp + kIac);
  EXPECT_EQ(line, "untouched");
  in += kDm + "ABOR\r\n";
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line, "ABOR");
}

TEST(TakeLineTest, WaitsForTheOptionOfANegotiationAtTheEndOfTheBuffer) {
  // The LF after IAC WILL is its option byte, not a terminator: TakeLine must not guess.
  std::string in = "NOOP" + kIac + kWill;
  std::string line;
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kNeedMore);
  EXPECT_EQ(in, "NOOP" + kIac + kWill);
  in += "\n\r\n";
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line, "NOOP");
  EXPECT_EQ(in, "");
}

TEST(TakeLineTest, NeedsMoreForAPartialIacEvenWhenAnLfCameBefore) {
  // An LF inside IAC DO <LF> is no terminator, and the sequence after it is still open.
  std::string in = "NOOP" + kIac + kDo + "\n" + kIac;
  std::string line;
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kNeedMore);
  EXPECT_EQ(in.size(), 8u);
  in += kWill;  // IAC WILL, its option still to come
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kNeedMore);
  EXPECT_EQ(in.size(), 9u);
  in += "\n";  // the option: still no terminator
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kNeedMore);
  in += "\n";
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line, "NOOP");
}

TEST(TakeLineTest, AcceptsALineOfTheLimitWithItsCrlf) {
  std::string body(kMaxLineBytes, 'a');
  std::string line;
  std::string in = body.substr(1) + "\r\n";  // N-1
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line.size(), kMaxLineBytes - 1);
  in = body + "\r\n";  // N
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line.size(), kMaxLineBytes);
  EXPECT_EQ(in, "");
}

TEST(TakeLineTest, AcceptsALineOfTheLimitSentInPieces) {
  std::string body(kMaxLineBytes, 'a');
  std::string line;
  std::string in = body;
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kNeedMore);
  in += "\r";
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kNeedMore);  // kMaxLineBytes + 1 bytes so far
  in += "\n";
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line, body);
}

TEST(TakeLineTest, HandsOverALineOneByteOverTheLimitForParseCommandToRefuse) {
  // N+1 bytes and a bare LF: the terminator is within kMaxLineBytes + 2 bytes, so the session
  // answers 500 and reads on instead of closing.
  std::string in = "RETR " + std::string(kMaxLineBytes + 1 - 5, 'a') + "\n";
  std::string line;
  ASSERT_EQ(TakeLine(&in, &line), LineStatus::kLine);
  EXPECT_EQ(line.size(), kMaxLineBytes + 1);
  EXPECT_EQ(CodeOf(ParseCommand(line)), StatusCode::kInvalidArgument);
}

TEST(TakeLineTest, IsTooLongWithoutTerminatorWithinTheLimitPlusCrlf) {
  std::string line = "untouched";
  std::string in(kMaxLineBytes + 1, 'a');
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kNeedMore);  // the LF may still come
  in = std::string(kMaxLineBytes + 2, 'a');
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kTooLong);
  in = std::string(kMaxLineBytes + 2, 'a') + "\r\n";  // too late, even with its terminator
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kTooLong);
  EXPECT_EQ(line, "untouched");
}

TEST(TakeLineTest, IsTooLongForEndlessTelnetCommandsThatMakeNoLine) {
  std::string in;
  while (in.size() < kMaxRawLineBytes) in += kIac + kNop;
  std::string line;
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kTooLong);
}

TEST(TakeLineTest, BoundsTheRawBytesOfALine) {
  // Telnet NOPs in front of a one-byte line: the line is short, its raw bytes are not.
  std::string line;
  std::string in(kMaxRawLineBytes - 1, ' ');
  for (size_t i = 0; i + 1 < in.size(); i += 2) in.replace(i, 2, kIac + kNop);  // no line bytes
  in.back() = 'x';
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kNeedMore);  // N-1: the LF may still come
  std::string at_limit = in + "\n";
  EXPECT_EQ(TakeLine(&at_limit, &line), LineStatus::kLine);  // LF as byte N
  EXPECT_EQ(line, "x");
  std::string past_limit = in + "y\n";
  EXPECT_EQ(TakeLine(&past_limit, &line), LineStatus::kTooLong);  // LF as byte N+1
  in += "y";
  EXPECT_EQ(TakeLine(&in, &line), LineStatus::kTooLong);  // N bytes and no LF
}

// --- ParsePort ---

TEST(ParsePortTest, ParsesAnAddressAndPort) {
  auto a = ParsePort("192,168,1,20,195,80");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(Endpoint(*a), "192.168.1.20:50000");
  EXPECT_EQ(Endpoint(*ParsePort("0,0,0,0,0,1")), "0.0.0.0:1");
  EXPECT_EQ(Endpoint(*ParsePort("255,255,255,255,255,255")), "255.255.255.255:65535");
}

TEST(ParsePortTest, ReadsLeadingZerosAsDecimal) {
  EXPECT_EQ(Endpoint(*ParsePort("010,0,0,1,0,010")), "10.0.0.1:10");
}

TEST(ParsePortTest, RefusesANumberOver255) {
  EXPECT_EQ(CodeOf(ParsePort("256,0,0,1,4,1")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParsePort("10,0,0,1,256,1")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParsePort("10,0,0,1,4,99999999999999999999999")), StatusCode::kInvalidArgument);
}

TEST(ParsePortTest, RefusesAMissingOrExtraField) {
  EXPECT_EQ(CodeOf(ParsePort("10,0,0,1,4")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParsePort("10,0,0,1,,4")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParsePort("10,0,0,1,4,1,")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParsePort("10,0,0,1,4,1,7")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParsePort("")), StatusCode::kInvalidArgument);
}

TEST(ParsePortTest, RefusesSignsSpacesAndOtherCharacters) {
  EXPECT_EQ(CodeOf(ParsePort("10,0,0,1,+4,1")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParsePort("10,0,0,1,-4,1")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParsePort("10, 0,0,1,4,1")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParsePort("10,0,0,1,4,1 ")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParsePort("10,0,0,1,4,0x1")), StatusCode::kInvalidArgument);
}

TEST(ParsePortTest, RefusesPortZero) {
  EXPECT_EQ(CodeOf(ParsePort("10,0,0,1,0,0")), StatusCode::kInvalidArgument);
  EXPECT_TRUE(ParsePort("10,0,0,1,1,0").ok());  // 256
}

// --- ParseEprt ---

TEST(ParseEprtTest, ParsesIpv4) {
  auto a = ParseEprt("|1|132.235.1.2|6275|");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->ss_family, AF_INET);
  EXPECT_EQ(Endpoint(*a), "132.235.1.2:6275");
}

TEST(ParseEprtTest, ParsesIpv6) {
  auto a = ParseEprt("|2|::1|5282|");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->ss_family, AF_INET6);
  EXPECT_EQ(Endpoint(*a), "[::1]:5282");
  EXPECT_EQ(Endpoint(*ParseEprt("|2|1080::8:800:200C:417A|65535|")),
            "[1080::8:800:200c:417a]:65535");
}

TEST(ParseEprtTest, AcceptsAnyDelimiterFrom33To126) {
  EXPECT_EQ(Endpoint(*ParseEprt("!1!10.0.0.1!1!")), "10.0.0.1:1");
  EXPECT_EQ(Endpoint(*ParseEprt("~2~fe80::1~80~")), "[fe80::1]:80");
  EXPECT_EQ(CodeOf(ParseEprt(" 1 10.0.0.1 21 ")), StatusCode::kInvalidArgument);  // 32
  EXPECT_EQ(CodeOf(ParseEprt("\x7f"
                             "1\x7f"
                             "10.0.0.1\x7f"
                             "21\x7f")),
            StatusCode::kInvalidArgument);  // 127
}

TEST(ParseEprtTest, RefusesADelimiterThatAppearsInTheAddress) {
  // RFC 2428: '|' is recommended "unless it coincides with a character needed to encode the
  // network address"; a client that picks ':' for IPv6 gets a syntax error, not a guess.
  EXPECT_EQ(CodeOf(ParseEprt(":2:::1:21:")), StatusCode::kInvalidArgument);
}

TEST(ParseEprtTest, AnswersUnimplementedForAnotherNetworkProtocol) {
  auto a = ParseEprt("|3|1.2.3.4|21|");
  EXPECT_EQ(CodeOf(a), kUnimplemented);
  EXPECT_NE(kUnimplemented, StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseEprt("|12|x|21|")), kUnimplemented);
}

TEST(ParseEprtTest, RefusesAProtocolThatIsNoNumber) {
  EXPECT_EQ(CodeOf(ParseEprt("||1.2.3.4|21|")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseEprt("|x|1.2.3.4|21|")), StatusCode::kInvalidArgument);
}

TEST(ParseEprtTest, RefusesAnAddressOfTheWrongFamily) {
  EXPECT_EQ(CodeOf(ParseEprt("|1|::1|21|")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseEprt("|2|1.2.3.4|21|")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseEprt("|1|1.2.3|21|")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseEprt("|1||21|")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseEprt("|2|fe80::1%eth0|21|")), StatusCode::kInvalidArgument);
}

TEST(ParseEprtTest, RefusesPortsOutside1To65535) {
  EXPECT_EQ(CodeOf(ParseEprt("|1|10.0.0.1|0|")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseEprt("|1|10.0.0.1|65536|")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseEprt("|1|10.0.0.1||")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseEprt("|1|10.0.0.1|-1|")), StatusCode::kInvalidArgument);
  EXPECT_EQ(Endpoint(*ParseEprt("|1|10.0.0.1|65535|")), "10.0.0.1:65535");
}

TEST(ParseEprtTest, RefusesMissingOrExtraDelimiters) {
  EXPECT_EQ(CodeOf(ParseEprt("|1|10.0.0.1|21")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseEprt("|1|10.0.0.1|21||")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseEprt("|1|10.0.0.1|")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseEprt("|1|10.0.0.1|21|x")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseEprt("|")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseEprt("")), StatusCode::kInvalidArgument);
}

// --- PasvReply, EpsvReply ---

TEST(PasvReplyTest, WritesAddressAndPortAsSixNumbers) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(50000);
  ASSERT_EQ(inet_pton(AF_INET, "127.0.0.1", &a.sin_addr), 1);
  EXPECT_EQ(PasvReply(a), "227 Entering Passive Mode (127,0,0,1,195,80).");
  a.sin_port = htons(65535);
  ASSERT_EQ(inet_pton(AF_INET, "192.168.200.7", &a.sin_addr), 1);
  EXPECT_EQ(PasvReply(a), "227 Entering Passive Mode (192,168,200,7,255,255).");
}

TEST(PasvReplyTest, RoundTripsThroughParsePort) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(50100);
  ASSERT_EQ(inet_pton(AF_INET, "10.1.2.3", &a.sin_addr), 1);
  std::string reply = PasvReply(a);
  size_t open = reply.find('(');
  std::string numbers = reply.substr(open + 1, reply.find(')') - open - 1);
  EXPECT_EQ(Endpoint(*ParsePort(numbers)), "10.1.2.3:50100");
}

TEST(EpsvReplyTest, WritesThePortBetweenPipes) {
  EXPECT_EQ(EpsvReply(50000), "229 Entering Extended Passive Mode (|||50000|)");
  EXPECT_EQ(EpsvReply(1), "229 Entering Extended Passive Mode (|||1|)");
}

// --- ParseRestOffset ---

TEST(ParseRestOffsetTest, ParsesDecimalOffsets) {
  EXPECT_EQ(*ParseRestOffset("0"), 0u);
  EXPECT_EQ(*ParseRestOffset("1048576"), 1048576u);
  EXPECT_EQ(*ParseRestOffset("007"), 7u);
}

TEST(ParseRestOffsetTest, AcceptsUpTo2To63Minus1) {
  EXPECT_EQ(*ParseRestOffset("9223372036854775806"), 9223372036854775806u);
  EXPECT_EQ(*ParseRestOffset("9223372036854775807"), 9223372036854775807u);
  EXPECT_EQ(CodeOf(ParseRestOffset("9223372036854775808")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseRestOffset("18446744073709551616")), StatusCode::kInvalidArgument);
}

TEST(ParseRestOffsetTest, RefusesSignsSpacesAndEmpty) {
  EXPECT_EQ(CodeOf(ParseRestOffset("")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseRestOffset("-1")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseRestOffset("+1")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseRestOffset(" 1")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseRestOffset("1 ")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseRestOffset("1e3")), StatusCode::kInvalidArgument);
}

// --- ParseType ---

TEST(ParseTypeTest, ReadsAsciiNonPrint) {
  EXPECT_EQ(*ParseType("A"), 'A');
  EXPECT_EQ(*ParseType("A N"), 'A');
  EXPECT_EQ(*ParseType("a n"), 'A');
}

TEST(ParseTypeTest, ReadsImageAndLocal8AsImage) {
  EXPECT_EQ(*ParseType("I"), 'I');
  EXPECT_EQ(*ParseType("i"), 'I');
  EXPECT_EQ(*ParseType("L 8"), 'I');
  EXPECT_EQ(*ParseType("l 8"), 'I');
  EXPECT_EQ(*ParseType("L8"), 'I');
}

TEST(ParseTypeTest, AnswersUnimplementedForWellFormedTypesNotOffered) {
  EXPECT_EQ(CodeOf(ParseType("A T")), kUnimplemented);
  EXPECT_EQ(CodeOf(ParseType("A C")), kUnimplemented);
  EXPECT_EQ(CodeOf(ParseType("E")), kUnimplemented);
  EXPECT_EQ(CodeOf(ParseType("e n")), kUnimplemented);
  EXPECT_EQ(CodeOf(ParseType("L 7")), kUnimplemented);
  EXPECT_EQ(CodeOf(ParseType("L 36")), kUnimplemented);
}

TEST(ParseTypeTest, RefusesEmptyAndGarbage) {
  EXPECT_EQ(CodeOf(ParseType("")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseType("X")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseType("binary")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseType("I N")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseType("A  N")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseType("AN")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseType("A X")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseType(" I")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseType("I ")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseType("L")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseType("L ")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(ParseType("L x")), StatusCode::kInvalidArgument);
}

// --- JoinPath ---

TEST(JoinPathTest, JoinsARelativePathToTheWorkingDirectory) {
  EXPECT_EQ(*JoinPath("/", "a.cfg"), "/a.cfg");
  EXPECT_EQ(*JoinPath("/a/b", "c/d.cfg"), "/a/b/c/d.cfg");
}

TEST(JoinPathTest, TakesAnAbsolutePathAsItIs) {
  EXPECT_EQ(*JoinPath("/a/b", "/x/y.ld"), "/x/y.ld");
  EXPECT_EQ(*JoinPath("/a/b", "/"), "/");
}

TEST(JoinPathTest, AnEmptyArgumentIsTheWorkingDirectory) {
  EXPECT_EQ(*JoinPath("/a/b", ""), "/a/b");
  EXPECT_EQ(*JoinPath("/", ""), "/");
}

TEST(JoinPathTest, DropsDotsRepeatedAndTrailingSlashes) {
  EXPECT_EQ(*JoinPath("/", "./a//b/./c/"), "/a/b/c");
  EXPECT_EQ(*JoinPath("/a", "."), "/a");
  EXPECT_EQ(*JoinPath("/a", "//b///"), "/b");
  EXPECT_EQ(*JoinPath("/a", "..."), "/a/...");  // a name, not a step up
}

TEST(JoinPathTest, ResolvesDotDotWithinTheTree) {
  EXPECT_EQ(*JoinPath("/a/b", ".."), "/a");
  EXPECT_EQ(*JoinPath("/a/b", "../.."), "/");
  EXPECT_EQ(*JoinPath("/a/b", "../c"), "/a/c");
  EXPECT_EQ(*JoinPath("/", "a/../b"), "/b");
  EXPECT_EQ(*JoinPath("/x", "a/../../b"), "/b");
}

TEST(JoinPathTest, RefusesDotDotAboveTheRoot) {
  EXPECT_EQ(CodeOf(JoinPath("/", "..")), StatusCode::kPermissionDenied);
  EXPECT_EQ(CodeOf(JoinPath("/a", "/../x")), StatusCode::kPermissionDenied);
  EXPECT_EQ(CodeOf(JoinPath("/", "a/../../b")), StatusCode::kPermissionDenied);
  EXPECT_EQ(CodeOf(JoinPath("/a/b", "../../..")), StatusCode::kPermissionDenied);
}

TEST(JoinPathTest, RefusesAnEscapeEvenWhenLaterStepsWouldComeBack) {
  // Refused, never clamped to "/" and never resolved: "/a/../../a" would be "/a" either way.
  EXPECT_EQ(CodeOf(JoinPath("/a", "../../a")), StatusCode::kPermissionDenied);
  EXPECT_EQ(CodeOf(JoinPath("/", "/../a")), StatusCode::kPermissionDenied);
}

TEST(JoinPathTest, RefusesBackslashNulCrAndLf) {
  EXPECT_EQ(CodeOf(JoinPath("/", "..\\..\\etc")), StatusCode::kPermissionDenied);
  EXPECT_EQ(CodeOf(JoinPath("/", "a\\b.cfg")), StatusCode::kPermissionDenied);
  EXPECT_EQ(CodeOf(JoinPath("/", "a\0b"s)), StatusCode::kPermissionDenied);
  EXPECT_EQ(CodeOf(JoinPath("/", "a\r\n257 x")), StatusCode::kPermissionDenied);
  EXPECT_EQ(CodeOf(JoinPath("/a\\b", "c")), StatusCode::kPermissionDenied);
}

TEST(JoinPathTest, BoundsTheResultAtTheLimit) {
  std::string name(kMaxPathBytes - 1, 'a');  // "/" + name is kMaxPathBytes
  auto at = JoinPath("/", name);
  ASSERT_TRUE(at.ok()) << at.status().ToString();
  EXPECT_EQ(at->size(), kMaxPathBytes);
  EXPECT_EQ(JoinPath("/", name.substr(1))->size(), kMaxPathBytes - 1);
  EXPECT_EQ(CodeOf(JoinPath("/", name + "a")), StatusCode::kInvalidArgument);
  // A working directory grown by relative CWDs meets the same ceiling.
  EXPECT_EQ(CodeOf(JoinPath(*at, "b")), StatusCode::kInvalidArgument);
  EXPECT_EQ(*JoinPath(*at, ".."), "/");
}

}  // namespace
}  // namespace siterelay::ftp
