// The origin emulator, asked by libcurl the way the relay asks it (docs/sync.md). The emulator's
// loop runs on its own thread; each test's requests are blocking curl calls from the test thread,
// and the counters are read after the loop thread has stopped.
#include "tools/phone-fleet/origin.h"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>

namespace siterelay::fleet {
namespace {

constexpr uint64_t kImage = 300000;

class OriginTest : public ::testing::Test {
 protected:
  void StartOrigin(double rate = 0, uint64_t latency_ms = 0) {
    PhoneSpec own;
    own.mac = "0004f2000001";
    own.own_config = true;
    OriginEmulator::Options o;
    o.rate_bytes_per_s = rate;
    o.latency_ms = latency_ms;
    uv_loop_init(&loop_);
    origin_ = std::make_unique<OriginEmulator>(&loop_, OriginTree({own}, kImage), o);
    ASSERT_TRUE(origin_->Start().ok());
    uv_async_init(&loop_, &stop_, [](uv_async_t* a) noexcept {
      auto* self = static_cast<OriginTest*>(a->data);
      self->origin_->Close();
      uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
    });
    stop_.data = this;
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
    base_ = "http://127.0.0.1:" + std::to_string(origin_->port()) + "/";
  }
  void StopOrigin() {
    if (!thread_.joinable()) return;
    uv_async_send(&stop_);
    thread_.join();
    uv_loop_close(&loop_);
  }
  void TearDown() override { StopOrigin(); }

  struct Answer {
    long status = 0;
    std::string body;
    std::string head;
  };
  static size_t Collect(char* d, size_t s, size_t n, void* u) {
    static_cast<std::string*>(u)->append(d, s * n);
    return s * n;
  }
  Answer Ask(const std::string& path, std::vector<std::string> fields = {},
             const char* method = "GET", const std::string& upload = "") {
    Answer a;
    CURL* h = curl_easy_init();
    curl_slist* list = nullptr;
    for (const std::string& f : fields) list = curl_slist_append(list, f.c_str());
    std::string url = base_ + path;
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &a.body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &Collect);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &a.head);
    if (std::strcmp(method, "HEAD") == 0) curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (std::strcmp(method, "POST") == 0 || std::strcmp(method, "PUT") == 0) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, upload.c_str());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(upload.size()));
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    EXPECT_EQ(curl_easy_perform(h), CURLE_OK) << path;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a.status);
    curl_easy_cleanup(h);
    curl_slist_free_all(list);
    return a;
  }
  static std::string Image(const OriginEmulator& o, const std::string& path, uint64_t from,
                           uint64_t to) {
    for (const OriginFile& f : o.tree()) {
      if (f.path != path) continue;
      std::string out;
      for (uint64_t off = from; off < to;) {
        auto [p, n] = PatternSpan(f.pattern_id, off, to - off);
        out.append(reinterpret_cast<const char*>(p), n);
        off += n;
      }
      return out;
    }
    return "";
  }
  static std::string Field(const std::string& head, const std::string& name) {
    size_t at = head.find(name + ": ");
    if (at == std::string::npos) return "";
    at += name.size() + 2;
    return head.substr(at, head.find("\r\n", at) - at);
  }

  uv_loop_t loop_{};
  uv_async_t stop_{};
  std::unique_ptr<OriginEmulator> origin_;
  std::thread thread_;
  std::string base_;
};

TEST_F(OriginTest, ServesImagesAndConfigsAndCountsThemPerPath) {
  StartOrigin();
  Answer fw = Ask("3111-44500-001.sip.ld");
  EXPECT_EQ(fw.status, 200);
  EXPECT_EQ(fw.body, Image(*origin_, "3111-44500-001.sip.ld", 0, kImage));
  Answer cfg = Ask("000000000000.cfg");
  EXPECT_EQ(cfg.status, 200);
  EXPECT_EQ(cfg.body, MasterConfig());
  EXPECT_EQ(Ask("0004f2000001.cfg").status, 200);
  EXPECT_EQ(Ask("0004f2000002.cfg").status, 404);
  Answer head = Ask("sip.ld", {}, "HEAD");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(Field(head.head, "Content-Length"), std::to_string(kImage));
  StopOrigin();
  const auto& st = origin_->stats();
  EXPECT_EQ(st.at("3111-44500-001.sip.ld").full, 1u);
  EXPECT_EQ(st.at("3111-44500-001.sip.ld").body_bytes, kImage);
  EXPECT_EQ(st.at("0004f2000002.cfg").not_found, 1u);
  EXPECT_EQ(st.at("sip.ld").head, 1u);
  EXPECT_EQ(st.at("sip.ld").full, 0u);
  EXPECT_EQ(origin_->totals().requests, 5u);
  EXPECT_EQ(origin_->totals().connections, 5u);
}

TEST_F(OriginTest, ResumesWithRangeOnlyWhileIfRangeMatches) {
  StartOrigin();
  Answer full = Ask("sip.ld");
  std::string etag = Field(full.head, "ETag");
  ASSERT_FALSE(etag.empty());
  Answer tail = Ask("sip.ld", {"Range: bytes=1000-", "If-Range: " + etag});
  EXPECT_EQ(tail.status, 206);
  EXPECT_EQ(Field(tail.head, "Content-Range"),
            "bytes 1000-" + std::to_string(kImage - 1) + "/" + std::to_string(kImage));
  EXPECT_EQ(tail.body, Image(*origin_, "sip.ld", 1000, kImage));
  Answer mid = Ask("sip.ld", {"Range: bytes=10-19"});
  EXPECT_EQ(mid.status, 206);
  EXPECT_EQ(mid.body, Image(*origin_, "sip.ld", 10, 20));
  Answer changed = Ask("sip.ld", {"Range: bytes=1000-", "If-Range: \"other\""});
  EXPECT_EQ(changed.status, 200);
  EXPECT_EQ(changed.body.size(), kImage);
  EXPECT_EQ(Ask("sip.ld", {"Range: bytes=" + std::to_string(kImage) + "-"}).status, 416);
  StopOrigin();
  EXPECT_EQ(origin_->stats().at("sip.ld").partial, 2u);
  EXPECT_EQ(origin_->stats().at("sip.ld").full, 2u);
}

TEST_F(OriginTest, AnswersConditionalGetsWith304) {
  StartOrigin();
  Answer full = Ask("site.cfg");
  std::string etag = Field(full.head, "ETag");
  std::string modified = Field(full.head, "Last-Modified");
  Answer by_tag = Ask("site.cfg", {"If-None-Match: " + etag});
  EXPECT_EQ(by_tag.status, 304);
  EXPECT_TRUE(by_tag.body.empty());
  EXPECT_EQ(Ask("site.cfg", {"If-Modified-Since: " + modified}).status, 304);
  EXPECT_EQ(Ask("site.cfg", {"If-None-Match: \"stale\""}).status, 200);
  StopOrigin();
  EXPECT_EQ(origin_->stats().at("site.cfg").not_modified, 2u);
}

TEST_F(OriginTest, AcceptsUploadsByLengthAndChunked) {
  StartOrigin();
  EXPECT_EQ(Ask("0004f2000001-phone.cfg", {}, "PUT", std::string(5000, 'x')).status, 204);
  // Chunked, and large enough that curl would wait for 100-continue.
  EXPECT_EQ(Ask("logs", {"Transfer-Encoding: chunked", "Expect: 100-continue"}, "POST",
                std::string(2 << 20, 'y'))
                .status,
            204);
  EXPECT_EQ(Ask("000000000000.cfg").status, 200) << "the connection still works after";
  StopOrigin();
  EXPECT_EQ(origin_->stats().at("0004f2000001-phone.cfg").put, 1u);
  EXPECT_EQ(origin_->stats().at("logs").post, 1u);
  EXPECT_EQ(origin_->totals().uploaded, 5000u + (2u << 20));
}

TEST_F(OriginTest, KeepsToTheWanRateAndLatency) {
  StartOrigin(/*rate=*/1e6, /*latency_ms=*/100);  // 8 Mbit/s
  auto t0 = std::chrono::steady_clock::now();
  Answer fw = Ask("sip.ld");  // new connection: 2 x 100 ms, then 300 kB at 1 MB/s minus a burst
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(fw.body.size(), kImage);
  // (300,000 - 65,536 saved up - the last 16 KiB chunk, which goes while the bucket is not
  // empty) / 1e6 + 0.2 = 0.418 s at least.
  EXPECT_GT(s, 0.40);
  EXPECT_LT(s, 2.0);
}

}  // namespace
}  // namespace siterelay::fleet
