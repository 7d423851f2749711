#include "relay/files/uploads.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <vector>

#include "relay/base/uv.h"
#include "relay/files/path.h"
#include "tests/testing/cache.h"
#include "tests/testing/fault_fs.h"
#include "tests/testing/temp_dir.h"

namespace siterelay::files {
namespace {

class UploadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = testing::OpenTestCache(dir_.path(), &clock_, &fs_);
    uploads_ = std::make_unique<Uploads>(loop_.get(), cache_.get(), &clock_);
  }

  // Sends `body` in pieces of `piece` bytes and runs the loop until the upload is filed.
  Result<UploadResult> Upload(const std::string& path, std::string_view body,
                              uint64_t max_bytes = 1 << 20, size_t piece = 1000) {
    UploadName name = ClassifyUpload(BaseName(path));
    auto sink = uploads_->Begin(path, name, max_bytes);
    Result<UploadResult> result = Status::Internal("never finished");
    for (size_t off = 0; off < body.size(); off += piece) {
      Status s = sink->Write(body.substr(off, piece));
      if (!s.ok()) return s;
      while (!sink->WantsMore()) uv_run(loop_.get(), UV_RUN_ONCE);  // back-pressure
    }
    sink->Finish([&](Result<UploadResult> r) { result = std::move(r); });
    EXPECT_TRUE(loop_.Run().ok());
    return result;
  }

  // Settings uploads of one piece each, from new phones, until the uploads' memory budget is
  // spent: each piece goes to the pool at once, and its completion reaches the loop only when the
  // loop runs. Each upload is asked first whether it may take bytes.
  std::vector<std::shared_ptr<UploadSink>> FillTheBudget() {
    std::string piece(UploadSink::kChunkBytes, 'p');
    std::vector<std::shared_ptr<UploadSink>> sinks;
    char mac[16];
    for (size_t i = 0; uploads_->held_bytes() < Uploads::kMemoryBytes; ++i) {
      std::snprintf(mac, sizeof mac, "0004f2%06zx", i);
      std::string path = std::string(mac) + "-phone.cfg";
      sinks.push_back(uploads_->Begin(path, ClassifyUpload(path), 1 << 20));
      EXPECT_TRUE(sinks.back()->WantsMore()) << "under the budget, sink " << i;
      EXPECT_TRUE(sinks.back()->Write(piece).ok());
    }
    return sinks;
  }

  std::string Spool(const std::string& mac, const std::string& what) {
    return testing::ReadFile(dir_ / ("spool/" + mac + "-" + what + ".log"));
  }

  testing::TempDir dir_;
  testing::FaultInjectingFileSystem fs_;  // passes everything through until a test arms it
  ManualClock clock_;
  Loop loop_;
  std::unique_ptr<cache::Cache> cache_;
  std::unique_ptr<Uploads> uploads_;
};

TEST_F(UploadsTest, SettingsBecomeAnUnforwardedEntryServedBack) {
  std::string body(150000, 'x');  // several chunks
  auto r = Upload("0004f282e824-phone.cfg", body);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->created);
  const cache::Entry* e = cache_->Lookup("0004f282e824-phone.cfg");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->sha256, Sha256::Of(body));
  EXPECT_EQ(e->source, cache::Source::kUpload);
  EXPECT_FALSE(e->forwarded);
  EXPECT_EQ(testing::ReadFile(cache_->store().PathOf(e->sha256)), body);
  auto again = Upload("0004f282e824-phone.cfg", "<short/>");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(cache_->Lookup("0004f282e824-phone.cfg")->sha256, Sha256::Of("<short/>"));
  EXPECT_EQ(testing::CountFiles(dir_ / "tmp"), 0u);
}

TEST_F(UploadsTest, SettingsSurviveARestart) {
  ASSERT_TRUE(Upload("0004f282e824-web.cfg", "<web/>").ok());
  uploads_.reset();
  cache_.reset();
  cache::CacheOptions o;
  o.data_dir = dir_.path();
  auto reopened = cache::Cache::Open(o);
  ASSERT_TRUE(reopened.ok());
  const cache::Entry* e = (*reopened)->Lookup("0004f282e824-web.cfg");
  ASSERT_NE(e, nullptr);
  EXPECT_FALSE(e->forwarded);
}

TEST_F(UploadsTest, ALogResentWholeAddsOnlyItsNewTail) {
  auto r1 = Upload("0004f282e824-app.log", "0517184023|copy |3|00|one\n");
  ASSERT_TRUE(r1.ok());
  EXPECT_TRUE(r1->created);
  EXPECT_EQ(r1->new_bytes, 26u);
  auto r2 = Upload("0004f282e824-app.log",
                   "0517184023|copy |3|00|one\n0517184024|copy |3|00|two\n");
  ASSERT_TRUE(r2.ok());
  EXPECT_FALSE(r2->created);
  EXPECT_EQ(r2->new_bytes, 26u);
  auto r3 = Upload("0004f282e824-app.log", "0517184023|copy |3|00|one\n");
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->new_bytes, 0u) << "a prefix of what is stored adds nothing";
  EXPECT_EQ(Spool("0004f282e824", "app"),
            "0517184023|copy |3|00|one\n0517184024|copy |3|00|two\n");
}

TEST_F(UploadsTest, ALogThatRestartedIsAppendedWhole) {
  ASSERT_TRUE(Upload("0004f282e824-boot.log", "boot 1\n").ok());
  auto r = Upload("0004F282E824-BOOT.LOG", "reboot\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->new_bytes, 7u);
  EXPECT_EQ(Spool("0004f282e824", "boot"), "boot 1\nreboot\n");
}

// The second upload of a log being appended waits its turn with its body on disk, not in
// memory: a client that sends one log over hundreds of connections cannot fill the relay's RAM.
TEST_F(UploadsTest, ConcurrentUploadsOfOneLogAreFiledInTurn) {
  using Op = testing::FaultInjectingFileSystem::Op;
  auto a = uploads_->Begin("0004f282e824-app.log", ClassifyUpload("0004f282e824-app.log"), 1000);
  auto b = uploads_->Begin("0004f282e824-app.log", ClassifyUpload("0004f282e824-app.log"), 1000);
  ASSERT_TRUE(a->Write("first\n").ok());
  ASSERT_TRUE(b->Write("first\nsecond\n").ok());
  int done = 0;
  a->Finish([&](Result<UploadResult> r) { done += r.ok(); });
  b->Finish([&](Result<UploadResult> r) { done += r.ok(); });
  ASSERT_TRUE(loop_.Run().ok());
  EXPECT_EQ(done, 2);
  EXPECT_EQ(Spool("0004f282e824", "app"), "first\nsecond\n");
  // a: the spool; b: its staged copy (written, then read back) and the spool.
  EXPECT_EQ(fs_.calls(Op::kOpen), 4);
  EXPECT_EQ(testing::CountFiles(dir_ / "tmp"), 0u);
}

TEST_F(UploadsTest, SizeLimitAtNAndNPlusOne) {
  EXPECT_TRUE(Upload("0004f282e824-local.cfg", std::string(5000, 'a'), 5000).ok());
  auto over = Upload("0004f282e824-local.cfg", std::string(5001, 'b'), 5000);
  ASSERT_FALSE(over.ok());
  EXPECT_TRUE(over.status().Is(StatusCode::kResourceExhausted));
  EXPECT_EQ(cache_->Lookup("0004f282e824-local.cfg")->sha256, Sha256::Of(std::string(5000, 'a')));
}

TEST_F(UploadsTest, AbortedUploadFilesNothingAndLeavesNoTempFile) {
  auto sink = uploads_->Begin("0004f282e824-calls.xml", ClassifyUpload("0004f282e824-calls.xml"),
                              1 << 20);
  ASSERT_TRUE(sink->Write(std::string(200000, 'c')).ok());
  sink->Abort();
  sink.reset();
  ASSERT_TRUE(loop_.Run().ok());
  EXPECT_EQ(cache_->Lookup("0004f282e824-calls.xml"), nullptr);
  EXPECT_EQ(testing::CountFiles(dir_ / "tmp"), 0u);
}

// Once the whole body is in (Finish), the connection going away only silences the answer: the
// upload is filed all the same, whether a settings file staged in pieces or a log from memory.
TEST_F(UploadsTest, AnUploadAbortedAfterItsBodyIsInIsFiledAllTheSame) {
  std::string settings(200000, 's');
  auto cfg = uploads_->Begin("0004f282e824-phone.cfg", ClassifyUpload("0004f282e824-phone.cfg"),
                             1 << 20);
  for (size_t off = 0; off < settings.size(); off += 50000) {
    ASSERT_TRUE(cfg->Write(std::string_view(settings).substr(off, 50000)).ok());
    while (!cfg->WantsMore()) uv_run(loop_.get(), UV_RUN_ONCE);
  }
  auto log = uploads_->Begin("0004f282e824-boot.log", ClassifyUpload("0004f282e824-boot.log"),
                             1 << 20);
  ASSERT_TRUE(log->WantsMore());
  ASSERT_TRUE(log->Write("0517184023|boot |1|00|a line\n").ok());
  bool answered = false;
  for (auto* sink : {&cfg, &log}) {
    (*sink)->Finish([&](Result<UploadResult>) { answered = true; });
    (*sink)->Abort();
    sink->reset();
  }
  ASSERT_TRUE(loop_.Run().ok());
  EXPECT_FALSE(answered) << "no one to answer";
  const cache::Entry* e = cache_->Lookup("0004f282e824-phone.cfg");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->sha256, Sha256::Of(settings));
  EXPECT_EQ(Spool("0004f282e824", "boot"), "0517184023|boot |1|00|a line\n");
  EXPECT_EQ(uploads_->held_bytes(), 0u);
  EXPECT_EQ(testing::CountFiles(dir_ / "tmp"), 0u);
}

// A disk that fills while a big upload arrives (tests/integration/diskfull_test.sh): the phone
// must hear of a storage failure (HTTP 507), not of an upload too large (413), which it would not
// retry. So Write() goes on taking the body and Finish() reports the disk's error.
TEST_F(UploadsTest, ADiskFullWhileTheBodyArrivesIsReportedByFinishNotAsTooLarge) {
  // The blob buffers 1 MiB before its first write: that write is the one that fails.
  fs_.FailNth(testing::FaultInjectingFileSystem::Op::kWrite, 1, ENOSPC);
  std::string body(3 * cache::BlobWriter::kBufferBytes, 'd');
  auto sink = uploads_->Begin("0004f282e824-directory.xml",
                              ClassifyUpload("0004f282e824-directory.xml"), 16 << 20);
  for (size_t off = 0; off < body.size(); off += 64 * 1024) {
    Status s = sink->Write(std::string_view(body).substr(off, 64 * 1024));
    ASSERT_TRUE(s.ok()) << "at byte " << off << ": " << s.ToString();
    while (!sink->WantsMore()) uv_run(loop_.get(), UV_RUN_ONCE);
  }
  EXPECT_GE(fs_.calls(testing::FaultInjectingFileSystem::Op::kWrite), 1)
      << "the failing write happened while the body arrived";
  Result<UploadResult> result = Status::Internal("never finished");
  // The front-end drops its sink as it answers, here from inside Finish().
  sink->Finish([&](Result<UploadResult> r) {
    result = std::move(r);
    sink.reset();
  });
  ASSERT_TRUE(loop_.Run().ok());
  EXPECT_EQ(sink, nullptr);
  EXPECT_EQ(uploads_->held_bytes(), 0u);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(result.status().Is(StatusCode::kResourceExhausted)) << result.status().ToString();
  EXPECT_NE(result.status().message().find("No space left on device"), std::string::npos)
      << result.status().ToString();
  EXPECT_EQ(cache_->Lookup("0004f282e824-directory.xml"), nullptr);
  EXPECT_EQ(testing::CountFiles(dir_ / "tmp"), 0u);
  // The cap is still the peer's error, told at once, whatever the disk did.
  auto over = uploads_->Begin("0004f282e824-calls.xml", ClassifyUpload("0004f282e824-calls.xml"),
                              1000);
  EXPECT_TRUE(over->Write(std::string(1001, 'c')).Is(StatusCode::kResourceExhausted));
  over->Abort();
}

// The copy of the upload fits in tmp/ but appending its new bytes to the spool does not: the
// append fails after its first piece. The phone hears the error, and the log is left as it was
// acknowledged, so the next upload (here the same log again) is appended exactly once.
TEST_F(UploadsTest, AnAppendThatFailsPartWayLeavesTheLogAsAcknowledged) {
  std::string first = "0517184023|copy |3|00|one\n";
  ASSERT_TRUE(Upload("0004f282e824-app.log", first).ok());
  std::string more;
  for (int i = 0; more.size() < 300000; ++i) {
    more += "0517184024|sip  |3|00|line " + std::to_string(i) + "\n";
  }
  std::string whole = first + more;  // the phone re-sends its whole log
  // The upload is staged in tmp/ one piece per write, then appended 64 KiB per write: the
  // second write of the append fails.
  int staged_writes =
      static_cast<int>((whole.size() + UploadSink::kChunkBytes - 1) / UploadSink::kChunkBytes);
  int writes_before = fs_.calls(testing::FaultInjectingFileSystem::Op::kWrite);
  fs_.FailNth(testing::FaultInjectingFileSystem::Op::kWrite, staged_writes + 2, ENOSPC);
  auto failed = Upload("0004f282e824-app.log", whole);
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(failed.status().Is(StatusCode::kResourceExhausted)) << failed.status().ToString();
  EXPECT_EQ(Spool("0004f282e824", "app"), first) << "a part of the refused upload stayed";
  EXPECT_EQ(fs_.calls(testing::FaultInjectingFileSystem::Op::kWrite) - writes_before,
            staged_writes + 2)
      << "the failing write was the append's second";
  auto again = Upload("0004f282e824-app.log", whole);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->new_bytes, more.size());
  EXPECT_EQ(Spool("0004f282e824", "app"), whole);
  EXPECT_EQ(testing::CountFiles(dir_ / "tmp"), 0u);
}

// The same for a log's first upload: the file it created goes again.
TEST_F(UploadsTest, AFirstAppendThatFailsLeavesNoLog) {
  fs_.FailNth(testing::FaultInjectingFileSystem::Op::kFsync, 1, EIO);  // the spool's
  auto failed = Upload("0004f282e824-boot.log", "boot 1\n");
  ASSERT_FALSE(failed.ok());
  EXPECT_FALSE(std::filesystem::exists(dir_ / "spool/0004f282e824-boot.log"));
  auto again = Upload("0004f282e824-boot.log", "boot 1\n");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->created);
  EXPECT_EQ(Spool("0004f282e824", "boot"), "boot 1\n");
}

// A boot storm sends a thousand 4-12 KiB boot logs at once: each is appended from memory, with
// one file opened (the spool's) and its data and new name synced, and nothing made in tmp/.
TEST_F(UploadsTest, ALogInOnePieceIsAppendedFromMemory) {
  using Op = testing::FaultInjectingFileSystem::Op;
  std::string log;
  while (log.size() < UploadSink::kChunkBytes - 100) log += "0517184023|sip  |3|00|boot line\n";
  auto r = Upload("0004f282e824-boot.log", log);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(fs_.calls(Op::kOpen), 1) << "only the spool file";
  EXPECT_EQ(fs_.calls(Op::kFsync), 1);
  EXPECT_EQ(fs_.calls(Op::kFsyncDir), 1) << "the spool's new name";
  EXPECT_EQ(Spool("0004f282e824", "boot"), log);
  // The next upload of that log re-sends it with more: only the tail is appended.
  auto again = Upload("0004f282e824-boot.log", log + "more\n");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->new_bytes, 5u);
  EXPECT_EQ(fs_.calls(Op::kOpen), 2);
  EXPECT_EQ(fs_.calls(Op::kFsyncDir), 1) << "no new name this time";
  EXPECT_EQ(Spool("0004f282e824", "boot"), log + "more\n");
}

// A longer log is staged in tmp/, which is read back and removed but never synced: only the
// spool's copy has to last. A settings upload's blob becomes an object, so it is synced.
TEST_F(UploadsTest, ALongerLogIsStagedWithoutASync) {
  using Op = testing::FaultInjectingFileSystem::Op;
  std::string log;
  while (log.size() < 3 * UploadSink::kChunkBytes) log += "0517184023|sip  |3|00|app line\n";
  auto r = Upload("0004f282e824-app.log", log);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(fs_.calls(Op::kOpen), 3) << "the staged copy, written then read back, and the spool";
  EXPECT_EQ(fs_.calls(Op::kFsync), 1) << "the spool's only";
  EXPECT_EQ(Spool("0004f282e824", "app"), log);
  EXPECT_EQ(testing::CountFiles(dir_ / "tmp"), 0u);
  ASSERT_TRUE(Upload("0004f282e824-phone.cfg", "<PHONE_CONFIG/>").ok());
  EXPECT_GE(fs_.calls(Op::kFsync), 2) << "a settings upload's blob is synced";
}

// What uploads hold in memory is under one budget: past it, an upload that holds nothing yet is
// refused bytes (they wait in its socket) and woken once the pool catches up; the uploads under
// way go on, so what is held drains.
TEST_F(UploadsTest, TheMemoryBudgetHoldsUploadsBackUntilThePoolCatchesUp) {
  std::vector<std::shared_ptr<UploadSink>> sinks = FillTheBudget();
  EXPECT_EQ(uploads_->held_bytes(), sinks.size() * UploadSink::kChunkBytes);
  auto late = uploads_->Begin("0004f2ffffff-boot.log", ClassifyUpload("0004f2ffffff-boot.log"),
                              1 << 20);
  bool woken = false;
  late->OnWantsMore([&] { woken = true; });
  EXPECT_FALSE(late->WantsMore());
  EXPECT_TRUE(sinks.front()->WantsMore()) << "an upload under way goes on";
  while (!woken) {
    // The wake-up may come in the same turn as the last pool job, which leaves the loop idle.
    int alive = uv_run(loop_.get(), UV_RUN_ONCE);
    if (!woken) {
      ASSERT_GT(alive, 0) << "never woken";
    }
  }
  EXPECT_LT(uploads_->held_bytes(), Uploads::kMemoryBytes);
  EXPECT_TRUE(late->WantsMore());

  // Everyone finishes; a log appended from memory is held until it is in the spool.
  int filed = 0;
  ASSERT_TRUE(late->Write("boot line\n").ok());
  late->Finish([&](Result<UploadResult> r) {
    EXPECT_TRUE(r.ok());
    ++filed;
  });
  EXPECT_EQ(late->filing_bytes_for_test(), 10u);
  for (auto& sink : sinks) {
    sink->Finish([&](Result<UploadResult> r) {
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      ++filed;
    });
  }
  ASSERT_TRUE(loop_.Run().ok());
  EXPECT_EQ(filed, static_cast<int>(sinks.size()) + 1);
  EXPECT_EQ(uploads_->held_bytes(), 0u);
  EXPECT_EQ(Spool("0004f2ffffff", "boot"), "boot line\n");
}

// An upload that has begun goes on past the budget even when it holds nothing at the moment (its
// last piece written, the next not yet arrived): only uploads that have not begun wait.
TEST_F(UploadsTest, AnUploadUnderWayGoesOnPastTheBudget) {
  std::string piece(UploadSink::kChunkBytes, 'p');
  auto begun = uploads_->Begin("0004f2aaaaaa-phone.cfg", ClassifyUpload("0004f2aaaaaa-phone.cfg"),
                               1 << 20);
  ASSERT_TRUE(begun->Write(piece).ok());
  for (int i = 0; i < 1000 && uploads_->held_bytes() > 0; ++i) uv_run(loop_.get(), UV_RUN_ONCE);
  ASSERT_EQ(uploads_->held_bytes(), 0u) << "its piece is written";
  std::vector<std::shared_ptr<UploadSink>> others = FillTheBudget();
  EXPECT_TRUE(begun->WantsMore()) << "begun, holding nothing now";
  auto fresh = uploads_->Begin("0004f2bbbbbb-phone.cfg", ClassifyUpload("0004f2bbbbbb-phone.cfg"),
                               1 << 20);
  fresh->OnWantsMore([] {});
  EXPECT_FALSE(fresh->WantsMore()) << "not begun";
  for (auto& s : others) s->Abort();
  begun->Abort();
  fresh->Abort();
  ASSERT_TRUE(loop_.Run().ok());
  EXPECT_EQ(uploads_->held_bytes(), 0u);
}

// An upload that goes away gives its share of the budget back.
TEST_F(UploadsTest, AnAbortedUploadGivesItsBudgetBack) {
  auto sink = uploads_->Begin("0004f282e824-phone.cfg", ClassifyUpload("0004f282e824-phone.cfg"),
                              1 << 20);
  ASSERT_TRUE(sink->Write(std::string(3 * UploadSink::kChunkBytes, 'x')).ok());
  ASSERT_TRUE(sink->Write("tail").ok());
  EXPECT_EQ(uploads_->held_bytes(), 3 * UploadSink::kChunkBytes + 4)
      << "one on the pool, two queued, a piece begun";
  sink->Abort();
  EXPECT_EQ(uploads_->held_bytes(), UploadSink::kChunkBytes) << "the one on the pool, until done";
  ASSERT_TRUE(loop_.Run().ok());
  EXPECT_EQ(uploads_->held_bytes(), 0u);
}

}  // namespace
}  // namespace siterelay::files
