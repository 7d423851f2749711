#include "sync/prefetch.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "relay/base/sha256.h"
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

// An origin serving a tree and a manifest.json describing it. `lie` makes the manifest state a
// different digest for one path than the bytes served.
class Site {
 public:
  void Put(const std::string& path, const std::string& bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    files_[path] = bytes;
  }
  void Remove(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    files_.erase(path);
  }
  void Lie(const std::string& path) { lie_ = path; }
  void Delay(const std::string& path, int ms) { delay_[path] = ms; }

  OriginReply Answer(const OriginRequest& req) {
    std::lock_guard<std::mutex> lock(mu_);
    OriginReply r;
    std::string path = req.target.substr(1);
    if (path == "manifest.json") {
      std::string json = "{\"files\": [";
      for (const auto& [p, b] : files_) {
        if (json.back() != '[') json += ",";
        std::string sha = p == lie_ ? std::string(64, '0') : Sha256::Of(b).Hex();
        json += "{\"path\": \"" + p + "\", \"size\": " + std::to_string(b.size()) +
                ", \"sha256\": \"" + sha + "\"}";
      }
      r.body = json + "]}";
      return r;
    }
    auto it = files_.find(path);
    if (it == files_.end()) {
      r.status = 404;
      return r;
    }
    r.body = it->second;
    if (auto d = delay_.find(path); d != delay_.end()) r.delay_ms = d->second;
    return r;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> files_;
  std::map<std::string, int> delay_;
  std::string lie_;
};

class PrefetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = siterelay::testing::OpenTestCache(dir_.path(), &clock_);
    origin_ = std::make_unique<FakeOrigin>([this](const OriginRequest& r) {
      return site_.Answer(r);
    });
    config_.url = origin_->url();
    config_.manifest = "manifest.json";
    fetcher_ = std::make_unique<Fetcher>(loop_.get(), config_, cache_.get(), &clock_);
    pass_ = std::make_unique<Prefetcher>(loop_.get(), config_, cache_.get(), fetcher_.get(),
                                         &clock_);
  }
  void TearDown() override {
    pass_.reset();
    fetcher_.reset();
    uv_run(loop_.get(), UV_RUN_NOWAIT);
  }

  void RunUntil(const std::function<bool()>& done) {
    siterelay::testing::RunUntil(loop_.get(), done);
  }

  Status Sync() {
    std::optional<Status> got;
    pass_->Run([&](Status s) { got = s; });
    RunUntil([&] { return got.has_value(); });
    return got.value_or(Status::Internal("no answer"));
  }

  size_t RequestsFor(const std::string& target) {
    size_t n = 0;
    for (const auto& r : origin_->requests()) n += r.target == target;
    return n;
  }

  siterelay::testing::TempDir dir_;
  ManualClock clock_;
  Loop loop_;
  std::unique_ptr<cache::Cache> cache_;
  Site site_;
  std::unique_ptr<FakeOrigin> origin_;
  OriginConfig config_;
  std::unique_ptr<Fetcher> fetcher_;
  std::unique_ptr<Prefetcher> pass_;
};

TEST_F(PrefetcherTest, TheSetBecomesVisibleTogetherOnceEveryFileIsVerified) {
  site_.Put("000000000000.cfg", "<APPLICATION APP_FILE_PATH=\"sip.ld\"/>");
  site_.Put("sip.ld", std::string(200000, 'x'));
  site_.Delay("sip.ld", 300);
  std::optional<Status> got;
  pass_->Run([&](Status s) { got = s; });
  RunUntil([&] { return pass_->progress().files_done >= 1; });  // the cfg is in, the image not
  EXPECT_FALSE(got.has_value());
  EXPECT_EQ(cache_->Lookup("000000000000.cfg"), nullptr) << "a config without its image";
  RunUntil([&] { return got.has_value(); });
  ASSERT_TRUE(got->ok()) << got->ToString();
  for (const char* p : {"000000000000.cfg", "sip.ld"}) {
    const cache::Entry* e = cache_->Lookup(p);
    ASSERT_NE(e, nullptr) << p;
    EXPECT_EQ(e->source, cache::Source::kManifest);
    EXPECT_TRUE(e->pinned);
    EXPECT_EQ(e->fresh_until, 0);
  }
  EXPECT_EQ(pass_->progress().generation, 1u);
  EXPECT_EQ(pass_->progress().files_done, 2u);
}

TEST_F(PrefetcherTest, AFileThatDoesNotMatchItsDigestIsNeverPublishedNorAnyOfItsSet) {
  site_.Put("000000000000.cfg", "<APPLICATION/>");
  site_.Put("sip.ld", "tampered image");
  site_.Lie("sip.ld");
  Status s = Sync();
  EXPECT_TRUE(s.Is(StatusCode::kUnavailable)) << s.ToString();
  EXPECT_NE(s.message().find("sip.ld"), std::string::npos);
  EXPECT_EQ(cache_->Lookup("sip.ld"), nullptr);
  EXPECT_EQ(cache_->Lookup("000000000000.cfg"), nullptr);
  EXPECT_FALSE(cache_->HasObject(Sha256::Of("tampered image")));
  EXPECT_EQ(RequestsFor("/sip.ld"), static_cast<size_t>(kMaxObjectAttempts));
  EXPECT_EQ(pass_->progress().files_failed, 1u);
}

TEST_F(PrefetcherTest, ANewSetReplacesTheOldAndDroppedFilesBecomeStalePullThrough) {
  site_.Put("000000000000.cfg", "v1");
  site_.Put("old.ld", "old image");
  ASSERT_TRUE(Sync().ok());
  site_.Put("000000000000.cfg", "v2");
  site_.Remove("old.ld");
  site_.Put("new.ld", "new image");
  ASSERT_TRUE(Sync().ok());
  EXPECT_EQ(cache_->Lookup("000000000000.cfg")->sha256, Sha256::Of("v2"));
  EXPECT_EQ(cache_->Lookup("new.ld")->source, cache::Source::kManifest);
  const cache::Entry* old = cache_->Lookup("old.ld");
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(old->source, cache::Source::kOrigin);
  EXPECT_FALSE(old->pinned);
  EXPECT_LE(old->fresh_until, clock_.NowSeconds());  // asked of the origin before it is served
  EXPECT_EQ(pass_->progress().generation, 2u);
  std::vector<cache::GenerationRecord> history;
  ASSERT_TRUE(cache_->LoadGenerations(10, &history).ok());
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].files, 2u);  // v2 lists 000000000000.cfg and new.ld
  EXPECT_EQ(history[0].manifest, origin_->url() + "manifest.json");
  // A relay started later carries on counting from the catalog.
  Prefetcher again(loop_.get(), config_, cache_.get(), fetcher_.get(), &clock_);
  EXPECT_EQ(again.progress().generation, 2u);
}

TEST_F(PrefetcherTest, FilesAlreadyHereAreNotDownloadedAgain) {
  site_.Put("sip.ld", "image");
  ASSERT_TRUE(Sync().ok());
  ASSERT_TRUE(Sync().ok());
  EXPECT_EQ(RequestsFor("/sip.ld"), 1u);
  EXPECT_EQ(RequestsFor("/manifest.json"), 2u);
}

TEST_F(PrefetcherTest, BrokenManifestChangesNothing) {
  site_.Put("sip.ld", "image");
  ASSERT_TRUE(Sync().ok());
  config_.manifest = "missing.json";
  pass_ = std::make_unique<Prefetcher>(loop_.get(), config_, cache_.get(), fetcher_.get(),
                                       &clock_);
  Status s = Sync();
  EXPECT_TRUE(s.Is(StatusCode::kNotFound)) << s.ToString();
  EXPECT_EQ(cache_->Lookup("sip.ld")->source, cache::Source::kManifest);
}

TEST_F(PrefetcherTest, PrefetchPathsArePulledAndPinned) {
  site_.Put("site.cfg", "site");
  config_.manifest.clear();
  config_.prefetch = {"site.cfg", "/absent.cfg"};
  pass_ = std::make_unique<Prefetcher>(loop_.get(), config_, cache_.get(), fetcher_.get(),
                                       &clock_);
  Status s = Sync();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("absent.cfg"), std::string::npos) << s.message();
  const cache::Entry* e = cache_->Lookup("site.cfg");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->pinned);
  EXPECT_EQ(e->source, cache::Source::kOrigin);
}

}  // namespace
}  // namespace siterelay::sync
