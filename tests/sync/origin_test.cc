#include "sync/origin.h"

#include <gtest/gtest.h>

namespace siterelay::sync {
namespace {

TEST(OriginsTest, FirstMatchingRouteWinsAndTheRestGoToOrigin) {
  OriginConfig c;
  c.url = "https://prov.example.com/tenant/";
  c.routes.push_back({"*.ld", "https://fw.example.com/ucs/", "", ""});
  c.routes.push_back({"fw/*", "https://other.example.com/", "", ""});
  Origins o(c);
  EXPECT_TRUE(o.enabled());
  EXPECT_EQ(o.Route("sip.ld"), 1u);
  EXPECT_EQ(o.Route("fw/3111-44500-001.sip.ld"), 1u);  // '*' crosses '/'
  EXPECT_EQ(o.Route("fw/readme.txt"), 2u);
  EXPECT_EQ(o.Route("000000000000.cfg"), 0u);
  EXPECT_EQ(o.UrlFor(1, "fw/sip.ld"), "https://fw.example.com/ucs/fw/sip.ld");
  EXPECT_EQ(o.UrlFor(0, "a.cfg"), "https://prov.example.com/tenant/a.cfg");
}

TEST(OriginsTest, NoUrlMeansNoOrigin) {
  EXPECT_FALSE(Origins(OriginConfig{}).enabled());
}

TEST(OriginsTest, PathsArePercentEncodedExceptSlashAndUnreserved) {
  EXPECT_EQ(EncodePath("dir with space/a+b%.cfg"), "dir%20with%20space/a%2Bb%25.cfg");
  EXPECT_EQ(EncodePath("A-z_0.9~/x"), "A-z_0.9~/x");
  EXPECT_EQ(EncodePath("caf\xc3\xa9.xml"), "caf%C3%A9.xml");
  EXPECT_EQ(EncodePath("a?b#c"), "a%3Fb%23c");
}

}  // namespace
}  // namespace siterelay::sync
