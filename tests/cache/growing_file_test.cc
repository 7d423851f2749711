#include "cache/growing_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/testing/temp_dir.h"

namespace siterelay::cache {
namespace {

ScopedFd OpenRead(const std::string& path) {
  return ScopedFd(FileSystem::Default(), ::open(path.c_str(), O_RDONLY | O_CLOEXEC));
}

class GrowingFileTest : public ::testing::Test {
 protected:
  void SetUp() override { siterelay::testing::WriteFile(dir_ / "blob", "0123456789"); }
  siterelay::testing::TempDir dir_;
};

TEST_F(GrowingFileTest, HoldsBackTheLastByteOfAKnownSizeUntilComplete) {
  GrowingFile g(OpenRead(dir_ / "blob"), 10);
  g.Grow(4);
  EXPECT_EQ(g.readable(), 4u);
  g.Grow(10);
  EXPECT_EQ(g.readable(), 9u);  // all written, not yet verified
  g.Complete();
  EXPECT_EQ(g.readable(), 10u);
}

TEST_F(GrowingFileTest, UnknownSizeIsReadableAsWritten) {
  GrowingFile g(OpenRead(dir_ / "blob"), std::nullopt);
  g.Grow(10);
  EXPECT_EQ(g.readable(), 10u);  // the end is signalled by Complete(), not by a length
  EXPECT_FALSE(g.complete());
}

TEST_F(GrowingFileTest, WaitersRunWhenTheirOffsetBecomesReadable) {
  GrowingFile g(OpenRead(dir_ / "blob"), 10);
  std::vector<int> woke;
  g.Wait(0, [&] { woke.push_back(0); });
  g.Wait(5, [&] { woke.push_back(5); });
  g.Grow(3);
  EXPECT_EQ(woke, std::vector<int>{0});
  g.Grow(6);
  EXPECT_EQ(woke, (std::vector<int>{0, 5}));
  bool at_once = false;
  g.Wait(2, [&] { at_once = true; });  // already readable: runs now
  EXPECT_TRUE(at_once);
}

TEST_F(GrowingFileTest, FailureWakesEveryWaiterWithTheReason) {
  GrowingFile g(OpenRead(dir_ / "blob"), 10);
  int woke = 0;
  g.Wait(7, [&] { ++woke; });
  g.Wait(8, [&] { ++woke; });
  g.Fail(Status::Unavailable("origin reset the connection"));
  EXPECT_EQ(woke, 2);
  EXPECT_TRUE(g.failed());
  EXPECT_EQ(g.error().message(), "origin reset the connection");
}

TEST_F(GrowingFileTest, ReadersKeepTheirBytesAfterTheFileIsRenamedOrRemoved) {
  GrowingFile g(OpenRead(dir_ / "blob"), 10);
  auto fd = g.Dup();
  ASSERT_TRUE(fd.ok());
  ASSERT_EQ(::unlink((dir_ / "blob").c_str()), 0);
  char buf[10];
  EXPECT_EQ(::pread(fd->get(), buf, sizeof buf, 0), 10);
  EXPECT_EQ(std::string(buf, 10), "0123456789");
}

}  // namespace
}  // namespace siterelay::cache
