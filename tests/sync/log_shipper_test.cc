#include "sync/log_shipper.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zstd.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "relay/base/uv.h"
#include "tests/testing/cache.h"
#include "tests/testing/fake_origin.h"
#include "tests/testing/loop.h"
#include "tests/testing/temp_dir.h"

namespace siterelay::sync {
namespace {

using siterelay::testing::FakeOrigin;
using siterelay::testing::OriginReply;
using siterelay::testing::OriginRequest;

// The records of one POSTed batch.
std::vector<nlohmann::json> Records(const OriginRequest& r) {
  unsigned long long size = ZSTD_getFrameContentSize(r.body.data(), r.body.size());
  EXPECT_NE(size, ZSTD_CONTENTSIZE_ERROR);
  std::string ndjson(size, '\0');
  size_t n = ZSTD_decompress(ndjson.data(), ndjson.size(), r.body.data(), r.body.size());
  EXPECT_FALSE(ZSTD_isError(n));
  std::vector<nlohmann::json> out;
  size_t pos = 0;
  while (pos < ndjson.size()) {
    size_t nl = ndjson.find('\n', pos);
    out.push_back(nlohmann::json::parse(ndjson.substr(pos, nl - pos)));
    pos = nl + 1;
  }
  return out;
}

class LogShipperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = siterelay::testing::OpenTestCache(dir_.path(), &clock_);
    clock_.Set(1795636800);
    config_ = Config::Defaults();
    config_.data_dir = dir_.path();
    config_.relay_id = "branch-1";
    config_.logs.batch_age = 3600;  // batches are cut by size or CutNow() in these tests
    ASSERT_TRUE(FileSystem::Default()->MakeDirs(dir_.path() + "/spool").ok());
  }
  void TearDown() override {
    shipper_.reset();
    sender_.reset();
    uv_run(loop_.get(), UV_RUN_NOWAIT);
  }

  void StartShipper(const std::string& url) {
    config_.logs.upstream = url;
    sender_ = std::make_unique<Sender>(loop_.get(), nullptr);
    shipper_ = std::make_unique<LogShipper>(loop_.get(), config_, cache_.get(), sender_.get(),
                                            &clock_);
    shipper_->SetRetryDelays(20, 100);
    ASSERT_TRUE(shipper_->Start().ok());
  }
  // A restart: the shipper goes, its state stays in the catalog and the spool.
  void Restart(const std::string& url) {
    shipper_.reset();
    sender_.reset();
    uv_run(loop_.get(), UV_RUN_NOWAIT);
    StartShipper(url);
  }

  // What Uploads does for a log upload: append durably, then tell the shipper.
  void Append(const std::string& file, const std::string& lines) {
    std::string path = dir_.path() + "/spool/" + file;
    std::string old = siterelay::testing::ReadFile(path);
    siterelay::testing::WriteFile(path, old + lines);
    if (shipper_) shipper_->Appended(file, lines.size());
  }

  void RunUntil(const std::function<bool()>& done) {
    siterelay::testing::RunUntil(loop_.get(), done);
  }

  siterelay::testing::TempDir dir_;
  ManualClock clock_;
  Loop loop_;
  Config config_;
  std::unique_ptr<cache::Cache> cache_;
  std::unique_ptr<Sender> sender_;
  std::unique_ptr<LogShipper> shipper_;
};

TEST_F(LogShipperTest, LinesArePostedAsOneZstdBatchOfNdjsonWithAnIdempotencyKey) {
  FakeOrigin collector([](const OriginRequest&) { return OriginReply{200, {}, ""}; });
  StartShipper(collector.url() + "logs");
  Append("0004f2aabbcc-app.log", "0517184023|copy |3|00|one\n0517184024|copy |3|00|two\r\n");
  Append("0004f2aabbdd-boot.log", "013527.204|dhcpc|3|00|three\n");
  shipper_->CutNow();
  RunUntil([&] { return shipper_->stats().shipped_batches == 1; });
  auto reqs = collector.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/logs");
  EXPECT_EQ(*reqs[0].Header("content-type"), "application/x-ndjson");
  EXPECT_EQ(*reqs[0].Header("content-encoding"), "zstd");
  EXPECT_EQ(*reqs[0].Header("idempotency-key"), "branch-1-1");
  auto records = Records(reqs[0]);
  ASSERT_EQ(records.size(), 3u);
  std::vector<std::string> lines;
  for (const auto& r : records) lines.push_back(r["mac"].get<std::string>() + " " +
                                                r["file"].get<std::string>() + " " +
                                                r["line"].get<std::string>());
  EXPECT_EQ(lines, (std::vector<std::string>{"0004f2aabbcc app 0517184023|copy |3|00|one",
                                             "0004f2aabbcc app 0517184024|copy |3|00|two",
                                             "0004f2aabbdd boot 013527.204|dhcpc|3|00|three"}));
  EXPECT_EQ(records[0]["seq"], 1);
  EXPECT_EQ(records[2]["seq"], 3);
  EXPECT_EQ(records[0]["relay"], "branch-1");
  EXPECT_EQ(records[0]["received"], "2026-11-25T20:00:00Z");
  EXPECT_EQ(shipper_->stats().shipped_lines, 3);
  EXPECT_EQ(shipper_->stats().unbatched_bytes, 0u);
}

TEST_F(LogShipperTest, ABatchIsCutWhenItIsFullWithoutWaiting) {
  FakeOrigin collector([](const OriginRequest&) { return OriginReply{200, {}, ""}; });
  config_.logs.batch_bytes = 4096;
  StartShipper(collector.url());
  std::string many;
  for (int i = 0; i < 100; ++i) many += "0517184023|so   |4|00|line " + std::to_string(i) + "\n";
  Append("0004f2aabbcc-app.log", many);  // about 3 KB of lines: over half a batch
  RunUntil([&] { return shipper_->stats().shipped_batches >= 1; });  // no CutNow, no waiting
  EXPECT_GT(shipper_->stats().unbatched_bytes, 0u) << "the rest waits for batch_age";
  shipper_->CutNow();
  RunUntil([&] { return shipper_->stats().shipped_lines == 100; });
  auto reqs = collector.requests();
  ASSERT_GE(reqs.size(), 2u) << "4 KB batches: the 100 lines need more than one";
  int64_t expect = 1;
  for (const auto& r : reqs) {
    EXPECT_LE(Records(r).size() * 60, 4096u + 200u);
    for (const auto& rec : Records(r)) EXPECT_EQ(rec["seq"], expect++) << "in order, no gaps";
  }
}

TEST_F(LogShipperTest, FailuresAreRetriedWithTheSameKeyAndBytes) {
  std::atomic<int> calls{0};
  FakeOrigin collector([&](const OriginRequest&) {
    int n = ++calls;
    if (n == 1) return OriginReply{503, {}, ""};
    if (n == 2) return OriginReply{429, {{"Retry-After", "0"}}, ""};
    return OriginReply{202, {}, ""};
  });
  StartShipper(collector.url());
  Append("0004f2aabbcc-app.log", "a\nb\n");
  shipper_->CutNow();
  RunUntil([&] { return shipper_->stats().shipped_batches == 1; });
  auto reqs = collector.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].body, reqs[2].body);
  EXPECT_EQ(*reqs[0].Header("idempotency-key"), *reqs[2].Header("idempotency-key"));
}

TEST_F(LogShipperTest, ARefusedBatchIsParkedAndTheNextOneGoes) {
  std::atomic<int> calls{0};
  FakeOrigin collector([&](const OriginRequest&) {
    return ++calls == 1 ? OriginReply{400, {}, "bad"} : OriginReply{200, {}, ""};
  });
  StartShipper(collector.url());
  Append("0004f2aabbcc-app.log", "first\n");
  shipper_->CutNow();
  RunUntil([&] { return shipper_->stats().dead_batches == 1; });
  Append("0004f2aabbcc-app.log", "second\n");
  shipper_->CutNow();
  RunUntil([&] { return shipper_->stats().shipped_batches == 1; });
  EXPECT_EQ(calls.load(), 2) << "the refused batch is not retried";
  EXPECT_EQ(Records(collector.requests()[1])[0]["line"], "second");
  Restart(collector.url());
  EXPECT_EQ(shipper_->stats().dead_batches, 1u) << "kept across a restart for the console";
}

TEST_F(LogShipperTest, ABuiltBatchSurvivesARestartByteForByteAndNothingIsCutTwice) {
  std::atomic<bool> up{false};
  FakeOrigin collector([&](const OriginRequest&) {
    return up ? OriginReply{200, {}, ""} : OriginReply{503, {}, ""};
  });
  StartShipper(collector.url());
  Append("0004f2aabbcc-app.log", "kept\n");
  shipper_->CutNow();
  RunUntil([&] { return collector.requests().size() >= 1; });
  std::string first_body = collector.requests()[0].body;
  Restart(collector.url());
  EXPECT_EQ(shipper_->stats().pending_batches, 1u);
  EXPECT_EQ(shipper_->stats().unbatched_bytes, 0u) << "the cursor moved with the batch";
  up = true;
  RunUntil([&] { return shipper_->stats().shipped_batches == 1; });
  auto reqs = collector.requests();
  EXPECT_EQ(reqs.back().body, first_body);
  EXPECT_EQ(*reqs.back().Header("idempotency-key"), "branch-1-1");
  Append("0004f2aabbcc-app.log", "next\n");
  shipper_->CutNow();
  RunUntil([&] { return shipper_->stats().shipped_batches == 2; });
  auto last = Records(collector.requests().back());
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0]["line"], "next");
  EXPECT_EQ(last[0]["seq"], 2);
  EXPECT_EQ(*collector.requests().back().Header("idempotency-key"), "branch-1-2");
}

TEST_F(LogShipperTest, AStrayBatchFileFromACrashIsRemovedAndItsLinesCutAgain) {
  FakeOrigin collector([](const OriginRequest&) { return OriginReply{200, {}, ""}; });
  Append("0004f2aabbcc-app.log", "before the crash\n");
  ASSERT_TRUE(FileSystem::Default()->MakeDirs(dir_.path() + "/spool/batches").ok());
  siterelay::testing::WriteFile(dir_.path() + "/spool/batches/1.ndjson.zst", "half written");
  StartShipper(collector.url());
  struct stat st;
  EXPECT_NE(::stat((dir_.path() + "/spool/batches/1.ndjson.zst").c_str(), &st), 0);
  shipper_->CutNow();
  RunUntil([&] { return shipper_->stats().shipped_lines == 1; });
  EXPECT_EQ(Records(collector.requests()[0])[0]["line"], "before the crash");
}

TEST_F(LogShipperTest, ALineWithoutItsEndWaitsForItWhileItIsYoung) {
  FakeOrigin collector([](const OriginRequest&) { return OriginReply{200, {}, ""}; });
  config_.logs.batch_bytes = 64;  // a batch is cut once 32 bytes wait: by size, not by age
  StartShipper(collector.url());
  Append("0004f2aabbcc-app.log", "0517184023|copy |3|00|complete line\nhal");
  RunUntil([&] { return shipper_->stats().shipped_lines == 1; });
  EXPECT_EQ(shipper_->stats().unbatched_bytes, 3u) << "'hal' waits for its end";
  EXPECT_EQ(Records(collector.requests()[0])[0]["line"], "0517184023|copy |3|00|complete line");
  Append("0004f2aabbcc-app.log", "f\n");
  shipper_->CutNow();
  RunUntil([&] { return shipper_->stats().shipped_lines == 2; });
  EXPECT_EQ(Records(collector.requests().back())[0]["line"], "half");
}

TEST_F(LogShipperTest, AFileThatIsNoZstdDictionaryIsRefusedAtStart) {
  config_.logs.dictionary = dir_.path() + "/not-a-dict";
  siterelay::testing::WriteFile(config_.logs.dictionary, "plain text");
  config_.logs.upstream = "http://127.0.0.1:1/";
  sender_ = std::make_unique<Sender>(loop_.get(), nullptr);
  shipper_ = std::make_unique<LogShipper>(loop_.get(), config_, cache_.get(), sender_.get(),
                                          &clock_);
  Status s = shipper_->Start();
  EXPECT_TRUE(s.Is(StatusCode::kInvalidArgument)) << s.ToString();
}

TEST_F(LogShipperTest, PastTheSpoolCapTheOldestLinesAreDroppedAndCounted) {
  std::atomic<bool> up{false};
  FakeOrigin collector([&](const OriginRequest&) {
    return up ? OriginReply{200, {}, ""} : OriginReply{503, {}, ""};
  });
  config_.logs.spool_bytes = 1200;
  StartShipper(collector.url());
  std::string old_lines, new_lines;
  for (int i = 0; i < 40; ++i) old_lines += "old line " + std::to_string(i) + " xxxxxxxxxx\n";
  for (int i = 0; i < 40; ++i) new_lines += "new line " + std::to_string(i) + " xxxxxxxxxx\n";
  Append("0004f2aabbcc-app.log", old_lines);
  Append("0004f2aabbdd-app.log", new_lines);  // 2 x ~920 bytes unbatched: over 1200
  RunUntil([&] { return shipper_->stats().dropped_lines > 0; });
  EXPECT_EQ(shipper_->stats().dropped_lines, 40);
  up = true;
  shipper_->CutNow();
  RunUntil([&] { return shipper_->stats().shipped_lines == 40; });
  for (const auto& req : collector.requests()) {
    if (req.body.empty()) continue;
    for (const auto& r : Records(req)) {
      EXPECT_EQ(r["mac"], "0004f2aabbdd") << "the newest lines stay: " << r.dump();
    }
  }
}

}  // namespace
}  // namespace siterelay::sync
