#include "cache/importer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "relay/base/http_date.h"
#include "relay/base/uv.h"
#include "tests/testing/fault_fs.h"
#include "tests/testing/cache.h"
#include "tests/testing/temp_dir.h"

namespace siterelay::cache {
namespace {

using testing::FaultInjectingFileSystem;
using testing::TempDir;
using testing::WriteFile;

class ImporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(src_ / "000000000000.cfg", "<APPLICATION APP_FILE_PATH=\"sip.ld\"/>");
    WriteFile(src_ / "sip.ld", std::string(3 << 20, 'F'));  // spans several copy buffers
    WriteFile(src_ / "models/vvx500/sip.ld", std::string(3 << 20, 'F'));
    WriteFile(src_ / "sip.ver", "5.9.7.47435\n");
    WriteFile(src_ / ".DS_Store", "junk");
    WriteFile(src_ / ".Trashes/old.ld", "junk");
  }

  std::unique_ptr<Cache> Open(FileSystem* fs = FileSystem::Default()) {
    return testing::OpenTestCache(data_.path(), Clock::System(), fs);
  }

  TempDir src_;
  TempDir data_;
};

TEST_F(ImporterTest, ImportsEveryFileUnderItsRelativePath) {
  auto cache = Open();
  Loop loop;
  std::vector<ImportProgress> seen;
  auto r = ImportTree(*cache, loop.get(), src_.path(),
                      [&](const ImportProgress& p) { seen.push_back(p); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->files, 4u);
  EXPECT_EQ(r->new_objects, 3u) << "the two identical images share one object";
  EXPECT_TRUE(r->skipped.empty());
  EXPECT_EQ(cache->object_count(), 3u);

  const Entry* cfg = cache->Lookup("000000000000.cfg");
  ASSERT_NE(cfg, nullptr);
  EXPECT_EQ(cfg->sha256, Sha256::Of("<APPLICATION APP_FILE_PATH=\"sip.ld\"/>"));
  EXPECT_EQ(cfg->content_type, "application/xml");
  EXPECT_EQ(cfg->source, Source::kImport);
  EXPECT_TRUE(cfg->pinned);
  struct stat st;
  ASSERT_EQ(::stat((src_ / "000000000000.cfg").c_str(), &st), 0);
  EXPECT_EQ(cfg->last_modified, FormatHttpDate(st.st_mtime)) << "the file's own time";
  EXPECT_GT(cfg->fetched_at, 0);
  const Entry* img = cache->Lookup("models/vvx500/sip.ld");
  ASSERT_NE(img, nullptr);
  EXPECT_EQ(img->size, 3u << 20);
  EXPECT_EQ(img->sha256, Sha256::Of(std::string(3 << 20, 'F')));
  EXPECT_EQ(cache->Lookup(".DS_Store"), nullptr) << "hidden files are skipped";
  EXPECT_EQ(cache->Lookup(".Trashes/old.ld"), nullptr);

  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen.back().files_done, 4u);
  EXPECT_EQ(seen.back().files_total, 4u);
  EXPECT_EQ(seen.back().bytes_done, seen.back().bytes_total);
}

TEST_F(ImporterTest, ReimportCountsUnchangedAndReplacesChanged) {
  auto cache = Open();
  Loop loop;
  ASSERT_TRUE(ImportTree(*cache, loop.get(), src_.path()).ok());
  WriteFile(src_ / "sip.ver", "5.9.8.0\n");
  auto r = ImportTree(*cache, loop.get(), src_.path());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->unchanged, 3u);
  EXPECT_EQ(r->new_objects, 1u);
  EXPECT_EQ(cache->Lookup("sip.ver")->sha256, Sha256::Of("5.9.8.0\n"));
}

TEST_F(ImporterTest, SkipsWhatIsNotARegularFileAndSaysSo) {
  ASSERT_EQ(::mkfifo((src_ / "pipe.cfg").c_str(), 0644), 0);
  auto cache = Open();
  Loop loop;
  auto r = ImportTree(*cache, loop.get(), src_.path());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->files, 4u);
  ASSERT_EQ(r->skipped.size(), 1u);
  EXPECT_NE(r->skipped[0].find("pipe.cfg: not a regular file"), std::string::npos);
}

TEST_F(ImporterTest, MissingFolderIsAnError) {
  auto cache = Open();
  Loop loop;
  auto r = ImportTree(*cache, loop.get(), src_ / "nope");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), (src_ / "nope") + " is not a directory");
}

TEST_F(ImporterTest, DiskFullStopsTheImportAndPublishesOnlyWholeFiles) {
  FaultInjectingFileSystem fs;
  auto cache = Open(&fs);
  fs.FailNth(FaultInjectingFileSystem::Op::kWrite, 2, ENOSPC);
  Loop loop;
  auto r = ImportTree(*cache, loop.get(), src_.path());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().Is(StatusCode::kResourceExhausted)) << r.status().ToString();
  for (const Entry& e : cache->List()) {
    auto actual = cache->store().Rehash(e.sha256);
    ASSERT_TRUE(actual.ok());
    EXPECT_EQ(*actual, e.sha256) << e.path << " was published from a partial copy";
  }
  EXPECT_EQ(testing::CountFiles(data_ / "tmp"), 0u);
}

}  // namespace
}  // namespace siterelay::cache
