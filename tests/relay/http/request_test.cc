#include "relay/http/request.h"

#include <gtest/gtest.h>

#include "relay/http/limits.h"

namespace siterelay::http {
namespace {

ParseResult Parse(std::string_view bytes, Request* r) { return ParseRequestHead(bytes, r); }

TEST(RequestParserTest, ParsesAPhoneRequest) {
  constexpr std::string_view kHead =
      "GET /0004f282e824.cfg HTTP/1.1\r\n"
      "Host: 10.1.2.3:8080\r\n"
      "User-Agent: FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application\r\n"
      "Accept: */*\r\n"
      "\r\n";
  Request r;
  ParseResult p = Parse(std::string(kHead) + "NEXT", &r);
  ASSERT_EQ(p.status, ParseStatus::kComplete);
  EXPECT_EQ(p.consumed, kHead.size());
  EXPECT_EQ(r.method, Method::kGet);
  EXPECT_EQ(r.target, "/0004f282e824.cfg");
  EXPECT_EQ(r.minor_version, 1);
  EXPECT_TRUE(r.keep_alive);
  ASSERT_NE(r.Header("user-agent"), nullptr);
  EXPECT_EQ(*r.Header("user-agent"),
            "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application");
  EXPECT_EQ(r.Header("cookie"), nullptr);
}

TEST(RequestParserTest, NeedsMoreUntilTheEmptyLine) {
  std::string head = "PUT /0004f282e824-app.log HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\n\r\n";
  for (size_t n = 0; n < head.size(); ++n) {
    Request r;
    EXPECT_EQ(Parse(head.substr(0, n), &r).status, ParseStatus::kNeedMore) << n;
  }
  Request r;
  ParseResult p = Parse(head, &r);
  ASSERT_EQ(p.status, ParseStatus::kComplete);
  EXPECT_EQ(r.method, Method::kPut);
  EXPECT_EQ(r.content_length, 5u);
}

TEST(RequestParserTest, AcceptsBareLineFeeds) {
  Request r;
  EXPECT_EQ(Parse("GET / HTTP/1.1\nHost: x\n\n", &r).status, ParseStatus::kComplete);
}

TEST(RequestParserTest, Http10ClosesUnlessKeepAlive) {
  Request r;
  ASSERT_EQ(Parse("GET / HTTP/1.0\r\n\r\n", &r).status, ParseStatus::kComplete);
  EXPECT_FALSE(r.keep_alive);
  ASSERT_EQ(Parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r).status,
            ParseStatus::kComplete);
  EXPECT_TRUE(r.keep_alive);
  ASSERT_EQ(Parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r).status,
            ParseStatus::kComplete);
  EXPECT_FALSE(r.keep_alive);
}

TEST(RequestParserTest, AbsoluteFormIsReducedToItsPath) {
  Request r;
  ASSERT_EQ(Parse("GET http://relay:8080/sip.ld?x=1 HTTP/1.1\r\nHost: relay\r\n\r\n", &r).status,
            ParseStatus::kComplete);
  EXPECT_EQ(r.target, "/sip.ld?x=1");
}

TEST(RequestParserTest, ChunkedAndExpect) {
  Request r;
  ASSERT_EQ(Parse("PUT /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                  "Expect: 100-continue\r\n\r\n",
                  &r)
                .status,
            ParseStatus::kComplete);
  EXPECT_TRUE(r.chunked);
  EXPECT_TRUE(r.expect_continue);
}

struct Bad {
  const char* head;
  int status;
};

class RequestParserErrorTest : public ::testing::TestWithParam<Bad> {};

TEST_P(RequestParserErrorTest, RefusesWithTheRightStatus) {
  Request r;
  ParseResult p = ParseRequestHead(GetParam().head, &r);
  ASSERT_EQ(p.status, ParseStatus::kInvalid) << GetParam().head;
  EXPECT_EQ(p.http_status, GetParam().status) << p.reason;
}

INSTANTIATE_TEST_SUITE_P(
    Statuses, RequestParserErrorTest,
    ::testing::Values(
        Bad{"GET /\r\n\r\n", 400}, Bad{"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        Bad{"GET / HTTP/1.1 x\r\nHost: x\r\n\r\n", 400}, Bad{"G(T / HTTP/1.1\r\n\r\n", 400},
        Bad{"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505}, Bad{"GET / HTTX/1.1\r\n\r\n", 400},
        Bad{"GET / HTTP/1.1\r\n\r\n", 400},  // no Host
        Bad{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        Bad{"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
        Bad{"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400},
        Bad{"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400},
        Bad{"GET / HTTP/1.1\r\nHost: x\x01y\r\n\r\n", 400},
        Bad{"GET sip.ld HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        Bad{"PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        Bad{"PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
        Bad{"PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400},
        Bad{"PUT /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        Bad{"PUT /a HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417}),
    [](const ::testing::TestParamInfo<Bad>& p) { return "Case" + std::to_string(p.index); });

TEST(RequestParserTest, RequestLineLimitIs414) {
  std::string at_limit = "GET /" + std::string(kMaxRequestLineBytes - 14, 'a') + " HTTP/1.1";
  ASSERT_EQ(at_limit.size(), kMaxRequestLineBytes);
  Request r;
  EXPECT_EQ(ParseRequestHead(at_limit + "\r\nHost: x\r\n\r\n", &r).status, ParseStatus::kComplete);
  std::string over = "GET /" + std::string(kMaxRequestLineBytes - 13, 'a') + " HTTP/1.1";
  ParseResult p = ParseRequestHead(over + "\r\nHost: x\r\n\r\n", &r);
  EXPECT_EQ(p.http_status, 414);
  // Without its line end yet: still refused once past the limit, never buffered forever.
  EXPECT_EQ(ParseRequestHead(std::string(kMaxRequestLineBytes, 'a'), &r).status,
            ParseStatus::kNeedMore);
  EXPECT_EQ(ParseRequestHead(std::string(kMaxRequestLineBytes + 1, 'a'), &r).http_status, 414);
  // A read ending between the CR and LF of a line of exactly the limit is not yet too long.
  EXPECT_EQ(ParseRequestHead(at_limit + "\r", &r).status, ParseStatus::kNeedMore);
}

TEST(RequestParserTest, HeadLimitIs431) {
  std::string start = "GET / HTTP/1.1\r\nHost: x\r\n";
  auto with_filler = [&](size_t total) {
    std::string filler = "X: " + std::string(total - start.size() - 2 - 5, 'v') + "\r\n";
    return start + filler + "\r\n";
  };
  Request r;
  std::string at = with_filler(kMaxHeadBytes);
  ASSERT_EQ(at.size(), kMaxHeadBytes);
  EXPECT_EQ(ParseRequestHead(at, &r).status, ParseStatus::kComplete);
  std::string over = with_filler(kMaxHeadBytes + 1);
  EXPECT_EQ(ParseRequestHead(over, &r).http_status, 431);
  std::string unfinished = with_filler(kMaxHeadBytes + 3);
  unfinished.resize(unfinished.size() - 2);  // kMaxHeadBytes + 1 bytes, no empty line yet
  EXPECT_EQ(ParseRequestHead(unfinished, &r).http_status, 431)
      << "refused before the head is complete";
}

TEST(RequestParserTest, HeaderCountLimitIs431) {
  auto with_fields = [](size_t n) {
    std::string h = "GET / HTTP/1.1\r\nHost: x\r\n";
    for (size_t i = 1; i < n; ++i) h += "X" + std::to_string(i) + ": 1\r\n";
    return h + "\r\n";
  };
  Request r;
  EXPECT_EQ(ParseRequestHead(with_fields(kMaxHeaderCount), &r).status, ParseStatus::kComplete);
  EXPECT_EQ(ParseRequestHead(with_fields(kMaxHeaderCount + 1), &r).http_status, 431);
}

}  // namespace
}  // namespace siterelay::http
