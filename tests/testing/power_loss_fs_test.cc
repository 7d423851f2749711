// The power-loss file system itself: what survives a cut is what was synced, nothing more.
#include "tests/testing/power_loss_fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "tests/testing/temp_dir.h"

namespace siterelay::testing {
namespace {

class PowerLossFsTest : public ::testing::Test {
 protected:
  // Opens `rel` under the temp dir through the file system under test.
  int OpenFor(PowerLossFileSystem& fs, const std::string& rel, int flags) {
    auto fd = fs.Open(dir_ / rel, flags, 0644);
    EXPECT_TRUE(fd.ok()) << fd.status().ToString();
    return fd.ok() ? *fd : -1;
  }
  static void Write(PowerLossFileSystem& fs, int fd, const std::string& s) {
    ASSERT_TRUE(fs.WriteAll(fd, {reinterpret_cast<const uint8_t*>(s.data()), s.size()}).ok());
  }
  bool Exists(const std::string& rel) {
    struct stat st;
    return ::stat((dir_ / rel).c_str(), &st) == 0;
  }

  TempDir dir_;
};

TEST_F(PowerLossFsTest, UnsyncedAppendsAreLostAndSyncedOnesKept) {
  WriteFile(dir_ / "spool/a.log", "before\n");  // there when the power-loss model starts
  PowerLossFileSystem fs(dir_.path());
  int fd = OpenFor(fs, "spool/a.log", O_WRONLY | O_APPEND);
  Write(fs, fd, "synced\n");
  ASSERT_TRUE(fs.Fsync(fd).ok());
  Write(fs, fd, "not synced\n");
  EXPECT_EQ(ReadFile(dir_ / "spool/a.log"), "before\nsynced\nnot synced\n");
  fs.CutPower();
  EXPECT_FALSE(fs.Fsync(fd).ok()) << "no call succeeds after the cut";
  EXPECT_TRUE(fs.Close(fd).ok()) << "the kernel still closes a dead process's fds";
  fs.Restore();
  EXPECT_EQ(ReadFile(dir_ / "spool/a.log"), "before\nsynced\n");
}

TEST_F(PowerLossFsTest, ACreatedFileIsGoneWithoutFsyncDirAndEmptyWithoutFsync) {
  std::filesystem::create_directories(dir_ / "spool");
  PowerLossFileSystem fs(dir_.path());
  int a = OpenFor(fs, "spool/synced-no-dir.log", O_WRONLY | O_CREAT);
  Write(fs, a, "data\n");
  ASSERT_TRUE(fs.Fsync(a).ok());
  ASSERT_TRUE(fs.Close(a).ok());
  ASSERT_TRUE(fs.FsyncDir(dir_ / "spool/").ok());  // the trailing slash names the same folder
  int b = OpenFor(fs, "spool/dir-no-sync.log", O_WRONLY | O_CREAT);
  Write(fs, b, "lost\n");
  ASSERT_TRUE(fs.FsyncDir(dir_ / "spool").ok());
  int c = OpenFor(fs, "spool/neither.log", O_WRONLY | O_CREAT);
  Write(fs, c, "lost\n");
  ASSERT_TRUE(fs.Fsync(c).ok());
  fs.CutPower();
  ASSERT_TRUE(fs.Close(b).ok());
  ASSERT_TRUE(fs.Close(c).ok());
  fs.Restore();
  EXPECT_EQ(ReadFile(dir_ / "spool/synced-no-dir.log"), "data\n")
      << "created before the FsyncDir: the name is durable, and its bytes were synced";
  EXPECT_TRUE(Exists("spool/dir-no-sync.log"));
  EXPECT_EQ(ReadFile(dir_ / "spool/dir-no-sync.log"), "") << "a name without its bytes";
  EXPECT_FALSE(Exists("spool/neither.log")) << "synced bytes, but no FsyncDir: gone";
}

TEST_F(PowerLossFsTest, ARenameWithoutFsyncDirIsRevertedAndWithItStays) {
  WriteFile(dir_ / "d/target", "old");
  PowerLossFileSystem fs(dir_.path());
  for (bool sync_dir : {false, true}) {
    SCOPED_TRACE(sync_dir ? "with FsyncDir" : "without FsyncDir");
    int fd = OpenFor(fs, "d/.target.tmp", O_WRONLY | O_CREAT | O_TRUNC);
    Write(fs, fd, "new");
    ASSERT_TRUE(fs.Fsync(fd).ok());
    ASSERT_TRUE(fs.Close(fd).ok());
    ASSERT_TRUE(fs.Rename(dir_ / "d/.target.tmp", dir_ / "d/target").ok());
    if (sync_dir) {
      ASSERT_TRUE(fs.FsyncDir(dir_ / "d").ok());
    }
    EXPECT_EQ(ReadFile(dir_ / "d/target"), "new");
    fs.CutPower();
    fs.Restore();
    EXPECT_EQ(ReadFile(dir_ / "d/target"), sync_dir ? "new" : "old");
    EXPECT_FALSE(Exists("d/.target.tmp")) << "its creation was never durable";
  }
}

TEST_F(PowerLossFsTest, ARenameAcrossFoldersIsDurableAsAWholeOnceItsTargetFolderIsSynced) {
  std::filesystem::create_directories(dir_ / "objects/ab");
  WriteFile(dir_ / "tmp/blob", "content");
  PowerLossFileSystem fs(dir_.path());
  ASSERT_TRUE(fs.Rename(dir_ / "tmp/blob", dir_ / "objects/ab/abcd").ok());
  ASSERT_TRUE(fs.FsyncDir(dir_ / "objects/ab").ok());
  fs.CutPower();
  fs.Restore();
  EXPECT_EQ(ReadFile(dir_ / "objects/ab/abcd"), "content");
  EXPECT_FALSE(Exists("tmp/blob")) << "one journal operation: not both names";
}

TEST_F(PowerLossFsTest, AnUnlinkWithoutFsyncDirIsUndoneWithTheDurableBytes) {
  WriteFile(dir_ / "spool/batches/1.ndjson.zst", "first");
  WriteFile(dir_ / "spool/batches/2.ndjson.zst", "second");
  PowerLossFileSystem fs(dir_.path());
  ASSERT_TRUE(fs.Unlink(dir_ / "spool/batches/1.ndjson.zst").ok());
  ASSERT_TRUE(fs.FsyncDir(dir_ / "spool/batches").ok());
  ASSERT_TRUE(fs.Unlink(dir_ / "spool/batches/2.ndjson.zst").ok());
  WriteFile(dir_ / "spool/batches/3.ndjson.zst", "made around the seam");
  ASSERT_TRUE(fs.Unlink(dir_ / "spool/batches/3.ndjson.zst").ok());
  fs.CutPower();
  fs.Restore();
  EXPECT_FALSE(Exists("spool/batches/1.ndjson.zst"));
  EXPECT_EQ(ReadFile(dir_ / "spool/batches/2.ndjson.zst"), "second");
  EXPECT_FALSE(Exists("spool/batches/3.ndjson.zst")) << "never durable, so not brought back";
}

TEST_F(PowerLossFsTest, CutAfterFailsTheNthMutatingCallAndEveryCallAfterIt) {
  std::filesystem::create_directories(dir_ / "spool");
  PowerLossFileSystem fs(dir_.path());
  fs.CutAfter(3);
  int fd = OpenFor(fs, "spool/x.log", O_WRONLY | O_CREAT);  // 1
  Write(fs, fd, "a");                                       // 2
  auto ro = fs.Open(dir_ / "spool/x.log", O_RDONLY, 0);     // reads do not count
  ASSERT_TRUE(ro.ok());
  ASSERT_TRUE(fs.Close(*ro).ok());
  EXPECT_FALSE(fs.Fsync(fd).ok());  // 3: the cut
  EXPECT_TRUE(fs.cut());
  EXPECT_FALSE(fs.FsyncDir(dir_ / "spool").ok());
  EXPECT_FALSE(fs.Open(dir_ / "spool/x.log", O_RDONLY, 0).ok());
  EXPECT_FALSE(fs.MakeDirs(dir_ / "more").ok());
  EXPECT_EQ(fs.mutating_calls(), 4u);
  ASSERT_TRUE(fs.Close(fd).ok());
  fs.Restore();
  EXPECT_FALSE(Exists("spool/x.log"));
  EXPECT_FALSE(fs.cut()) << "a new life";
  EXPECT_EQ(fs.mutating_calls(), 0u);
}

TEST_F(PowerLossFsTest, SyncfsMakesEverythingDurable) {
  std::filesystem::create_directories(dir_ / "tmp");
  PowerLossFileSystem fs(dir_.path());
  int fd = OpenFor(fs, "tmp/blob", O_WRONLY | O_CREAT);
  Write(fs, fd, "all of it");
  ASSERT_TRUE(fs.SyncFilesystem(dir_.path()).ok());
  Write(fs, fd, " and more");
  fs.CutPower();
  ASSERT_TRUE(fs.Close(fd).ok());
  fs.Restore();
  EXPECT_EQ(ReadFile(dir_ / "tmp/blob"), "all of it");
}

TEST_F(PowerLossFsTest, WritesAroundTheSeamAreLostButTheCatalogIsLeftAlone) {
  std::filesystem::create_directories(dir_ / "spool");
  PowerLossFileSystem fs(dir_.path());
  WriteFile(dir_ / "spool/direct.log", "written with ::write, never synced through the seam");
  WriteFile(dir_ / "catalog.db", "sqlite's own");
  WriteFile(dir_ / "catalog.db-wal", "sqlite's own");
  ASSERT_TRUE(fs.FsyncDir(dir_ / "spool").ok());  // its name is made durable, not its bytes
  fs.CutPower();
  fs.Restore();
  EXPECT_EQ(ReadFile(dir_ / "spool/direct.log"), "");
  EXPECT_EQ(ReadFile(dir_ / "catalog.db"), "sqlite's own");
  EXPECT_EQ(ReadFile(dir_ / "catalog.db-wal"), "sqlite's own");
}

}  // namespace
}  // namespace siterelay::testing
