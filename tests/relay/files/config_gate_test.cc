#include "relay/files/config_gate.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "relay/base/sha256.h"
#include "relay/base/uv.h"
#include "tests/testing/cache.h"
#include "tests/testing/fake_origin.h"
#include "tests/testing/loop.h"
#include "tests/testing/temp_dir.h"

namespace siterelay::files {
namespace {

Peer V4(const char* ip) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  inet_pton(AF_INET, ip, &sa.sin_addr);
  return Peer::FromSockaddr(Protocol::kHttp, reinterpret_cast<sockaddr*>(&sa));
}

std::string MasterNaming(const std::string& image) {
  return "<APPLICATION APP_FILE_PATH='" + image + "' CONFIG_FILES='site.cfg'/>";
}

constexpr char kUa[] = "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application";

// A site with one VVX 500 (part 3111-44500-001) whose origin can change its master config.
class ConfigGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = testing::OpenTestCache(dir_.path(), &clock_);
    SetFile("000000000000.cfg", MasterNaming("old.ld"));
    SetFile("site.cfg", "site");
    SetFile("3111-44500-001.old.ld", std::string(1000, 'o'));
    origin_ = std::make_unique<testing::FakeOrigin>([this](const testing::OriginRequest& req) {
      std::lock_guard<std::mutex> lock(mu_);
      testing::OriginReply r;
      auto it = files_on_origin_.find(req.target.substr(1));
      if (it == files_on_origin_.end()) {
        r.status = 404;
        return r;
      }
      std::string etag = "\"" + Sha256::Of(it->second).Hex().substr(0, 16) + "\"";
      r.headers = {{"ETag", etag}};
      if (const std::string* inm = req.Header("if-none-match"); inm != nullptr && *inm == etag) {
        r.status = 304;
        return r;
      }
      r.body = it->second;
      if (r.body.size() > 100'000) {  // an image: slow enough to be seen arriving
        r.drip_bytes = 100'000;
        r.drip_ms = 20;
      }
      return r;
    });
    Config c = Config::Defaults();
    c.origin.url = origin_->url();
    c.origin.fresh_for = 60;
    fetcher_ = std::make_unique<sync::Fetcher>(loop_.get(), c.origin, cache_.get(), &clock_);
    fs_ = std::make_unique<FileService>(c, cache_.get(), &clock_, fetcher_.get());
    gate_ = std::make_unique<ConfigGate>(loop_.get(), fs_.get(), cache_.get(), fetcher_.get(),
                                         &clock_, c.origin.fresh_for);
    fetcher_->SetGate(gate_.get());
    // The phone boots on the old config: the site now knows a VVX 500 of that part number.
    for (const char* path : {"000000000000.cfg", "3111-44500-001.old.ld", "site.cfg"}) {
      fs_->RecordSighting(V4("10.1.2.3"), path == std::string("000000000000.cfg")
                                              ? "0004f2aabbcc.cfg" : path, kUa);
      ASSERT_TRUE(Read(path).has_value()) << path;
    }
  }
  void TearDown() override {
    fetcher_->SetGate(nullptr);
    gate_.reset();
    fs_.reset();
    fetcher_.reset();
    uv_run(loop_.get(), UV_RUN_NOWAIT);
  }

  void SetFile(const std::string& path, std::string body) {
    std::lock_guard<std::mutex> lock(mu_);
    files_on_origin_[path] = std::move(body);
  }
  void Drop(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    files_on_origin_.erase(path);
  }
  size_t Asked(const std::string& path) const {
    size_t n = 0;
    for (const auto& r : origin_->requests()) n += r.target == "/" + path ? 1u : 0u;
    return n;
  }

  // What a phone reading `path` now is sent (nullopt: an error); a streamed body is waited for.
  std::optional<std::string> Read(const std::string& path) {
    std::optional<Result<OpenFile>> got;
    fs_->Open(path, ReadMode::kStream, [&](Result<OpenFile> f) { got = std::move(f); });
    if (!testing::RunUntil(loop_.get(), [&] { return got.has_value(); })) return std::nullopt;
    if (!got->ok()) return std::nullopt;
    OpenFile& f = got->value();
    if (f.growing) {
      streamed_ = true;
      testing::RunUntil(loop_.get(), [&] { return f.growing->complete() || f.growing->failed(); });
      if (!f.growing->complete()) return std::nullopt;
      f.size = f.growing->written();
    }
    std::string out(f.size, '\0');
    if (::pread(f.fd.get(), out.data(), out.size(), 0) != static_cast<ssize_t>(out.size())) {
      return std::nullopt;
    }
    return out;
  }

  testing::TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<cache::Cache> cache_;
  Loop loop_;
  std::mutex mu_;
  std::map<std::string, std::string> files_on_origin_;
  std::unique_ptr<testing::FakeOrigin> origin_;
  std::unique_ptr<sync::Fetcher> fetcher_;
  std::unique_ptr<FileService> fs_;
  std::unique_ptr<ConfigGate> gate_;
  bool streamed_ = false;
};

TEST_F(ConfigGateTest, ANewConfigIsHeldUntilItsImageIsCachedThenPublished) {
  std::string image(3'000'000, 'n');
  SetFile("3111-44500-001.new.ld", image);
  SetFile("000000000000.cfg", MasterNaming("new.ld"));
  clock_.Advance(120);  // the config is stale: the next read revalidates it
  EXPECT_EQ(Read("000000000000.cfg"), MasterNaming("old.ld"));
  ASSERT_EQ(gate_->held().size(), 1u);
  HeldConfig h = gate_->held()[0];
  EXPECT_EQ(h.path, "000000000000.cfg");
  EXPECT_EQ(h.sha256, Sha256::Of(MasterNaming("new.ld")));
  ASSERT_EQ(h.files.size(), 2u);  // the image, and site.cfg (cached)
  EXPECT_EQ(h.files[0].path, "3111-44500-001.new.ld");
  EXPECT_EQ(h.files[1].state, HeldFile::State::kHere);
  // While it arrives phones keep the old config and the old image, from the cache.
  streamed_ = false;
  EXPECT_EQ(Read("000000000000.cfg"), MasterNaming("old.ld"));
  EXPECT_EQ(Read("3111-44500-001.old.ld"), std::string(1000, 'o'));
  EXPECT_FALSE(streamed_);
  ASSERT_TRUE(testing::RunUntil(loop_.get(), [&] {
    auto now = gate_->held();
    return !now.empty() && now[0].files[0].bytes_done > 0;
  }));
  EXPECT_EQ(gate_->held()[0].files[0].bytes_total, image.size());
  EXPECT_EQ(gate_->held()[0].files[0].state, HeldFile::State::kFetching);
  ASSERT_TRUE(testing::RunUntil(loop_.get(), [&] { return gate_->held().empty(); }));
  EXPECT_EQ(gate_->released(), 1u);
  // Published: the new config, with its image already here.
  size_t image_asks = Asked("3111-44500-001.new.ld");
  EXPECT_EQ(image_asks, 1u);
  EXPECT_EQ(Read("000000000000.cfg"), MasterNaming("new.ld"));
  EXPECT_EQ(Read("3111-44500-001.new.ld"), image);
  EXPECT_EQ(Asked("3111-44500-001.new.ld"), image_asks);
}

TEST_F(ConfigGateTest, AConfigWhoseFilesAreCachedIsPublishedAtOnce) {
  SetFile("000000000000.cfg", MasterNaming("old.ld") + "<!-- reworded -->");
  clock_.Advance(120);
  (void)Read("000000000000.cfg");
  ASSERT_TRUE(testing::RunUntil(loop_.get(), [&] { return gate_->released() == 1; }));
  EXPECT_TRUE(gate_->held().empty());
  EXPECT_EQ(Read("000000000000.cfg"), MasterNaming("old.ld") + "<!-- reworded -->");
}

TEST_F(ConfigGateTest, TheNameAsWrittenIsFetchedWhenTheSplitImageIsNotOnTheOrigin) {
  SetFile("new.ld", std::string(5000, 'p'));
  SetFile("000000000000.cfg", MasterNaming("new.ld"));
  clock_.Advance(120);
  (void)Read("000000000000.cfg");
  ASSERT_TRUE(testing::RunUntil(loop_.get(), [&] { return gate_->released() == 1; }));
  EXPECT_EQ(Asked("3111-44500-001.new.ld"), 1u);  // a 404
  EXPECT_EQ(Asked("new.ld"), 1u);
  EXPECT_EQ(Read("000000000000.cfg"), MasterNaming("new.ld"));
}

TEST_F(ConfigGateTest, AConfigNamingAFileTheOriginLacksStaysHeldUntilReleasedByHand) {
  SetFile("000000000000.cfg", MasterNaming("missing.ld"));
  clock_.Advance(120);
  (void)Read("000000000000.cfg");
  ASSERT_TRUE(testing::RunUntil(loop_.get(), [&] {
    auto h = gate_->held();
    return !h.empty() && h[0].files[0].state == HeldFile::State::kFailed;
  }));
  HeldConfig h = gate_->held()[0];
  EXPECT_NE(h.reason.find("missing.ld: not on the origin"), std::string::npos) << h.reason;
  EXPECT_FALSE(h.eta_seconds.has_value());
  EXPECT_EQ(Read("000000000000.cfg"), MasterNaming("old.ld"));
  EXPECT_TRUE(gate_->Release("site.cfg").Is(StatusCode::kNotFound));
  ASSERT_TRUE(gate_->Release("000000000000.cfg").ok());
  ASSERT_TRUE(testing::RunUntil(loop_.get(), [&] { return gate_->held().empty(); }));
  EXPECT_EQ(Read("000000000000.cfg"), MasterNaming("missing.ld"));
}

TEST_F(ConfigGateTest, PrefetchForSiteFetchesWhatTheConfigInForceNamesForThePhones) {
  // The operator published a config naming an image the relay has not fetched yet (a gate that
  // was off, or the first config of a site): the next sync pass fetches it ahead of the phones.
  SetFile("000000000000.cfg", MasterNaming("later.ld"));
  SetFile("3111-44500-001.later.ld", std::string(4000, 'l'));
  fetcher_->SetGate(nullptr);
  clock_.Advance(120);
  EXPECT_EQ(Read("000000000000.cfg"), MasterNaming("later.ld"));
  ASSERT_TRUE(testing::RunUntil(loop_.get(), [&] { return fetcher_->in_flight() == 0; }));
  gate_->PrefetchForSite();
  ASSERT_TRUE(testing::RunUntil(loop_.get(), [&] {
    return cache_->Lookup("3111-44500-001.later.ld") != nullptr;
  }));
  EXPECT_EQ(Asked("later.ld"), 0u);  // the split image was there: the plain name is not needed
}

}  // namespace
}  // namespace siterelay::files
