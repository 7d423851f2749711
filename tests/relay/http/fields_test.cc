#include "relay/http/fields.h"

#include <gtest/gtest.h>

namespace siterelay::http {
namespace {

TEST(RangeTest, SingleRanges) {
  ByteRange r = ParseRange("bytes=0-499", 1000);
  EXPECT_EQ(r.kind, ByteRange::kSatisfiable);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.last, 499u);
  r = ParseRange("bytes=500-", 1000);
  EXPECT_EQ(r.first, 500u);
  EXPECT_EQ(r.last, 999u);
  r = ParseRange("bytes=-100", 1000);
  EXPECT_EQ(r.first, 900u);
  EXPECT_EQ(r.last, 999u);
  r = ParseRange("bytes=-5000", 1000);
  EXPECT_EQ(r.first, 0u) << "a suffix longer than the file is the whole file";
  r = ParseRange("bytes=900-5000", 1000);
  EXPECT_EQ(r.last, 999u) << "the last position is clamped";
}

TEST(RangeTest, UnsatisfiableAndIgnored) {
  EXPECT_EQ(ParseRange("bytes=1000-", 1000).kind, ByteRange::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=-0", 1000).kind, ByteRange::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=0-", 0).kind, ByteRange::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=5-1", 1000).kind, ByteRange::kIgnore);
  EXPECT_EQ(ParseRange("bytes=0-1,5-6", 1000).kind, ByteRange::kIgnore);
  EXPECT_EQ(ParseRange("items=0-1", 1000).kind, ByteRange::kIgnore);
  EXPECT_EQ(ParseRange("bytes=x-1", 1000).kind, ByteRange::kIgnore);
}

TEST(EtagTest, WeakComparisonAndStar) {
  EXPECT_TRUE(EtagListMatches("\"abc\"", "\"abc\""));
  EXPECT_TRUE(EtagListMatches("W/\"abc\"", "\"abc\""));
  EXPECT_TRUE(EtagListMatches("\"x\", \"abc\"", "\"abc\""));
  EXPECT_TRUE(EtagListMatches("*", "\"abc\""));
  EXPECT_FALSE(EtagListMatches("\"abcd\"", "\"abc\""));
}

TEST(BasicAuthTest, DecodesCredentialsIncludingDomainUsers) {
  auto c = ParseBasicAuth("Basic UGxjbVNwSXA6UGxjbVNwSXA=");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->user, "PlcmSpIp");
  EXPECT_EQ(c->password, "PlcmSpIp");
  auto d = ParseBasicAuth("basic c2JhaWVyaG9tZVxmdHB1c2VyOnA6dw==");  // sbaierhome\ftpuser:p:w
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->user, "sbaierhome\\ftpuser");
  EXPECT_EQ(d->password, "p:w");
  EXPECT_FALSE(ParseBasicAuth("Bearer abc").has_value());
  EXPECT_FALSE(ParseBasicAuth("Basic !!!!").has_value());
  EXPECT_FALSE(ParseBasicAuth("Basic dXNlcg==").has_value()) << "no colon";
  EXPECT_FALSE(ParseBasicAuth("Basic YQ=b").has_value()) << "data after padding";
}

}  // namespace
}  // namespace siterelay::http
