#include "relay/base/sha256.h"

#include <gtest/gtest.h>

#include "relay/base/mime.h"

namespace siterelay {
namespace {

TEST(Sha256Test, KnownVectors) {
  // FIPS 180-2 examples.
  EXPECT_EQ(Sha256::Of("").Hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::Of("abc").Hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, IncrementalEqualsOneShotAndResets) {
  Sha256 h;
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(h.Finish(), Sha256::Of("abc"));
  h.Update("abc");
  EXPECT_EQ(h.Finish(), Sha256::Of("abc")) << "Finish() resets the hasher";
}

TEST(DigestTest, HexRoundTripsAndRejectsGarbage) {
  Digest d = Sha256::Of("abc");
  auto back = Digest::FromHex(d.Hex());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, d);
  auto upper = Digest::FromHex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ(*upper, d);
  EXPECT_FALSE(Digest::FromHex("abc").ok());
  EXPECT_FALSE(Digest::FromHex(std::string(63, 'a') + "g").ok());
}

TEST(MimeTest, ContractTypes) {
  EXPECT_EQ(ContentTypeForPath("000000000000.cfg"), "application/xml");
  EXPECT_EQ(ContentTypeForPath("dir/0004F2-directory.XML"), "application/xml");
  EXPECT_EQ(ContentTypeForPath("3111-44500-001.sip.ld"), "application/octet-stream");
  EXPECT_EQ(ContentTypeForPath("fw.bin"), "application/octet-stream");
  EXPECT_EQ(ContentTypeForPath("sip.ver"), "text/plain");
  EXPECT_EQ(ContentTypeForPath("0004f282e824-app.log"), "text/plain");
  EXPECT_EQ(ContentTypeForPath("readme.txt"), "text/plain");
  EXPECT_EQ(ContentTypeForPath("noextension"), "application/octet-stream");
  EXPECT_EQ(ContentTypeForPath("a.cfg/strange.wav"), "application/octet-stream");
}

TEST(MimeTest, ContentClasses) {
  EXPECT_EQ(ContentClassOf("fw/3111-44500-001.sip.LD"), ContentClass::kFirmware);
  EXPECT_EQ(ContentClassOf("bootrom.bin"), ContentClass::kFirmware);
  EXPECT_EQ(ContentClassOf("000000000000.cfg"), ContentClass::kConfig);
  EXPECT_EQ(ContentClassOf("0004f282e824-directory.xml"), ContentClass::kConfig);
  EXPECT_EQ(ContentClassOf("sip.ver"), ContentClass::kOther);
  EXPECT_EQ(ContentClassOf("a.ld/readme"), ContentClass::kOther);
  EXPECT_EQ(ContentClassName(ContentClass::kFirmware), "firmware");
}

}  // namespace
}  // namespace siterelay
