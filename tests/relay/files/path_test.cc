#include "relay/files/path.h"

#include <gtest/gtest.h>

namespace siterelay::files {
namespace {

// Decode (as HTTP does) then normalise; "denied", "invalid" or the catalog path.
std::string Http(std::string_view raw) {
  auto d = PercentDecode(raw);
  if (!d.ok()) return "invalid";
  auto n = NormalizePath(*d);
  if (!n.ok()) return n.status().Is(StatusCode::kPermissionDenied) ? "denied" : "invalid";
  return *n;
}

TEST(PathTest, NormalisesHarmlessForms) {
  EXPECT_EQ(Http("/000000000000.cfg"), "000000000000.cfg");
  EXPECT_EQ(Http("//a///b/./c.cfg"), "a/b/c.cfg");
  EXPECT_EQ(Http("/a%20b.cfg"), "a b.cfg");
  EXPECT_EQ(Http("/"), "");
  EXPECT_EQ(Http("/caf%C3%A9.xml"), "caf\xc3\xa9.xml");
}

TEST(PathTest, RefusesEveryEscape) {
  for (const char* raw :
       {"/../etc/passwd", "/a/../../etc/passwd", "/a/..", "/%2e%2e/etc/passwd", "/%2E%2E%2Fetc",
        "/a%2f..%2f..%2fetc", "/..\\etc", "/a%5c..%5cetc", "/a%00.cfg", "/%c0%ae%c0%ae/etc",
        "/%e0%80%ae%e0%80%ae/etc", "/%c0%af", "/%ed%a0%80", "/%ff"}) {
    EXPECT_EQ(Http(raw), "denied") << raw;
  }
}

TEST(PathTest, RefusesGarbage) {
  EXPECT_EQ(Http("/a%2"), "invalid");
  EXPECT_EQ(Http("/a%zz"), "invalid");
  EXPECT_EQ(Http("/a%0a"), "invalid");
}

TEST(PathTest, JoinsAccountRoots) {
  EXPECT_EQ(JoinRoot("/", "sip.ld"), "sip.ld");
  EXPECT_EQ(JoinRoot("/tenant", "sip.ld"), "tenant/sip.ld");
  EXPECT_EQ(JoinRoot("/tenant/", ""), "tenant");
  EXPECT_EQ(BaseName("a/b/0004f282e824-app.log"), "0004f282e824-app.log");
  EXPECT_EQ(BaseName("x.cfg"), "x.cfg");
}

}  // namespace
}  // namespace siterelay::files
