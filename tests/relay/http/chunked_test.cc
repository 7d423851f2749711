#include "relay/http/chunked.h"

#include <gtest/gtest.h>

#include "relay/http/limits.h"

namespace siterelay::http {
namespace {

// Feeds `wire` in pieces of `step` bytes; returns the body, or "<invalid>"/"<incomplete>".
std::string Decode(std::string_view wire, size_t step) {
  ChunkedDecoder d;
  std::string body;
  for (size_t off = 0; off < wire.size(); off += step) {
    std::string_view in = wire.substr(off, step), data;
    for (;;) {
      auto s = d.Next(&in, &data);
      if (s == ChunkedDecoder::kData) {
        body.append(data);
        continue;
      }
      if (s == ChunkedDecoder::kInvalid) return "<invalid>";
      if (s == ChunkedDecoder::kDone) return body;
      break;
    }
  }
  return "<incomplete>";
}

TEST(ChunkedDecoderTest, DecodesWhateverThePieces) {
  std::string wire = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: y\r\n\r\n";
  for (size_t step : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{100}}) EXPECT_EQ(Decode(wire, step), "hello, world") << step;
}

TEST(ChunkedDecoderTest, HexSizesAndBareLineFeeds) {
  EXPECT_EQ(Decode("A\nabcdefghij\n0\n\n", 4), "abcdefghij");
  EXPECT_EQ(Decode("a \r\n0123456789\r\n0\r\n\r\n", 5), "0123456789");
}

TEST(ChunkedDecoderTest, RefusesMalformedFraming) {
  EXPECT_EQ(Decode("5\r\nhello!\r\n0\r\n\r\n", 100), "<invalid>") << "data longer than size";
  EXPECT_EQ(Decode("x\r\n", 100), "<invalid>");
  EXPECT_EQ(Decode("\r\n", 100), "<invalid>");
  EXPECT_EQ(Decode("5 x\r\nhello\r\n", 100), "<invalid>");
  EXPECT_EQ(Decode("11111111111111111\r\n", 100), "<invalid>") << "size past 2^64";
  EXPECT_EQ(Decode("5\r\nhel", 100), "<incomplete>");
}

TEST(ChunkedDecoderTest, ChunkLineLimit) {
  std::string ext_at = "1;" + std::string(kMaxChunkLineBytes - 2, 'e') + "\r\nx\r\n0\r\n\r\n";
  EXPECT_EQ(Decode(ext_at, 64), "x");
  std::string ext_over = "1;" + std::string(kMaxChunkLineBytes - 1, 'e') + "\r\nx\r\n0\r\n\r\n";
  EXPECT_EQ(Decode(ext_over, 64), "<invalid>");
}

TEST(ChunkedDecoderTest, TrailerLimit) {
  std::string at = "0\r\nT: " + std::string(kMaxTrailerBytes - 5, 't') + "\r\n\r\n";
  EXPECT_EQ(Decode(at, 100), "");
  std::string over = "0\r\nT: " + std::string(kMaxTrailerBytes, 't') + "\r\n\r\n";
  EXPECT_EQ(Decode(over, 100), "<invalid>");
}

}  // namespace
}  // namespace siterelay::http
