#include "cache/cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/testing/fault_fs.h"
#include "tests/testing/cache.h"
#include "tests/testing/temp_dir.h"

namespace siterelay::cache {
namespace {

using testing::CountFiles;
using testing::FaultInjectingFileSystem;
using testing::TempDir;

class CacheTest : public ::testing::Test {
 protected:
  std::unique_ptr<Cache> Open(uint64_t max_bytes = 1 << 30,
                              FileSystem* fs = FileSystem::Default()) {
    return testing::OpenTestCache(dir_.path(), &clock_, fs, max_bytes);
  }

  // Stores `content` and returns an entry for `path` naming it.
  static Entry Store(Cache& cache, const std::string& path, std::string_view content,
                     Source source = Source::kOrigin) {
    auto w = cache.store().Create();
    EXPECT_TRUE(w.ok());
    EXPECT_TRUE(
        (*w)->Append({reinterpret_cast<const uint8_t*>(content.data()), content.size()}).ok());
    auto d = (*w)->Commit();
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    Entry e;
    e.path = path;
    e.sha256 = d.ok() ? *d : Digest{};
    e.size = content.size();
    e.content_type = "application/octet-stream";
    e.source = source;
    return e;
  }

  Status Put(Cache& cache, const std::string& path, std::string_view content,
             Source source = Source::kOrigin, bool pinned = false, bool forwarded = true) {
    Entry e = Store(cache, path, content, source);
    e.pinned = pinned;
    e.forwarded = forwarded;
    return cache.Publish({e});
  }

  TempDir dir_;
  ManualClock clock_;
};

TEST_F(CacheTest, PublishedEntryIsFoundAndSurvivesRestart) {
  {
    auto cache = Open();
    ASSERT_TRUE(Put(*cache, "000000000000.cfg", "<APPLICATION/>").ok());
    const Entry* e = cache->Lookup("000000000000.cfg");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->sha256, Sha256::Of("<APPLICATION/>"));
  }
  auto cache = Open();
  const Entry* e = cache->Lookup("000000000000.cfg");
  ASSERT_NE(e, nullptr) << "the index is rebuilt from the catalog at start";
  EXPECT_EQ(e->size, 14u);
  EXPECT_EQ(cache->Lookup("missing.cfg"), nullptr);
}

TEST_F(CacheTest, TwoPathsWithIdenticalContentShareOneObject) {
  auto cache = Open();
  ASSERT_TRUE(Put(*cache, "a/sip.ld", "same image").ok());
  ASSERT_TRUE(Put(*cache, "b/sip.ld", "same image").ok());
  EXPECT_EQ(cache->object_count(), 1u);
  EXPECT_EQ(cache->object_bytes(), 10u);
  EXPECT_EQ(cache->Lookup("a/sip.ld")->sha256, cache->Lookup("b/sip.ld")->sha256);
  EXPECT_EQ(CountFiles(dir_ / "objects"), 1u);
}

TEST_F(CacheTest, PublishRefusesAnEntryWithoutItsObject) {
  auto cache = Open();
  Entry e;
  e.path = "ghost.cfg";
  e.sha256 = Sha256::Of("never written");
  e.size = 13;
  EXPECT_FALSE(cache->Publish({e}).ok());
  EXPECT_EQ(cache->Lookup("ghost.cfg"), nullptr);
}

TEST_F(CacheTest, PublishRefusesASizeThatDisagreesWithTheObject) {
  auto cache = Open();
  Entry e = Store(*cache, "a.cfg", "12345");
  e.size = 4;
  Status s = cache->Publish({e});
  EXPECT_TRUE(s.Is(StatusCode::kCorruption)) << s.ToString();
}

TEST_F(CacheTest, BatchIsAllOrNothing) {
  auto cache = Open();
  Entry good = Store(*cache, "good.cfg", "good");
  Entry bad;
  bad.path = "bad.cfg";
  bad.sha256 = Sha256::Of("absent");
  bad.size = 6;
  EXPECT_FALSE(cache->Publish({good, bad}).ok());
  EXPECT_EQ(cache->Lookup("good.cfg"), nullptr);
}

TEST_F(CacheTest, NewerEntryForAPathReplacesTheOld) {
  auto cache = Open();
  ASSERT_TRUE(Put(*cache, "site.cfg", "v1").ok());
  ASSERT_TRUE(Put(*cache, "site.cfg", "v2").ok());
  EXPECT_EQ(cache->Lookup("site.cfg")->sha256, Sha256::Of("v2"));
  auto gc = cache->Gc();
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->orphans_removed, 1u) << "v1 is no longer referenced";
  EXPECT_EQ(CountFiles(dir_ / "objects"), 1u);
}

// A hot object is opened once: the next requests get dups of the kept fd, readable at explicit
// offsets, and no open(2) of their own.
TEST_F(CacheTest, AnObjectServedAgainIsNotOpenedAgain) {
  FaultInjectingFileSystem fs;
  auto cache = Open(1 << 30, &fs);
  ASSERT_TRUE(Put(*cache, "000000000000.cfg", "<master/>").ok());
  Digest d = cache->Lookup("000000000000.cfg")->sha256;
  int opens = fs.calls(FaultInjectingFileSystem::Op::kOpen);
  for (int i = 0; i < 3; ++i) {
    auto fd = cache->OpenObject(d);
    ASSERT_TRUE(fd.ok()) << fd.status().ToString();
    char buf[16] = {};
    ASSERT_EQ(::pread(fd->get(), buf, sizeof buf, 0), 9);
    EXPECT_EQ(std::string(buf, 9), "<master/>");
  }
  EXPECT_EQ(fs.calls(FaultInjectingFileSystem::Op::kOpen), opens + 1);
}

// A small object's bytes are read once and kept with its open file; a larger one is not kept.
TEST_F(CacheTest, SmallObjectsAreKeptInMemoryUpToTheLimit) {
  FaultInjectingFileSystem fs;
  auto cache = Open(1 << 30, &fs);
  std::string at_limit(Cache::kSmallObjectBytes, 'a');
  std::string past_limit(Cache::kSmallObjectBytes + 1, 'b');
  ASSERT_TRUE(Put(*cache, "000000000000.cfg", at_limit).ok());
  ASSERT_TRUE(Put(*cache, "sip.ld", past_limit).ok());
  Digest small = cache->Lookup("000000000000.cfg")->sha256;
  int opens = fs.calls(FaultInjectingFileSystem::Op::kOpen);
  auto first = cache->SmallObject(small);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_NE(*first, nullptr);
  EXPECT_EQ(**first, at_limit);
  auto again = cache->SmallObject(small);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), first->get()) << "read once, shared";
  EXPECT_EQ(fs.calls(FaultInjectingFileSystem::Op::kOpen), opens + 1);
  auto large = cache->SmallObject(cache->Lookup("sip.ld")->sha256);
  ASSERT_TRUE(large.ok());
  EXPECT_EQ(*large, nullptr);
  // Pushed out of the kOpenObjects by others, its bytes go too; asked again, it is read again.
  for (int i = 0; i < static_cast<int>(Cache::kOpenObjects); ++i) {
    ASSERT_TRUE(Put(*cache, "f" + std::to_string(i), "content " + std::to_string(i)).ok());
    ASSERT_TRUE(cache->SmallObject(cache->Lookup("f" + std::to_string(i))->sha256).ok());
  }
  auto reread = cache->SmallObject(small);
  ASSERT_TRUE(reread.ok());
  EXPECT_NE(reread->get(), first->get());
  EXPECT_EQ(**reread, at_limit);
}

// An object that goes (here an old version collected by Gc) is forgotten first: no fd keeps its
// disk space, and the kept fds never pass kOpenObjects.
TEST_F(CacheTest, AGoneObjectIsNotKeptOpen) {
  auto cache = Open();
  ASSERT_TRUE(Put(*cache, "site.cfg", "v1").ok());
  Digest v1 = cache->Lookup("site.cfg")->sha256;
  ASSERT_TRUE(cache->OpenObject(v1).ok());
  ASSERT_TRUE(Put(*cache, "site.cfg", "v2").ok());
  ASSERT_TRUE(cache->Gc().ok());
  std::string v1_path = cache->store().PathOf(v1);
  auto open_fds_to = [](const std::string& prefix) {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
      std::error_code ec;
      auto target = std::filesystem::read_symlink(e.path(), ec);
      if (!ec && target.string().rfind(prefix, 0) == 0) ++n;
    }
    return n;
  };
  EXPECT_EQ(open_fds_to(v1_path), 0u) << "v1 was collected but is still open";
  for (int i = 0; i < static_cast<int>(Cache::kOpenObjects) + 10; ++i) {
    ASSERT_TRUE(Put(*cache, "f" + std::to_string(i), "content " + std::to_string(i)).ok());
    ASSERT_TRUE(cache->OpenObject(cache->Lookup("f" + std::to_string(i))->sha256).ok());
  }
  EXPECT_EQ(open_fds_to(dir_ / "objects"), Cache::kOpenObjects);
}

TEST_F(CacheTest, CrashBetweenWriteAndRenameLeavesNothingVisibleAndNothingToRepair) {
  FaultInjectingFileSystem fs;
  {
    auto cache = Open(1 << 30, &fs);
    fs.FailNth(FaultInjectingFileSystem::Op::kRename, 1, EIO, /*crash=*/true);
    auto w = cache->store().Create();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append({reinterpret_cast<const uint8_t*>("img"), 3}).ok());
    EXPECT_FALSE((*w)->Commit().ok());
    EXPECT_TRUE(fs.crashed());
  }
  EXPECT_EQ(CountFiles(dir_ / "tmp"), 1u);
  auto cache = Open();  // restart on the real filesystem
  EXPECT_EQ(cache->recovery().tmp_files_removed, 1u);
  EXPECT_EQ(cache->recovery().objects_missing, 0u);
  EXPECT_EQ(CountFiles(dir_ / "tmp"), 0u);
  EXPECT_TRUE(cache->List().empty());
  auto v = cache->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->corrupt.empty());
  EXPECT_EQ(v->missing, 0u);
}

TEST_F(CacheTest, CrashBetweenRenameAndPublishLeavesAStrayThatGcRemoves) {
  {
    auto cache = Open();
    (void)Store(*cache, "never-published.ld", "orphaned bytes");  // no Publish: "crash"
  }
  auto cache = Open();
  EXPECT_TRUE(cache->List().empty());
  EXPECT_EQ(CountFiles(dir_ / "objects"), 1u);
  auto gc = cache->Gc();
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->orphans_removed, 1u);
  EXPECT_EQ(gc->orphan_bytes, 14u);
  EXPECT_EQ(CountFiles(dir_ / "objects"), 0u);
}

TEST_F(CacheTest, StartupDropsEntriesWhoseObjectVanished) {
  Digest d;
  {
    auto cache = Open();
    ASSERT_TRUE(Put(*cache, "gone.ld", "bytes").ok());
    ASSERT_TRUE(Put(*cache, "kept.cfg", "other").ok());
    d = cache->Lookup("gone.ld")->sha256;
    std::filesystem::remove(cache->store().PathOf(d));
  }
  auto cache = Open();
  EXPECT_EQ(cache->recovery().objects_missing, 1u);
  EXPECT_EQ(cache->recovery().entries_dropped, 1u);
  EXPECT_EQ(cache->Lookup("gone.ld"), nullptr);
  EXPECT_NE(cache->Lookup("kept.cfg"), nullptr);
  cache.reset();
  auto again = Open();
  EXPECT_EQ(again->recovery().objects_missing, 0u) << "nothing left to repair the second time";
}

TEST_F(CacheTest, SecondWriterIsRefusedWithThePid) {
  auto cache = Open();
  CacheOptions o;
  o.data_dir = dir_.path();
  auto second = Cache::Open(o);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(second.status().Is(StatusCode::kUnavailable));
  EXPECT_NE(second.status().message().find("in use by another siterelay process (pid " +
                                           std::to_string(::getpid()) + ")"),
            std::string::npos)
      << second.status().message();
}

TEST_F(CacheTest, ReadOnlyOpenSeesEntriesBesideAWriterAndChangesNothing) {
  auto writer = Open();
  ASSERT_TRUE(Put(*writer, "a.cfg", "a").ok());
  CacheOptions o;
  o.data_dir = dir_.path();
  o.read_only = true;
  auto reader = Cache::Open(o);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ASSERT_EQ((*reader)->List().size(), 1u);
  EXPECT_FALSE((*reader)->Publish({}).ok());
  EXPECT_FALSE((*reader)->Gc().ok());
}

TEST_F(CacheTest, VerifyQuarantinesAMismatchAndDropsItsEntries) {
  auto cache = Open();
  ASSERT_TRUE(Put(*cache, "a.cfg", "config").ok());
  ASSERT_TRUE(Put(*cache, "copy.cfg", "config").ok());
  ASSERT_TRUE(Put(*cache, "sip.ld", "firmware").ok());
  Digest bad = cache->Lookup("a.cfg")->sha256;
  testing::WriteFile(cache->store().PathOf(bad), "CONFIG");  // same size, other bytes
  auto v = cache->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->objects_checked, 2u);
  ASSERT_EQ(v->corrupt.size(), 1u);
  EXPECT_EQ(v->corrupt[0], bad);
  EXPECT_EQ(v->entries_dropped, (std::vector<std::string>{"a.cfg", "copy.cfg"}));
  EXPECT_EQ(cache->Lookup("a.cfg"), nullptr);
  EXPECT_NE(cache->Lookup("sip.ld"), nullptr);
  EXPECT_EQ(testing::ReadFile(dir_ / ("quarantine/" + bad.Hex())), "CONFIG");
  auto reopened = (cache.reset(), Open());
  EXPECT_EQ(reopened->Lookup("a.cfg"), nullptr) << "the drop is in the catalog too";
}

TEST_F(CacheTest, VerifyReportsAMissingObject) {
  auto cache = Open();
  ASSERT_TRUE(Put(*cache, "a.cfg", "config").ok());
  std::filesystem::remove(cache->store().PathOf(cache->Lookup("a.cfg")->sha256));
  auto v = cache->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->missing, 1u);
  EXPECT_EQ(cache->Lookup("a.cfg"), nullptr);
}

TEST_F(CacheTest, EvictsLeastRecentlyUsedFirst) {
  auto cache = Open(/*max_bytes=*/30);
  ASSERT_TRUE(Put(*cache, "old.ld", "0123456789").ok());
  clock_.Advance(10);
  ASSERT_TRUE(Put(*cache, "mid.ld", "abcdefghij").ok());
  clock_.Advance(10);
  ASSERT_TRUE(Put(*cache, "new.ld", "ABCDEFGHIJ").ok());
  clock_.Advance(10);
  cache->Touch(cache->Lookup("old.ld")->sha256);  // old is now the most recently read
  clock_.Advance(10);
  ASSERT_TRUE(Put(*cache, "newest.ld", "klmnopqrst").ok());
  auto gc = cache->Gc();
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->evicted, 1u);
  EXPECT_EQ(gc->entries_dropped, std::vector<std::string>{"mid.ld"});
  EXPECT_NE(cache->Lookup("old.ld"), nullptr);
  EXPECT_LE(cache->object_bytes(), 30u);
}

TEST_F(CacheTest, AccessTimesSurviveRestart) {
  {
    auto cache = Open(30);
    ASSERT_TRUE(Put(*cache, "a.ld", "0123456789").ok());
    clock_.Advance(10);
    ASSERT_TRUE(Put(*cache, "b.ld", "abcdefghij").ok());
    clock_.Advance(10);
    cache->Touch(cache->Lookup("a.ld")->sha256);
  }  // FlushAccess on close
  auto cache = Open(10);
  auto gc = cache->Gc();
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->entries_dropped, std::vector<std::string>{"b.ld"});
}

TEST_F(CacheTest, NeverEvictsPinnedOrUnforwardedEntries) {
  auto cache = Open(/*max_bytes=*/5);
  ASSERT_TRUE(Put(*cache, "sip.ld", "manifest-pinned", Source::kManifest, /*pinned=*/true).ok());
  ASSERT_TRUE(Put(*cache, "0004f282e824-phone.cfg", "unsent override", Source::kUpload, false,
                  /*forwarded=*/false)
                  .ok());
  ASSERT_TRUE(Put(*cache, "0004f282e824-web.cfg", "sent override", Source::kUpload, false, true)
                  .ok());
  clock_.Advance(5);
  ASSERT_TRUE(Put(*cache, "plain.cfg", "pulled through").ok());
  auto gc = cache->Gc();
  ASSERT_TRUE(gc.ok());
  EXPECT_NE(cache->Lookup("sip.ld"), nullptr);
  EXPECT_NE(cache->Lookup("0004f282e824-phone.cfg"), nullptr);
  EXPECT_EQ(cache->Lookup("0004f282e824-web.cfg"), nullptr);
  EXPECT_EQ(cache->Lookup("plain.cfg"), nullptr);
  EXPECT_EQ(gc->evicted, 2u);
}

TEST_F(CacheTest, AnObjectSharedWithAPinnedEntryIsKept) {
  auto cache = Open(/*max_bytes=*/1);
  ASSERT_TRUE(Put(*cache, "pinned/sip.ld", "shared", Source::kManifest, true).ok());
  ASSERT_TRUE(Put(*cache, "loose/sip.ld", "shared").ok());
  auto gc = cache->Gc();
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->evicted, 0u);
  EXPECT_NE(cache->Lookup("loose/sip.ld"), nullptr);
}

TEST_F(CacheTest, EntryStatesForCacheLs) {
  auto cache = Open();
  Entry e = Store(*cache, "a.cfg", "a");
  e.fresh_until = clock_.NowSeconds() + 60;
  ASSERT_TRUE(cache->Publish({e}).ok());
  const Entry* got = cache->Lookup("a.cfg");
  EXPECT_EQ(got->State(clock_.NowSeconds()), "fresh");
  EXPECT_EQ(got->State(clock_.NowSeconds() + 60), "stale");
  Entry up = *got;
  up.source = Source::kUpload;
  up.forwarded = false;
  EXPECT_EQ(up.State(0), "upload-pending");
  Entry imp = *got;
  imp.source = Source::kImport;
  EXPECT_EQ(imp.State(0), "imported");
}

TEST_F(CacheTest, DefaultCapLeavesRoomForTheCacheItself) {
  CacheOptions o;
  o.data_dir = dir_.path();
  auto cache = Cache::Open(o);
  ASSERT_TRUE(cache.ok());
  EXPECT_GT((*cache)->max_bytes(), 0u);
}

}  // namespace
}  // namespace siterelay::cache
