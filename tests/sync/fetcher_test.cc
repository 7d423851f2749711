#include "sync/fetcher.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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

std::string Pattern(size_t n, char seed = 'a') {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(static_cast<size_t>(seed) + (i * 7 + i / 251) % 26);
  return s;
}

// What an origin answers to "Range: bytes=N-" of `body`: 206 with the rest.
OriginReply Rest(const std::string& body, const OriginRequest& req, const std::string& etag) {
  size_t from = std::stoul(req.Header("range")->substr(6));
  OriginReply r;
  r.status = 206;
  r.headers = {{"ETag", etag},
               {"Content-Range", "bytes " + std::to_string(from) + "-" +
                                     std::to_string(body.size() - 1) + "/" +
                                     std::to_string(body.size())}};
  r.body = body.substr(from);
  return r;
}

// Everything a GrowingFile holds once complete.
std::string Contents(const cache::GrowingFile& g) {
  auto fd = g.Dup();
  EXPECT_TRUE(fd.ok());
  std::string out(g.written(), '\0');
  ssize_t n = ::pread(fd->get(), out.data(), out.size(), 0);
  EXPECT_EQ(n, static_cast<ssize_t>(out.size()));
  return out;
}

class FetcherTest : public ::testing::Test {
 protected:
  void SetUp() override { cache_ = siterelay::testing::OpenTestCache(dir_.path(), &clock_); }
  void TearDown() override {
    fetcher_.reset();
    uv_run(loop_.get(), UV_RUN_NOWAIT);
  }

  void StartFetcher(const std::string& url) {
    config_.url = url;
    fetcher_ = std::make_unique<Fetcher>(loop_.get(), config_, cache_.get(), &clock_);
  }

  void RunUntil(const std::function<bool()>& done) {
    siterelay::testing::RunUntil(loop_.get(), done);
  }

  // One fetch to its end: the outcome for a reader that wants the whole file.
  FetchOutcome FetchWhole(const std::string& path) {
    std::optional<FetchOutcome> got;
    fetcher_->Fetch(path, Want::kComplete, [&](FetchOutcome o) { got = std::move(o); });
    RunUntil([&] { return got.has_value(); });
    return got.value_or(FetchOutcome{Status::Internal("no answer"), nullptr, 0});
  }

  std::string CachedBytes(const std::string& path) {
    const cache::Entry* e = cache_->Lookup(path);
    if (e == nullptr) return "<not cached>";
    return siterelay::testing::ReadFile(cache_->store().PathOf(e->sha256));
  }

  siterelay::testing::TempDir dir_;
  ManualClock clock_;
  Loop loop_;
  std::unique_ptr<cache::Cache> cache_;
  OriginConfig config_;
  std::unique_ptr<Fetcher> fetcher_;
};

TEST_F(FetcherTest, ConcurrentReadersShareOneTransfer) {
  std::string body = Pattern(512 * 1024);
  FakeOrigin origin([&](const OriginRequest&) {
    OriginReply r;
    r.body = body;
    r.headers = {{"ETag", "\"v1\""}};
    r.drip_bytes = 64 * 1024;
    r.drip_ms = 5;
    return r;
  });
  StartFetcher(origin.url());
  std::vector<std::shared_ptr<cache::GrowingFile>> bodies;
  int completes = 0;
  for (int i = 0; i < 20; ++i) {
    fetcher_->Fetch("fw/sip.ld", Want::kBody, [&](FetchOutcome o) {
      ASSERT_TRUE(o.status.ok()) << o.status.ToString();
      ASSERT_NE(o.body, nullptr);
      bodies.push_back(o.body);
    });
  }
  fetcher_->Fetch("fw/sip.ld", Want::kComplete, [&](FetchOutcome o) {
    EXPECT_TRUE(o.status.ok());
    EXPECT_EQ(o.body, nullptr);
    ++completes;
  });
  RunUntil([&] { return completes == 1; });
  ASSERT_EQ(bodies.size(), 20u);
  for (const auto& b : bodies) EXPECT_EQ(b, bodies[0]);  // one transfer, one body
  EXPECT_TRUE(bodies[0]->complete());
  EXPECT_EQ(Contents(*bodies[0]), body);
  EXPECT_EQ(origin.requests().size(), 1u);
  EXPECT_EQ(CachedBytes("fw/sip.ld"), body);
  const cache::Entry* e = cache_->Lookup("fw/sip.ld");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->sha256, Sha256::Of(body));
  EXPECT_EQ(e->etag, "\"v1\"");
  EXPECT_EQ(e->fresh_until, clock_.NowSeconds() + config_.fresh_for);
  EXPECT_EQ(fetcher_->stats().published, 1u);
  EXPECT_EQ(fetcher_->stats().bytes_from_origin, body.size());
  EXPECT_EQ(fetcher_->stats().bytes_by_class[static_cast<size_t>(ContentClass::kFirmware)],
            body.size());
  EXPECT_EQ(fetcher_->in_flight(), 0u);
}

TEST_F(FetcherTest, ReadersGetBytesBeforeTheTransferEnds) {
  std::string body = Pattern(256 * 1024);
  FakeOrigin origin([&](const OriginRequest&) {
    OriginReply r;
    r.body = body;
    r.drip_bytes = 16 * 1024;
    r.drip_ms = 20;
    return r;
  });
  StartFetcher(origin.url());
  std::shared_ptr<cache::GrowingFile> g;
  fetcher_->Fetch("a.bin", Want::kBody, [&](FetchOutcome o) { g = o.body; });
  RunUntil([&] { return g != nullptr && g->readable() > 0; });
  EXPECT_FALSE(g->complete());
  ASSERT_TRUE(g->size().has_value());
  EXPECT_EQ(*g->size(), body.size());
  EXPECT_LT(g->readable(), body.size());
  RunUntil([&] { return g->complete(); });
  EXPECT_EQ(Contents(*g), body);
}

TEST_F(FetcherTest, OriginNotFoundIsRememberedForNegativeFor) {
  FakeOrigin origin([](const OriginRequest&) {
    OriginReply r;
    r.status = 404;
    r.body = "no";
    return r;
  });
  config_.negative_for = 30;
  StartFetcher(origin.url());
  FetchOutcome o = FetchWhole("0004f2aabbcc.cfg");
  EXPECT_TRUE(o.status.Is(StatusCode::kNotFound)) << o.status.ToString();
  EXPECT_TRUE(fetcher_->KnownMissing("0004f2aabbcc.cfg"));
  EXPECT_FALSE(fetcher_->KnownMissing("000000000000.cfg"));
  clock_.Advance(30);
  EXPECT_FALSE(fetcher_->KnownMissing("0004f2aabbcc.cfg"));
  EXPECT_EQ(cache_->Lookup("0004f2aabbcc.cfg"), nullptr);
}

TEST_F(FetcherTest, StaleEntryIsRevalidatedAndA304CostsNoBody) {
  int version = 1;
  FakeOrigin origin([&](const OriginRequest& req) {
    OriginReply r;
    std::string etag = "\"v" + std::to_string(version) + "\"";
    const std::string* inm = req.Header("if-none-match");
    if (inm != nullptr && *inm == etag) {
      r.status = 304;
      r.headers = {{"ETag", etag}};
      return r;
    }
    r.headers = {{"ETag", etag}, {"Last-Modified", "Tue, 24 Nov 2026 10:00:00 GMT"}};
    r.body = "<cfg v=\"" + std::to_string(version) + "\"/>";
    return r;
  });
  config_.fresh_for = 60;
  StartFetcher(origin.url());
  ASSERT_TRUE(FetchWhole("site.cfg").status.ok());
  clock_.Advance(61);
  FetchOutcome o = FetchWhole("site.cfg");
  ASSERT_TRUE(o.status.ok()) << o.status.ToString();
  EXPECT_EQ(o.body, nullptr);
  auto reqs = origin.requests();
  ASSERT_EQ(reqs.size(), 2u);
  ASSERT_NE(reqs[1].Header("if-none-match"), nullptr);
  EXPECT_EQ(*reqs[1].Header("if-none-match"), "\"v1\"");
  ASSERT_NE(reqs[1].Header("if-modified-since"), nullptr);
  EXPECT_EQ(*reqs[1].Header("if-modified-since"), "Tue, 24 Nov 2026 10:00:00 GMT");
  EXPECT_EQ(cache_->Lookup("site.cfg")->fresh_until, clock_.NowSeconds() + 60);
  EXPECT_EQ(fetcher_->stats().not_modified, 1u);
  EXPECT_EQ(fetcher_->stats().revalidations, 1u);

  version = 2;  // changed at the origin: the revalidation brings the new file
  clock_.Advance(61);
  ASSERT_TRUE(FetchWhole("site.cfg").status.ok());
  EXPECT_EQ(CachedBytes("site.cfg"), "<cfg v=\"2\"/>");
}

TEST_F(FetcherTest, OriginErrorLeavesTheCacheAsItWas) {
  bool broken = false;
  FakeOrigin origin([&](const OriginRequest&) {
    OriginReply r;
    if (broken) {
      r.status = 503;
      r.body = "down for maintenance";
    } else {
      r.body = "good";
      r.headers = {{"ETag", "\"g\""}};
    }
    return r;
  });
  StartFetcher(origin.url());
  ASSERT_TRUE(FetchWhole("x.cfg").status.ok());
  broken = true;
  clock_.Advance(3600);
  FetchOutcome o = FetchWhole("x.cfg");
  EXPECT_TRUE(o.status.Is(StatusCode::kUnavailable)) << o.status.ToString();
  EXPECT_EQ(CachedBytes("x.cfg"), "good");
  EXPECT_EQ(fetcher_->stats().failures, 1u);
}

TEST_F(FetcherTest, CutBodyResumesWithRangeAndIfRange) {
  std::string body = Pattern(300 * 1000);
  FakeOrigin origin([&](const OriginRequest& req) {
    if (req.Header("range") != nullptr) return Rest(body, req, "\"img1\"");
    OriginReply r;
    r.headers = {{"ETag", "\"img1\""}};
    r.body = body;
    r.cut_after = 100 * 1000;  // the link drops a third of the way in
    return r;
  });
  StartFetcher(origin.url());
  std::shared_ptr<cache::GrowingFile> g;
  fetcher_->Fetch("sip.ld", Want::kBody, [&](FetchOutcome o) { g = o.body; });
  FetchOutcome o = FetchWhole("sip.ld");
  ASSERT_TRUE(o.status.ok()) << o.status.ToString();
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(g->complete());  // the same body carried on: its readers were never cut off
  EXPECT_EQ(Contents(*g), body);
  EXPECT_EQ(CachedBytes("sip.ld"), body);
  auto reqs = origin.requests();
  ASSERT_EQ(reqs.size(), 2u);
  ASSERT_NE(reqs[1].Header("range"), nullptr);
  EXPECT_EQ(*reqs[1].Header("range"), "bytes=100000-");
  ASSERT_NE(reqs[1].Header("if-range"), nullptr);
  EXPECT_EQ(*reqs[1].Header("if-range"), "\"img1\"");
  EXPECT_EQ(fetcher_->stats().resumes, 1u);
}

TEST_F(FetcherTest, ResumeAnsweredWithAChangedFileStartsOverAndCutsOldReaders) {
  std::string old_body = Pattern(200 * 1000, 'a');
  std::string new_body = Pattern(150 * 1000, 'k');
  FakeOrigin origin([&](const OriginRequest& req) {
    OriginReply r;
    if (req.Header("range") != nullptr) {  // If-Range no longer matches: the whole new file
      r.headers = {{"ETag", "\"img2\""}};
      r.body = new_body;
      return r;
    }
    r.headers = {{"ETag", "\"img1\""}};
    r.body = old_body;
    r.cut_after = 50 * 1000;
    return r;
  });
  StartFetcher(origin.url());
  std::shared_ptr<cache::GrowingFile> first;
  fetcher_->Fetch("sip.ld", Want::kBody, [&](FetchOutcome o) { first = o.body; });
  FetchOutcome o = FetchWhole("sip.ld");
  ASSERT_TRUE(o.status.ok()) << o.status.ToString();
  ASSERT_NE(first, nullptr);
  EXPECT_TRUE(first->failed());
  EXPECT_FALSE(first->complete());
  EXPECT_EQ(CachedBytes("sip.ld"), new_body);
}

TEST_F(FetcherTest, CutBodyWithoutValidatorsFailsAndIsNeverCached) {
  FakeOrigin origin([](const OriginRequest&) {
    OriginReply r;
    r.body = Pattern(100 * 1000);
    r.cut_after = 10 * 1000;
    return r;
  });
  StartFetcher(origin.url());
  std::shared_ptr<cache::GrowingFile> g;
  fetcher_->Fetch("a.ld", Want::kBody, [&](FetchOutcome o) { g = o.body; });
  FetchOutcome o = FetchWhole("a.ld");
  EXPECT_FALSE(o.status.ok());
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(g->failed());
  EXPECT_LT(g->readable(), 100u * 1000);
  EXPECT_EQ(cache_->Lookup("a.ld"), nullptr);
  EXPECT_EQ(origin.requests().size(), 1u);
}

TEST_F(FetcherTest, CompressedTransferIsStoredDecoded) {
  std::string xml;
  for (int i = 0; i < 2000; ++i) xml += "<setting name=\"voice.codec." + std::to_string(i) + "\"/>\n";
  std::string packed(ZSTD_compressBound(xml.size()), '\0');
  size_t n = ZSTD_compress(packed.data(), packed.size(), xml.data(), xml.size(), 3);
  ASSERT_FALSE(ZSTD_isError(n));
  packed.resize(n);
  FakeOrigin origin([&](const OriginRequest& req) {
    OriginReply r;
    const std::string* ae = req.Header("accept-encoding");
    if (ae != nullptr && ae->find("zstd") != std::string::npos) {
      r.headers = {{"Content-Encoding", "zstd"}};
      r.body = packed;
    } else {
      r.body = xml;
    }
    return r;
  });
  StartFetcher(origin.url());
  std::shared_ptr<cache::GrowingFile> g;
  fetcher_->Fetch("site.cfg", Want::kBody, [&](FetchOutcome o) { g = o.body; });
  ASSERT_TRUE(FetchWhole("site.cfg").status.ok());
  ASSERT_NE(g, nullptr);
  EXPECT_FALSE(g->size().has_value());  // the decoded size was not known up front
  EXPECT_EQ(CachedBytes("site.cfg"), xml);
  EXPECT_LT(packed.size() * 5, xml.size());  // the wire carried a fraction of it
}

TEST_F(FetcherTest, RoutesSendPathsToTheirOwnOrigin) {
  FakeOrigin configs([](const OriginRequest&) {
    OriginReply r;
    r.body = "config";
    return r;
  });
  FakeOrigin firmware([](const OriginRequest&) {
    OriginReply r;
    r.body = "firmware";
    return r;
  });
  config_.routes.push_back(OriginRoute{"*.ld", firmware.url(), "", ""});
  StartFetcher(configs.url());
  ASSERT_TRUE(FetchWhole("fw/sip.ld").status.ok());
  ASSERT_TRUE(FetchWhole("site.cfg").status.ok());
  EXPECT_EQ(CachedBytes("fw/sip.ld"), "firmware");
  EXPECT_EQ(CachedBytes("site.cfg"), "config");
  ASSERT_EQ(firmware.requests().size(), 1u);
  EXPECT_EQ(firmware.requests()[0].target, "/fw/sip.ld");
  ASSERT_EQ(configs.requests().size(), 1u);
  EXPECT_EQ(configs.requests()[0].target, "/site.cfg");
}

TEST_F(FetcherTest, SendsBasicAuthToTheOrigin) {
  FakeOrigin origin([](const OriginRequest& req) {
    OriginReply r;
    const std::string* auth = req.Header("authorization");
    if (auth == nullptr || *auth != "Basic dGVuYW50OnMzY3JldA==") {  // tenant:s3cret
      r.status = 404;
      return r;
    }
    r.body = "ok";
    return r;
  });
  config_.user = "tenant";
  config_.password = "s3cret";
  StartFetcher(origin.url());
  EXPECT_TRUE(FetchWhole("a.cfg").status.ok());
  EXPECT_EQ(CachedBytes("a.cfg"), "ok");
}

TEST_F(FetcherTest, FileUrlOriginServesAMountedTree) {
  siterelay::testing::TempDir share;
  siterelay::testing::WriteFile(share / "fw/sip.ld", "from the usb stick");
  StartFetcher("file://" + share.path() + "/");
  ASSERT_TRUE(FetchWhole("fw/sip.ld").status.ok());
  EXPECT_EQ(CachedBytes("fw/sip.ld"), "from the usb stick");
  EXPECT_TRUE(FetchWhole("fw/none.ld").status.Is(StatusCode::kNotFound));
}

TEST_F(FetcherTest, EmptyFileIsCached) {
  FakeOrigin origin([](const OriginRequest&) { return OriginReply{}; });
  StartFetcher(origin.url());
  ASSERT_TRUE(FetchWhole("empty.cfg").status.ok());
  const cache::Entry* e = cache_->Lookup("empty.cfg");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->size, 0u);
}

TEST_F(FetcherTest, UnreachableOriginFailsAsUnavailable) {
  StartFetcher("http://127.0.0.1:1/");  // nothing listens on port 1
  FetchOutcome o = FetchWhole("a.cfg");
  EXPECT_TRUE(o.status.Is(StatusCode::kUnavailable)) << o.status.ToString();
}

TEST_F(FetcherTest, MaxRateCapsTheTransfer) {
  std::string body = Pattern(640 * 1000);
  FakeOrigin origin([&](const OriginRequest&) {
    OriginReply r;
    r.body = body;
    return r;
  });
  config_.max_rate = 200'000;  // bytes/s; the bucket starts with 40 kB saved
  StartFetcher(origin.url());
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(FetchWhole("sip.ld").status.ok());
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(took, 0.9 * 600'000 / 200'000);
  EXPECT_LT(took, 1.5 * 600'000 / 200'000);
  EXPECT_EQ(CachedBytes("sip.ld"), body);
}

TEST_F(FetcherTest, BackgroundDownloadWaitsForAPhoneFacingOne) {
  std::string image = Pattern(300 * 1000);
  FakeOrigin origin([&](const OriginRequest& req) {
    OriginReply r;
    r.body = req.target == "/phone.ld" ? image : "background";
    r.drip_bytes = 30 * 1000;
    r.drip_ms = 20;
    return r;
  });
  StartFetcher(origin.url());
  std::vector<std::string> order;
  fetcher_->Fetch("phone.ld", Want::kComplete, [&](FetchOutcome) { order.push_back("phone"); });
  std::optional<Status> object;
  fetcher_->FetchObject("bg.cfg", Sha256::Of("background"), [&](Status s) {
    object = s;
    order.push_back("background");
  });
  RunUntil([&] { return order.size() == 2; });
  EXPECT_EQ(order, (std::vector<std::string>{"phone", "background"}));
  ASSERT_TRUE(object->ok()) << object->ToString();
  EXPECT_TRUE(cache_->store().SizeOf(Sha256::Of("background")).ok());  // durable under objects/
  EXPECT_EQ(cache_->Lookup("bg.cfg"), nullptr);  // installed, not published
}

TEST_F(FetcherTest, RetryAfterKeepsEveryRequestAwayFromTheOriginUntilThen) {
  FakeOrigin origin([&](const OriginRequest&) {
    OriginReply r;
    r.status = 503;
    r.headers = {{"Retry-After", "120"}};
    return r;
  });
  StartFetcher(origin.url());
  EXPECT_TRUE(FetchWhole("a.cfg").status.Is(StatusCode::kUnavailable));
  FetchOutcome o = FetchWhole("b.cfg");  // a phone does not wait: it fails over at once
  EXPECT_TRUE(o.status.Is(StatusCode::kUnavailable));
  EXPECT_NE(o.status.message().find("Retry-After"), std::string::npos) << o.status.message();
  EXPECT_EQ(origin.requests().size(), 1u);
  clock_.Advance(121);
  EXPECT_TRUE(FetchWhole("b.cfg").status.Is(StatusCode::kUnavailable));
  EXPECT_EQ(origin.requests().size(), 2u);
}

// "Retry-After: 1" from one 503 in a boot storm: a phone asking for a file not cached at all
// waits the second out rather than getting a 502, and gets the origin's answer (here a 404).
TEST_F(FetcherTest, APhoneWaitsOutAShortRetryAfterWhenNothingIsCached) {
  std::atomic<int> requests{0};
  FakeOrigin origin([&](const OriginRequest&) {
    OriginReply r;
    if (requests++ == 0) {
      r.status = 503;
      r.headers = {{"Retry-After", "1"}};
    } else {
      r.status = 404;
    }
    return r;
  });
  StartFetcher(origin.url());
  EXPECT_TRUE(FetchWhole("a.cfg").status.Is(StatusCode::kUnavailable));
  std::optional<FetchOutcome> b;
  fetcher_->Fetch("0004f282e824-phone.cfg", Want::kComplete, [&](FetchOutcome o) { b = o; });
  for (int i = 0; i < 50 && !b; ++i) uv_run(loop_.get(), UV_RUN_NOWAIT);
  EXPECT_FALSE(b.has_value()) << "held, not failed: " << b->status.ToString();
  clock_.Advance(2);  // the timer that holds it is the loop's; the origin's second is this clock's
  RunUntil([&] { return b.has_value(); });
  EXPECT_TRUE(b->status.Is(StatusCode::kNotFound)) << b->status.ToString();
  EXPECT_EQ(requests.load(), 2);
}

// An origin that keeps asking to wait: a phone's transfer waits 5 s in all, not for ever. (Here
// the Retry-After is 3 s and the test's clock stands still, so after one wait the origin still
// asks for 3 s more: that would make 6.)
TEST_F(FetcherTest, APhoneWaitsOutRetryAftersFiveSecondsInAll) {
  FakeOrigin origin([&](const OriginRequest&) {
    OriginReply r;
    r.status = 503;
    r.headers = {{"Retry-After", "3"}};
    return r;
  });
  StartFetcher(origin.url());
  EXPECT_TRUE(FetchWhole("a.cfg").status.Is(StatusCode::kUnavailable));
  auto start = std::chrono::steady_clock::now();
  FetchOutcome b = FetchWhole("0004f282e824-phone.cfg");
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start)
                .count();
  EXPECT_TRUE(b.status.Is(StatusCode::kUnavailable)) << b.status.ToString();
  EXPECT_NE(b.status.message().find("Retry-After"), std::string::npos) << b.status.message();
  EXPECT_GE(ms, 2900) << "it waited the first 3 s";
  EXPECT_EQ(origin.requests().size(), 1u) << "it never went to the origin";
}

TEST_F(FetcherTest, ResumeCarriesOnThroughAnOriginThatIsBrieflyAway) {
  std::string body = Pattern(200 * 1000);
  int attempt = 0;
  FakeOrigin origin([&](const OriginRequest& req) {
    OriginReply r;
    r.headers = {{"ETag", "\"img1\""}};
    ++attempt;
    if (attempt == 1) {
      r.body = body;
      r.cut_after = 50 * 1000;
    } else if (attempt == 2) {
      r.status = 503;  // the first resume finds the origin restarting
    } else {
      r = Rest(body, req, "\"img1\"");
    }
    return r;
  });
  StartFetcher(origin.url());
  std::shared_ptr<cache::GrowingFile> g;
  fetcher_->Fetch("sip.ld", Want::kBody, [&](FetchOutcome o) { g = o.body; });
  ASSERT_TRUE(FetchWhole("sip.ld").status.ok());
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(g->complete());
  EXPECT_EQ(Contents(*g), body);
  auto reqs = origin.requests();
  ASSERT_EQ(reqs.size(), 3u);
  ASSERT_NE(reqs[2].Header("range"), nullptr);
  EXPECT_EQ(*reqs[2].Header("range"), "bytes=50000-");
}

TEST_F(FetcherTest, PartialContentNobodyAskedForIsNotTheFile) {
  FakeOrigin origin([](const OriginRequest&) {
    OriginReply r;
    r.status = 206;
    r.headers = {{"Content-Range", "bytes 0-3/100"}};
    r.body = "part";
    return r;
  });
  StartFetcher(origin.url());
  EXPECT_TRUE(FetchWhole("a.ld").status.Is(StatusCode::kUnavailable));
  EXPECT_EQ(cache_->Lookup("a.ld"), nullptr);
}


// An origin whose every answer is a 404 after `ms`, that counts how many requests it holds at once.
class SlowOrigin {
 public:
  explicit SlowOrigin(int ms)
      : origin_([this, ms](const OriginRequest&) {
          int now = ++open_;
          int seen = peak_.load();
          while (now > seen && !peak_.compare_exchange_weak(seen, now)) {
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(ms));
          --open_;
          OriginReply r;
          r.status = 404;
          return r;
        }) {}
  std::string url() const { return origin_.url(); }
  int peak() const { return peak_.load(); }
  std::vector<std::string> targets() const {
    std::vector<std::string> out;
    for (const OriginRequest& r : origin_.requests()) out.push_back(r.target);
    return out;
  }

 private:
  std::atomic<int> open_{0};
  std::atomic<int> peak_{0};
  FakeOrigin origin_;
};

TEST_F(FetcherTest, APhonesAskGoesAheadOfAsksAheadQueuedBeforeIt) {
  SlowOrigin origin(40);
  StartFetcher(origin.url());
  size_t soon_done = 0;
  for (int i = 0; i < 200; ++i) {
    fetcher_->Fetch("soon/" + std::to_string(i) + ".cfg", Want::kComplete,
                    [&](FetchOutcome) { ++soon_done; }, Priority::kSoon);
  }
  EXPECT_EQ(fetcher_->queued(Priority::kSoon), 200u);
  std::optional<FetchOutcome> phone;
  fetcher_->Fetch("phone.cfg", Want::kComplete, [&](FetchOutcome o) { phone = std::move(o); });
  RunUntil([&] { return phone.has_value(); });
  EXPECT_TRUE(phone->status.Is(StatusCode::kNotFound)) << phone->status.ToString();
  // Answered in the first round trip, not after the 5 rounds the queue ahead of it needs.
  EXPECT_LE(soon_done, kTransferSlots);
  RunUntil([&] { return soon_done == 200; });
  std::vector<std::string> targets = origin.targets();
  ASSERT_EQ(targets.size(), 201u);
  auto at = std::find(targets.begin(), targets.end(), "/phone.cfg") - targets.begin();
  EXPECT_LT(static_cast<size_t>(at), kTransferSlots);
}

TEST_F(FetcherTest, AFileSeveralPhonesWaitForGoesAheadOfOnePhonesOwnFiles) {
  SlowOrigin origin(40);
  StartFetcher(origin.url());
  size_t own_done = 0;
  for (int i = 0; i < 300; ++i) {
    fetcher_->Fetch("own/" + std::to_string(i) + ".cfg", Want::kComplete,
                    [&](FetchOutcome) { ++own_done; });
  }
  uv_run(loop_.get(), UV_RUN_NOWAIT);  // the first slots are taken
  int shared_done = 0;
  for (int phone = 0; phone < 2; ++phone) {
    fetcher_->Fetch("shared.cfg", Want::kComplete, [&](FetchOutcome) { ++shared_done; });
  }
  RunUntil([&] { return shared_done == 2; });
  EXPECT_LE(own_done, 2 * kTransferSlots) << "it waited for the queue ahead of it";
  RunUntil([&] { return own_done == 300; });
}

TEST_F(FetcherTest, AsksAheadLeaveSlotsForAPhoneThatAsksLater) {
  SlowOrigin origin(100);
  StartFetcher(origin.url());
  size_t soon_done = 0;
  for (int i = 0; i < 200; ++i) {
    fetcher_->Fetch("soon/" + std::to_string(i) + ".cfg", Want::kComplete,
                    [&](FetchOutcome) { ++soon_done; }, Priority::kSoon);
  }
  // Every slot asks ahead may take is busy.
  RunUntil([&] { return origin.targets().size() >= kTransferSlots - kPhoneReserve; });
  auto start = std::chrono::steady_clock::now();
  std::optional<FetchOutcome> phone;
  fetcher_->Fetch("phone.cfg", Want::kComplete, [&](FetchOutcome o) { phone = std::move(o); });
  RunUntil([&] { return phone.has_value(); });
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(took, 0.3) << "the phone waited for asks ahead to drain";
  EXPECT_LT(soon_done, 200u);
  RunUntil([&] { return soon_done == 200; });
  EXPECT_LE(static_cast<size_t>(origin.peak()), kTransferSlots - kPhoneReserve + 1);
}

TEST_F(FetcherTest, BackgroundTransfersHoldAFewSlotsAtMost) {
  SlowOrigin origin(30);
  StartFetcher(origin.url());
  size_t done = 0;
  for (int i = 0; i < 40; ++i) {
    fetcher_->Fetch("bg/" + std::to_string(i), Want::kComplete, [&](FetchOutcome) { ++done; },
                    Priority::kBackground);
  }
  RunUntil([&] { return done == 40; });
  EXPECT_LE(static_cast<size_t>(origin.peak()), kBackgroundSlots);
  EXPECT_GE(origin.peak(), 2);
}

TEST_F(FetcherTest, APhonesAskRaisesTheQueuedTransferForTheSamePath) {
  SlowOrigin origin(40);
  StartFetcher(origin.url());
  size_t soon_done = 0;
  std::optional<FetchOutcome> soon_last;
  for (int i = 0; i < 200; ++i) {
    fetcher_->Fetch("soon/" + std::to_string(i) + ".cfg", Want::kComplete,
                    [&, i](FetchOutcome o) {
                      ++soon_done;
                      if (i == 199) soon_last = o;
                    },
                    Priority::kSoon);
  }
  std::optional<FetchOutcome> phone;
  fetcher_->Fetch("soon/199.cfg", Want::kComplete, [&](FetchOutcome o) { phone = std::move(o); });
  EXPECT_EQ(fetcher_->queued(Priority::kSoon), 199u);
  EXPECT_EQ(fetcher_->queued(Priority::kPhone), 1u);
  RunUntil([&] { return phone.has_value(); });
  EXPECT_TRUE(soon_last.has_value()) << "one transfer answers both";
  // Waiting its turn would make it the 200th done. It starts in the first wave; on a loaded
  // machine a second wave of 40 ms transfers may end before its callback runs, but not more.
  EXPECT_LE(soon_done, 2 * kTransferSlots);
  RunUntil([&] { return soon_done == 200; });
  EXPECT_EQ(origin.targets().size(), 200u);
}

}  // namespace
}  // namespace siterelay::sync
