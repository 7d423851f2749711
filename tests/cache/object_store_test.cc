#include "cache/object_store.h"

#include <gtest/gtest.h>

#include "tests/testing/fault_fs.h"
#include "tests/testing/temp_dir.h"

namespace siterelay::cache {
namespace {

using testing::CountFiles;
using testing::FaultInjectingFileSystem;
using testing::ReadFile;
using testing::TempDir;

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

class ObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store_.Init().ok()); }

  Result<Digest> Put(std::string_view content, const Digest* expected = nullptr) {
    auto w = store_.Create();
    if (!w.ok()) return w.status();
    SR_RETURN_IF_ERROR((*w)->Append(Bytes(content)));
    return (*w)->Commit(expected);
  }

  TempDir dir_;
  FaultInjectingFileSystem fs_;
  ObjectStore store_{dir_.path(), &fs_};
};

TEST_F(ObjectStoreTest, StoresUnderItsDigestInAFanoutDirectory) {
  auto d = Put("firmware bytes");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(*d, Sha256::Of("firmware bytes"));
  std::string hex = d->Hex();
  EXPECT_EQ(store_.PathOf(*d), dir_.path() + "/objects/" + hex.substr(0, 2) + "/" + hex);
  EXPECT_EQ(ReadFile(store_.PathOf(*d)), "firmware bytes");
  EXPECT_EQ(CountFiles(dir_ / "tmp"), 0u);
}

TEST_F(ObjectStoreTest, RejectsBlobWhoseDigestMismatches) {
  Digest expected = Sha256::Of("what the manifest promised");
  auto d = Put("what the origin sent", &expected);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.status().Is(StatusCode::kCorruption));
  EXPECT_EQ(CountFiles(dir_ / "objects"), 0u) << "a mismatching blob is never published";
  EXPECT_EQ(CountFiles(dir_ / "tmp"), 0u);
}

TEST_F(ObjectStoreTest, AcceptsBlobMatchingExpectedDigest) {
  Digest expected = Sha256::Of("good");
  auto d = Put("good", &expected);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, expected);
}

TEST_F(ObjectStoreTest, IdenticalContentIsStoredOnce) {
  auto a = Put("same bytes");
  auto b = Put("same bytes");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(CountFiles(dir_ / "objects"), 1u);
  EXPECT_EQ(CountFiles(dir_ / "tmp"), 0u);
}

TEST_F(ObjectStoreTest, DataIsFsyncedBeforeTheRename) {
  ASSERT_TRUE(Put("x").ok());
  EXPECT_EQ(fs_.calls(FaultInjectingFileSystem::Op::kFsync), 1);
  EXPECT_EQ(fs_.calls(FaultInjectingFileSystem::Op::kRename), 1);
  EXPECT_EQ(fs_.calls(FaultInjectingFileSystem::Op::kFsyncDir), 1);
}

TEST_F(ObjectStoreTest, FailedFsyncPublishesNothing) {
  fs_.FailNth(FaultInjectingFileSystem::Op::kFsync, 1);
  auto d = Put("x");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(CountFiles(dir_ / "objects"), 0u);
  EXPECT_EQ(CountFiles(dir_ / "tmp"), 0u);
}

TEST_F(ObjectStoreTest, FailedWriteReportsDiskFull) {
  fs_.FailNth(FaultInjectingFileSystem::Op::kWrite, 1, ENOSPC);
  auto d = Put("x");
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.status().Is(StatusCode::kResourceExhausted));
  EXPECT_EQ(CountFiles(dir_ / "objects"), 0u);
}

TEST_F(ObjectStoreTest, CrashBeforeRenameLeavesOnlyATempFile) {
  fs_.FailNth(FaultInjectingFileSystem::Op::kRename, 1, EIO, /*crash=*/true);
  ASSERT_FALSE(Put("half done").ok());
  EXPECT_EQ(CountFiles(dir_ / "objects"), 0u);
  EXPECT_EQ(CountFiles(dir_ / "tmp"), 1u) << "a crashed process cleans nothing up";
  ObjectStore fresh(dir_.path(), FileSystem::Default());
  auto removed = fresh.CleanTmp();
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1u);
  EXPECT_EQ(CountFiles(dir_ / "tmp"), 0u);
}

TEST_F(ObjectStoreTest, OddSizesSurviveTheAlignedWritePath) {
  // Sizes around the buffer and block boundaries, written in uneven pieces: the padded last
  // block must be truncated away and every byte kept.
  for (size_t size : {size_t{0}, size_t{1}, size_t{4095}, size_t{4096}, size_t{4097},
                      BlobWriter::kBufferBytes - 1, BlobWriter::kBufferBytes,
                      BlobWriter::kBufferBytes + 123, 3 * BlobWriter::kBufferBytes + 7}) {
    std::string content(size, '\0');
    for (size_t i = 0; i < size; ++i) content[i] = static_cast<char>((i * 131 + size) & 0xff);
    auto w = store_.Create();
    ASSERT_TRUE(w.ok());
    for (size_t off = 0; off < size;) {
      size_t n = std::min<size_t>(size - off, 1000 + off % 7777);
      ASSERT_TRUE((*w)->Append(Bytes(std::string_view(content).substr(off, n))).ok());
      off += n;
    }
    auto d = (*w)->Commit();
    ASSERT_TRUE(d.ok()) << size << ": " << d.status().ToString();
    EXPECT_EQ(*d, Sha256::Of(content)) << size;
    EXPECT_EQ(ReadFile(store_.PathOf(*d)), content) << size;
  }
}

TEST_F(ObjectStoreTest, GroupInstallSyncsOnceForManyBlobs) {
  std::vector<SealedBlob> sealed;
  for (int i = 0; i < 20; ++i) {
    auto w = store_.Create();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(Bytes("blob " + std::to_string(i))).ok());
    auto s = (*w)->Seal(nullptr, /*sync=*/false);
    ASSERT_TRUE(s.ok());
    sealed.push_back(*s);
  }
  EXPECT_EQ(CountFiles(dir_ / "objects"), 0u) << "sealed is not yet installed";
  ASSERT_TRUE(store_.Install(sealed, /*already_synced=*/false).ok());
  EXPECT_EQ(fs_.calls(FaultInjectingFileSystem::Op::kSyncFs), 1);
  EXPECT_EQ(fs_.calls(FaultInjectingFileSystem::Op::kFsync), 0);
  EXPECT_EQ(CountFiles(dir_ / "objects"), 20u);
  EXPECT_EQ(CountFiles(dir_ / "tmp"), 0u);
}

TEST_F(ObjectStoreTest, FailedGroupSyncInstallsNothing) {
  std::vector<SealedBlob> sealed;
  for (int i = 0; i < 3; ++i) {
    auto w = store_.Create();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(Bytes("b" + std::to_string(i))).ok());
    sealed.push_back(*(*w)->Seal());
  }
  fs_.FailNth(FaultInjectingFileSystem::Op::kSyncFs, 1);
  EXPECT_FALSE(store_.Install(sealed, false).ok());
  EXPECT_EQ(CountFiles(dir_ / "objects"), 0u) << "no name before its data is durable";
  EXPECT_EQ(CountFiles(dir_ / "tmp"), 0u);
}

TEST_F(ObjectStoreTest, AbandonedWriterRemovesItsTempFile) {
  {
    auto w = store_.Create();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(Bytes("partial")).ok());
  }
  EXPECT_EQ(CountFiles(dir_ / "tmp"), 0u);
  EXPECT_EQ(CountFiles(dir_ / "objects"), 0u);
}

TEST_F(ObjectStoreTest, RehashDetectsDamageAndQuarantineMovesIt) {
  auto d = Put("pristine");
  ASSERT_TRUE(d.ok());
  testing::WriteFile(store_.PathOf(*d), "damaged!");
  auto actual = store_.Rehash(*d);
  ASSERT_TRUE(actual.ok());
  EXPECT_NE(*actual, *d);
  auto where = store_.Quarantine(*d);
  ASSERT_TRUE(where.ok());
  EXPECT_EQ(*where, dir_.path() + "/quarantine/" + d->Hex());
  EXPECT_EQ(ReadFile(*where), "damaged!");
  EXPECT_FALSE(store_.SizeOf(*d).ok());
}

TEST_F(ObjectStoreTest, ScanFindsObjectsAndIgnoresStrangers) {
  auto a = Put("a");
  auto b = Put("bb");
  ASSERT_TRUE(a.ok() && b.ok());
  testing::WriteFile(dir_ / "objects/00/not-a-digest", "x");
  auto found = store_.Scan();
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 2u);
}

}  // namespace
}  // namespace siterelay::cache
