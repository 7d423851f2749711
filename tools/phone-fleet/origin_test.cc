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
    OriginEmulator::Options o;
    o.rate_bytes_per_s = rate;
    o.latency_ms = latency_ms;
    StartOrigin(o);
  }
  void StartOrigin(const OriginEmulator::Options& o) {
    PhoneSpec own;
    own.mac = "0004f2000001";
    own.own_config = true;
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
    CURLcode code = CURLE_OK;
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
    a.code = curl_easy_perform(h);
    if (expect_ok_) {
      EXPECT_EQ(a.code, CURLE_OK) << path;
    }
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

  bool expect_ok_ = true;  // Ask() expects curl to succeed; off for answers meant to be cut
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

// ---- Faults (issue 11) -------------------------------------------------------------------------

OriginEmulator::Options Faulty(std::string_view spec, uint64_t seed = 1,
                               uint64_t stall_ms = 40000) {
  OriginEmulator::Options o;
  auto parsed = ParseOriginFaults(spec);
  EXPECT_TRUE(parsed.ok()) << spec;
  if (parsed.ok()) o.faults = *parsed;
  o.fault_seed = seed;
  o.stall_ms = stall_ms;
  return o;
}

TEST(OriginFaultSpecTest, ParsesKindsAndRejectsNonsense) {
  auto s = ParseOriginFaults("reset=10,error=12.5,stall=3,short=4");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->reset, 10);
  EXPECT_EQ(s->error, 12.5);
  EXPECT_EQ(s->stall, 3);
  EXPECT_EQ(s->short_body, 4);
  EXPECT_TRUE(ParseOriginFaults("").ok());
  EXPECT_FALSE(ParseOriginFaults("none")->any());
  EXPECT_FALSE(ParseOriginFaults("reset=0,error=0")->any());
  EXPECT_TRUE(ParseOriginFaults("reset=60,error=40").ok());
  EXPECT_FALSE(ParseOriginFaults("reset=60,error=41").ok()) << "more than 100 in all";
  EXPECT_FALSE(ParseOriginFaults("reset=101").ok());
  EXPECT_FALSE(ParseOriginFaults("reset=-1").ok());
  EXPECT_FALSE(ParseOriginFaults("reset").ok());
  EXPECT_FALSE(ParseOriginFaults("reset=").ok());
  EXPECT_FALSE(ParseOriginFaults("drop=5").ok());
  EXPECT_FALSE(ParseOriginFaults("reset=5,").ok());
}

TEST_F(OriginTest, ZeroPercentInjectsNothing) {
  StartOrigin(Faulty("reset=0,error=0,stall=0,short=0"));
  for (int i = 0; i < 20; ++i) {
    Answer fw = Ask("sip.ld");
    EXPECT_EQ(fw.status, 200);
    EXPECT_EQ(fw.body, Image(*origin_, "sip.ld", 0, kImage));
  }
  StopOrigin();
  EXPECT_EQ(origin_->faults().total(), 0u);
  EXPECT_EQ(origin_->stats().at("sip.ld").full, 20u);
}

TEST_F(OriginTest, ErrorAnswers503WithRetryAfterToEveryGetOfAFileAndNothingElse) {
  StartOrigin(Faulty("error=100"));
  for (const char* path : {"sip.ld", "000000000000.cfg", "0004f2000001.cfg", "site.cfg"}) {
    Answer a = Ask(path);
    EXPECT_EQ(a.status, 503) << path;
    EXPECT_EQ(Field(a.head, "Retry-After"), "1") << path;
  }
  Answer ranged = Ask("sip.ld", {"Range: bytes=10-19"});
  EXPECT_EQ(ranged.status, 503);
  // Not faulted: a missing file, HEAD, a conditional GET that has nothing to send, an upload.
  EXPECT_EQ(Ask("0004f2000002.cfg").status, 404);
  Answer head = Ask("sip.ld", {}, "HEAD");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(Ask("site.cfg", {"If-None-Match: " + Field(head.head, "ETag")}).status, 503)
      << "another file's ETag: a GET with a body, so faulted";
  EXPECT_EQ(Ask("sip.ld", {"If-None-Match: " + Field(head.head, "ETag")}).status, 304);
  EXPECT_EQ(Ask("0004f2000001-phone.cfg", {}, "PUT", "x").status, 204);
  StopOrigin();
  EXPECT_EQ(origin_->faults().error, 6u);  // 4 + the ranged one + the other file's ETag
  EXPECT_EQ(origin_->faults().total(), 6u);
  EXPECT_EQ(origin_->stats().at("sip.ld").full, 0u);
  EXPECT_EQ(origin_->stats().at("sip.ld").partial, 0u);
  EXPECT_EQ(origin_->stats().at("sip.ld").body_bytes, 0u);
}

TEST_F(OriginTest, ResetCutsTheBodyShortOfContentLengthWithAnRst) {
  StartOrigin(Faulty("reset=100"));
  expect_ok_ = false;
  std::string image = Image(*origin_, "sip.ld", 0, kImage);
  for (int i = 0; i < 5; ++i) {
    Answer a = Ask("sip.ld");
    EXPECT_EQ(a.code, CURLE_RECV_ERROR) << curl_easy_strerror(a.code);  // ECONNRESET
    EXPECT_EQ(Field(a.head, "Content-Length"), std::to_string(kImage));
    EXPECT_LT(a.body.size(), kImage);
    EXPECT_EQ(a.body, image.substr(0, a.body.size())) << "what did arrive is the file's";
  }
  Answer ranged = Ask("sip.ld", {"Range: bytes=1000-200999"});
  EXPECT_EQ(ranged.code, CURLE_RECV_ERROR);
  EXPECT_EQ(ranged.status, 206);
  EXPECT_LT(ranged.body.size(), 200000u);
  StopOrigin();
  EXPECT_EQ(origin_->faults().reset, 6u);
  EXPECT_EQ(origin_->faults().total(), 6u);
  EXPECT_LT(origin_->stats().at("sip.ld").body_bytes, 5 * kImage + 200000);
}

TEST_F(OriginTest, ShortEndsTheBodyEarlyWithAFin) {
  StartOrigin(Faulty("short=100"));
  expect_ok_ = false;
  for (int i = 0; i < 5; ++i) {
    Answer a = Ask("sip.ld");
    EXPECT_EQ(a.code, CURLE_PARTIAL_FILE) << curl_easy_strerror(a.code);  // EOF before the end
    EXPECT_EQ(a.status, 200);
    EXPECT_LT(a.body.size(), kImage);
    EXPECT_EQ(a.body, Image(*origin_, "sip.ld", 0, a.body.size()));
  }
  StopOrigin();
  EXPECT_EQ(origin_->faults().short_body, 5u);
  EXPECT_EQ(origin_->faults().total(), 5u);
}

TEST_F(OriginTest, GarbleSendsTheWholeBodyWithOneByteWrong) {
  StartOrigin(Faulty("garble=100"));
  for (int i = 0; i < 3; ++i) {
    Answer a = Ask("sip.ld");
    EXPECT_EQ(a.status, 200);
    std::string good = Image(*origin_, "sip.ld", 0, kImage);
    ASSERT_EQ(a.body.size(), good.size()) << "the right length";
    size_t wrong = 0;
    for (size_t j = 0; j < good.size(); ++j) wrong += a.body[j] != good[j] ? 1u : 0u;
    EXPECT_EQ(wrong, 1u);
  }
  StopOrigin();
  EXPECT_EQ(origin_->faults().garble, 3u);
  EXPECT_EQ(origin_->faults().total(), 3u);
}

TEST_F(OriginTest, StallSendsPartOfTheBodyThenNothingForStallMs) {
  StartOrigin(Faulty("stall=100", /*seed=*/1, /*stall_ms=*/400));
  expect_ok_ = false;
  auto t0 = std::chrono::steady_clock::now();
  Answer a = Ask("sip.ld");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(a.code, CURLE_PARTIAL_FILE) << curl_easy_strerror(a.code);
  EXPECT_EQ(a.status, 200);
  EXPECT_LT(a.body.size(), kImage);
  EXPECT_GE(s, 0.39);
  EXPECT_LT(s, 5.0);
  StopOrigin();
  EXPECT_EQ(origin_->faults().stall, 1u);
}

TEST_F(OriginTest, StallOutlastsAClientThatGivesUp) {
  // The relay's side of a stall is a curl timeout (sync/curl_loop.cc: below 1 byte/s for 30 s,
  // which curl measures over a window of about 5 s, so the cut comes 30-36 s after the last
  // byte). Here a 500 ms deadline stands for it: the stalled answer neither ends nor sends on.
  StartOrigin(Faulty("stall=100", /*seed=*/1, /*stall_ms=*/60000));
  CURL* h = curl_easy_init();
  std::string body;
  std::string url = base_ + "sip.ld";
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 500L);
  auto t0 = std::chrono::steady_clock::now();
  CURLcode code = curl_easy_perform(h);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  curl_easy_cleanup(h);
  EXPECT_EQ(code, CURLE_OPERATION_TIMEDOUT);
  EXPECT_LT(body.size(), kImage);
  EXPECT_LT(s, 5.0);
  StopOrigin();
  EXPECT_EQ(origin_->faults().stall, 1u);
}

TEST_F(OriginTest, MixedFaultsFollowTheirPercentsAndTheSeed) {
  auto run = [&](uint64_t seed) {
    StartOrigin(Faulty("reset=20,error=20,short=20,stall=20", seed, /*stall_ms=*/1));
    expect_ok_ = false;
    std::string outcomes;
    for (int i = 0; i < 200; ++i) {
      Answer a = Ask("000000000000.cfg");
      outcomes += a.status == 503                                                     ? 'e'
                  : a.code == CURLE_RECV_ERROR                                        ? 'r'
                  : a.code == CURLE_PARTIAL_FILE                                      ? 's'
                  : a.code == CURLE_OK && a.status == 200 && a.body == MasterConfig() ? '.'
                                                                                      : '?';
    }
    StopOrigin();
    return outcomes;
  };
  std::string first = run(7);
  OriginFaultCounts f = origin_->faults();
  EXPECT_EQ(std::count(first.begin(), first.end(), '?'), 0) << first;
  EXPECT_EQ(static_cast<uint64_t>(std::count(first.begin(), first.end(), 'e')), f.error);
  EXPECT_EQ(static_cast<uint64_t>(std::count(first.begin(), first.end(), 'r')), f.reset);
  // A stall of 1 ms ends like a short body: both are FINs before the end.
  EXPECT_EQ(static_cast<uint64_t>(std::count(first.begin(), first.end(), 's')),
            f.short_body + f.stall);
  EXPECT_EQ(static_cast<uint64_t>(std::count(first.begin(), first.end(), '.')), 200 - f.total());
  // 20% of 200 is 40 each; a fair generator lands within 20-60 (beyond 3 sigma).
  for (uint64_t n : {f.reset, f.error, f.short_body, f.stall, 200 - f.total()}) {
    EXPECT_GT(n, 20u);
    EXPECT_LT(n, 60u);
  }
  origin_.reset();
  EXPECT_EQ(run(7), first) << "the same seed, the same faults";
  origin_.reset();
  EXPECT_NE(run(8), first);
}

}  // namespace
}  // namespace siterelay::fleet
