#include "relay/base/strings.h"

#include <gtest/gtest.h>

namespace siterelay {
namespace {

TEST(StringsTest, DecodeUtf8TakesOneStrictSequence) {
  EXPECT_EQ(DecodeUtf8("a").length, 1u);
  EXPECT_EQ(DecodeUtf8("\xC3\xA9x").length, 2u);  // é
  EXPECT_EQ(DecodeUtf8("\xC3\xA9x").code_point, 0xE9u);
  EXPECT_EQ(DecodeUtf8("\xE2\x82\xAC").code_point, 0x20ACu);  // €
  EXPECT_EQ(DecodeUtf8("\xF0\x9F\x93\x9E").code_point, 0x1F4DEu);
  EXPECT_EQ(DecodeUtf8("\xF4\x8F\xBF\xBF").code_point, 0x10FFFFu);
  EXPECT_EQ(DecodeUtf8("").length, 0u);
  EXPECT_EQ(DecodeUtf8("\x80").length, 0u) << "a continuation byte first";
  EXPECT_EQ(DecodeUtf8("\xC0\xAE").length, 0u) << "an overlong '.'";
  EXPECT_EQ(DecodeUtf8("\xE0\x80\xAF").length, 0u) << "an overlong '/'";
  EXPECT_EQ(DecodeUtf8("\xF0\x80\x80\xAF").length, 0u) << "an overlong '/'";
  EXPECT_EQ(DecodeUtf8("\xED\xA0\x80").length, 0u) << "a surrogate";
  EXPECT_EQ(DecodeUtf8("\xF4\x90\x80\x80").length, 0u) << "past U+10FFFF";
  EXPECT_EQ(DecodeUtf8("\xE2\x82").length, 0u) << "cut short";
  EXPECT_EQ(DecodeUtf8("\xC3(").length, 0u) << "not a continuation";
}

TEST(StringsTest, ValidUtf8IsAllSequences) {
  EXPECT_TRUE(ValidUtf8(""));
  EXPECT_TRUE(ValidUtf8("caf\xC3\xA9 \xE2\x82\xAC"));
  EXPECT_FALSE(ValidUtf8("caf\xE9"));
  EXPECT_FALSE(ValidUtf8("ok\xC0\xAE"));
}

}  // namespace
}  // namespace siterelay
