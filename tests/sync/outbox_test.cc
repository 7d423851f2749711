#include "sync/outbox.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
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

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override { cache_ = siterelay::testing::OpenTestCache(dir_.path(), &clock_); }
  void TearDown() override {
    outbox_.reset();
    sender_.reset();
    uv_run(loop_.get(), UV_RUN_NOWAIT);
  }

  // A phone's settings upload, as Uploads files it: source=upload, not forwarded.
  void Upload(const std::string& path, const std::string& body) {
    cache::Entry e;
    e.path = path;
    e.content_type = "application/xml";
    e.source = cache::Source::kUpload;
    e.forwarded = false;
    testing::PutFile(cache_.get(), e, body);
  }

  void StartOutbox(const std::string& url, const std::string& user = "") {
    OriginConfig config;
    config.url = url;
    config.user = user;
    config.password = user.empty() ? "" : "secret";
    sender_ = std::make_unique<Sender>(loop_.get(), nullptr);
    outbox_ = std::make_unique<Outbox>(loop_.get(), config, cache_.get(), sender_.get());
    outbox_->SetRetryDelays(20, 100);
  }

  bool Forwarded(const std::string& path) {
    const cache::Entry* e = cache_->Lookup(path);
    return e != nullptr && e->forwarded;
  }

  siterelay::testing::TempDir dir_;
  ManualClock clock_;
  Loop loop_;
  std::unique_ptr<cache::Cache> cache_;
  std::unique_ptr<Sender> sender_;
  std::unique_ptr<Outbox> outbox_;
};

TEST_F(OutboxTest, AnUploadIsPutToTheOriginWithCredentialsAndMarkedForwarded) {
  FakeOrigin origin([](const OriginRequest&) { return OriginReply{201, {}, ""}; });
  Upload("tenant/0004f2aabbcc-phone.cfg", "<PHONE_CONFIG a=\"1\"/>");
  StartOutbox(origin.url(), "relay");
  outbox_->Start();
  siterelay::testing::RunUntil(loop_.get(), [&] { return Forwarded("tenant/0004f2aabbcc-phone.cfg"); });
  auto reqs = origin.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].target, "/tenant/0004f2aabbcc-phone.cfg");
  EXPECT_EQ(reqs[0].body, "<PHONE_CONFIG a=\"1\"/>");
  ASSERT_NE(reqs[0].Header("authorization"), nullptr);
  EXPECT_EQ(*reqs[0].Header("authorization"), "Basic cmVsYXk6c2VjcmV0");  // relay:secret
  EXPECT_EQ(outbox_->stats().sent, 1u);
  EXPECT_EQ(outbox_->pending(), 0u);
}

TEST_F(OutboxTest, AFailingOriginIsRetriedUntilItTakesTheFile) {
  std::atomic<int> calls{0};
  FakeOrigin origin([&](const OriginRequest&) {
    int n = ++calls;
    if (n == 1) return OriginReply{503, {{"Retry-After", "0"}}, ""};
    if (n == 2) return OriginReply{500, {}, ""};
    return OriginReply{204, {}, ""};
  });
  Upload("0004f2aabbcc-web.cfg", "<WEB/>");
  StartOutbox(origin.url());
  outbox_->Start();
  siterelay::testing::RunUntil(loop_.get(), [&] { return Forwarded("0004f2aabbcc-web.cfg"); });
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(outbox_->stats().failures, 2u);
  EXPECT_EQ(outbox_->stats().sent, 1u);
}

TEST_F(OutboxTest, ANewerVersionIsSentAfterAndTheOlderOneNeverMarksIt) {
  std::atomic<int> calls{0};
  FakeOrigin origin([&](const OriginRequest&) {
    ++calls;
    OriginReply r{200, {}, ""};
    r.delay_ms = 200;  // the first PUT is still on its way when the phone uploads again
    return r;
  });
  Upload("0004f2aabbcc-local.cfg", "<v1/>");
  StartOutbox(origin.url());
  outbox_->Start();
  siterelay::testing::RunUntil(loop_.get(), [&] { return calls.load() == 1; });
  Upload("0004f2aabbcc-local.cfg", "<v2/>");
  outbox_->Poke("0004f2aabbcc-local.cfg");
  siterelay::testing::RunUntil(loop_.get(), [&] {
    return Forwarded("0004f2aabbcc-local.cfg") && outbox_->pending() == 0;
  });
  auto reqs = origin.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].body, "<v1/>");
  EXPECT_EQ(reqs[1].body, "<v2/>") << "the latest version reaches the origin last";
  EXPECT_EQ(cache_->Lookup("0004f2aabbcc-local.cfg")->sha256, Sha256::Of("<v2/>"));
}

TEST_F(OutboxTest, ForwardedAndNonUploadEntriesAreNotSent) {
  FakeOrigin origin([](const OriginRequest&) { return OriginReply{200, {}, ""}; });
  Upload("0004f2aabbcc-phone.cfg", "<a/>");
  ASSERT_TRUE(cache_->Publish({[&] {
                cache::Entry e = *cache_->Lookup("0004f2aabbcc-phone.cfg");
                e.path = "000000000000.cfg";
                e.source = cache::Source::kOrigin;
                return e;
              }()}).ok());
  StartOutbox(origin.url());
  outbox_->Start();
  siterelay::testing::RunUntil(loop_.get(), [&] { return Forwarded("0004f2aabbcc-phone.cfg"); });
  outbox_->Poke("0004f2aabbcc-phone.cfg");  // already forwarded: nothing to do
  outbox_->Poke("000000000000.cfg");        // the origin's own file
  siterelay::testing::RunUntil(loop_.get(), [&] { return outbox_->pending() == 0; });
  EXPECT_EQ(origin.requests().size(), 1u);
}

TEST_F(OutboxTest, AFileOriginTakesNoUploadsAndTheFileStaysLocal) {
  Upload("0004f2aabbcc-phone.cfg", "<a/>");
  StartOutbox("file://" + dir_.path() + "/origin/");
  outbox_->Start();
  siterelay::testing::RunUntil(loop_.get(), [&] { return outbox_->pending() == 0; });
  EXPECT_FALSE(Forwarded("0004f2aabbcc-phone.cfg"));
  EXPECT_EQ(outbox_->stats().failures, 0u);
}

}  // namespace
}  // namespace siterelay::sync
