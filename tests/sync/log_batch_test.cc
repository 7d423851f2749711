#include "sync/log_batch.h"

#include <gtest/gtest.h>
#include <zdict.h>
#include <zstd.h>

#include <nlohmann/json.hpp>

namespace siterelay::sync {
namespace {

std::string Json(std::string_view s) {
  std::string out;
  AppendJsonString(&out, s);
  return out;
}

TEST(LogBatchTest, JsonStringsEscapeQuotesBackslashesAndControls) {
  EXPECT_EQ(Json("plain |copy |3|00|ok"), "\"plain |copy |3|00|ok\"");
  EXPECT_EQ(Json("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(Json("t\tn\nr\r"), "\"t\\tn\\nr\\r\"");
  EXPECT_EQ(Json(std::string("\x01\x1f", 2)), "\"\\u0001\\u001f\"");
  EXPECT_EQ(Json(std::string("nul\0x", 5)), "\"nul\\u0000x\"");
}

TEST(LogBatchTest, ValidUtf8IsKeptAndInvalidBytesBecomeReplacementCharacters) {
  EXPECT_EQ(Json("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x93\x9E"),
            "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x93\x9E\"");
  EXPECT_EQ(Json("a\xFF" "b"), "\"a\xEF\xBF\xBD" "b\"");
  EXPECT_EQ(Json("\xC0\xAF"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");  // overlong '/'
  EXPECT_EQ(Json("\xED\xA0\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");  // surrogate
  EXPECT_EQ(Json("\xE2\x82"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");  // cut short
  // Whatever the bytes, the result parses.
  std::string garbage;
  for (int i = 0; i < 256; ++i) garbage.push_back(static_cast<char>(i));
  EXPECT_TRUE(nlohmann::json::accept(Json(garbage)));
}

TEST(LogBatchTest, ARecordHasTheContractsFields) {
  std::string out;
  AppendLogRecord(&out, "branch-042", "0004f282e824", "app", 17, 1795636800,
                  "0517184023|copy |3|00|'https://host/000000000000.cfg'");
  ASSERT_EQ(out.back(), '\n');
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["relay"], "branch-042");
  EXPECT_EQ(j["mac"], "0004f282e824");
  EXPECT_EQ(j["file"], "app");
  EXPECT_EQ(j["seq"], 17);
  EXPECT_EQ(j["received"], "2026-11-25T20:00:00Z");
  EXPECT_EQ(j["line"], "0517184023|copy |3|00|'https://host/000000000000.cfg'");
}

TEST(LogBatchTest, AFrameDecodesWithPlainZstdAndKnowsItsSize) {
  std::string data;
  for (int i = 0; i < 1000; ++i) AppendLogRecord(&data, "r", "0004f2aabbcc", "boot", 1, 0, "x");
  auto frame = CompressFrame(data);
  ASSERT_TRUE(frame.ok());
  EXPECT_LT(frame->size(), data.size() / 10);
  unsigned long long size = ZSTD_getFrameContentSize(frame->data(), frame->size());
  ASSERT_EQ(size, data.size());
  std::string back(size, '\0');
  size_t n = ZSTD_decompress(back.data(), back.size(), frame->data(), frame->size());
  ASSERT_FALSE(ZSTD_isError(n));
  EXPECT_EQ(back, data);
}

// A small dictionary trained on phone-like records.
std::string TrainDictionary() {
  std::string samples;
  std::vector<size_t> sizes;
  for (int i = 0; i < 400; ++i) {
    std::string one;
    for (int j = 0; j < 8; ++j) {
      AppendLogRecord(&one, "branch-042", "0004f2" + std::to_string(100000 + i % 37), "app",
                      static_cast<uint64_t>(i * 8 + j), 1795636800 + i,
                      "0517184023|copy |3|00|'https://prov.example.com/" + std::to_string(i * j) +
                          ".cfg' from 'prov.example.com(10.1.2.3)'");
    }
    samples += one;
    sizes.push_back(one.size());
  }
  std::string dict(16 * 1024, '\0');
  size_t n = ZDICT_trainFromBuffer(dict.data(), dict.size(), samples.data(), sizes.data(),
                                   static_cast<unsigned>(sizes.size()));
  EXPECT_FALSE(ZDICT_isError(n)) << ZDICT_getErrorName(n);
  dict.resize(ZDICT_isError(n) ? 0 : n);
  return dict;
}

TEST(LogBatchTest, AFrameWithADictionaryNamesItAndNeedsItToDecode) {
  std::string dict = TrainDictionary();
  ASSERT_FALSE(dict.empty());
  std::string data;
  for (int i = 0; i < 50; ++i) {
    AppendLogRecord(&data, "branch-042", "0004f2100007", "app", static_cast<uint64_t>(i), 0,
                    "0517184023|copy |3|00|'https://prov.example.com/x.cfg'");
  }
  auto frame = CompressFrame(data, kLogBatchLevel, dict);
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(ZSTD_getDictID_fromFrame(frame->data(), frame->size()),
            ZSTD_getDictID_fromDict(dict.data(), dict.size()));
  std::string back(data.size(), '\0');
  EXPECT_TRUE(ZSTD_isError(ZSTD_decompress(back.data(), back.size(), frame->data(), frame->size())))
      << "plain zstd -d cannot read it";
  ZSTD_DCtx* d = ZSTD_createDCtx();
  size_t n = ZSTD_decompress_usingDict(d, back.data(), back.size(), frame->data(), frame->size(),
                                       dict.data(), dict.size());
  ZSTD_freeDCtx(d);
  ASSERT_FALSE(ZSTD_isError(n));
  EXPECT_EQ(back, data);
}

TEST(LogBatchTest, LinesSplitOnLfAndCrLfAndAPartialLineWaitsUnlessTaken) {
  size_t rest = 0;
  auto lines = SplitLines("a\r\nbb\n\nccc", false, &rest);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "a");
  EXPECT_EQ(lines[1], "bb");
  EXPECT_EQ(lines[2], "");
  EXPECT_EQ(rest, 7u);
  lines = SplitLines("a\nccc", true, &rest);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "ccc");
  EXPECT_EQ(rest, 5u);
  lines = SplitLines("no end", false, &rest);
  EXPECT_TRUE(lines.empty());
  EXPECT_EQ(rest, 0u);
}

TEST(LogBatchTest, TimesAreRfc3339Utc) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(1795636800), "2026-11-25T20:00:00Z");
}

}  // namespace
}  // namespace siterelay::sync
