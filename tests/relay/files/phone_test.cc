#include "relay/files/phone.h"

#include <gtest/gtest.h>

namespace siterelay::files {
namespace {

TEST(UploadNameTest, AcceptsTheContractNamesCaseInsensitively) {
  UploadName n = ClassifyUpload("0004f282e824-app.log");
  EXPECT_EQ(n.kind, UploadName::kLog);
  EXPECT_EQ(n.mac, "0004f282e824");
  EXPECT_EQ(n.what, "app");
  EXPECT_EQ(ClassifyUpload("0004F282E824-BOOT.LOG").what, "boot");
  EXPECT_EQ(ClassifyUpload("0004F282E824-boot.log").mac, "0004f282e824");
  for (const char* s : {"0004f282e824-phone.cfg", "0001A11A1A1A-Web.cfg", "0004f282e824-local.cfg",
                        "0004f282e824-directory.xml", "0004f282e824-calls.xml"}) {
    EXPECT_EQ(ClassifyUpload(s).kind, UploadName::kSettings) << s;
  }
}

TEST(UploadNameTest, RefusesEverythingElse) {
  for (const char* s : {"0004f282e824.cfg", "000000000000.cfg", "0004f282e824-app.log.bak",
                        "0004f282e82-app.log", "0004f282e8245-app.log", "g004f282e824-app.log",
                        "sip.ld", "0004f282e824-license.cfg", "0004f282e824_app.log", ""}) {
    EXPECT_EQ(ClassifyUpload(s).kind, UploadName::kNone) << s;
  }
}

TEST(MacTest, FromFileNames) {
  EXPECT_EQ(MacFromFileName("0004F282E824.cfg"), "0004f282e824");
  EXPECT_EQ(MacFromFileName("0004f282e824-directory.xml"), "0004f282e824");
  EXPECT_EQ(MacFromFileName("000000000000.cfg"), std::nullopt);
  EXPECT_EQ(MacFromFileName("3111-44500-001.sip.ld"), std::nullopt);
  EXPECT_EQ(MacFromFileName("0004f282e824"), std::nullopt);
}

TEST(UserAgentTest, PhonesOfEveryFamily) {
  auto vvx = ParseUserAgent("FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application");
  ASSERT_TRUE(vvx.has_value());
  EXPECT_EQ(vvx->model, "VVX_500");
  EXPECT_EQ(vvx->firmware, "5.9.7.47435");
  EXPECT_EQ(vvx->mac, "");
  auto spip = ParseUserAgent(
      "FileTransport PolycomSoundPointIP-SPIP_550-UA/4.0.15.1047 (SN:0004a11a1a1a) "
      "Type/Application");
  ASSERT_TRUE(spip.has_value());
  EXPECT_EQ(spip->model, "SPIP_550");
  EXPECT_EQ(spip->mac, "0004a11a1a1a");
  auto edge = ParseUserAgent("FileTransport PolyEdge-Edge_E450-UA/8.0.2 Type/Application");
  ASSERT_TRUE(edge.has_value());
  EXPECT_EQ(edge->model, "Edge_E450");
  EXPECT_EQ(edge->firmware, "8.0.2");
  EXPECT_FALSE(ParseUserAgent("curl/7.88.1").has_value());
  EXPECT_FALSE(ParseUserAgent("Microbrowser/1.1").has_value());
}

}  // namespace
}  // namespace siterelay::files
