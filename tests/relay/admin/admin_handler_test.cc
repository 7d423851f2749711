#include "relay/admin/admin_handler.h"

#include <gtest/gtest.h>

#include "relay/admin/api.h"
#include "relay/admin/limits.h"
#include "relay/admin/web_assets.h"
#include "relay/base/sha256.h"

namespace siterelay::admin {
namespace {

// "admin:secret"
constexpr const char* kGoodAuth = "Basic YWRtaW46c2VjcmV0";

http::Request Req(http::Method method, std::string target,
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
  http::Request r;
  r.method = method;
  r.method_text = method == http::Method::kPost ? "POST" : method == http::Method::kHead ? "HEAD"
                                                                                          : "GET";
  r.target = std::move(target);
  r.headers = std::move(headers);
  return r;
}

std::string HeaderOf(const http::Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

class AdminHandlerTest : public ::testing::Test {
 protected:
  AdminHandlerTest() {
    AdminSources s;
    s.metrics = [] { return Metrics(); };
    s.status = [] { return nlohmann::json{{"version", "x"}}; };
    s.devices = [] { return nlohmann::json::array(); };
    s.files = [] { return nlohmann::json::array(); };
    s.history = [] { return nlohmann::json{{"points", nlohmann::json::array()}}; };
    s.tools = [this](std::string_view host) {
      seen_host_ = host;
      return nlohmann::json::object();
    };
    s.sync = [this] { return nlohmann::json{{"running", running_}}; };
    s.start_sync = [this]() -> Result<nlohmann::json> {
      if (!configured_) return Status::FailedPrecondition("no manifest configured");
      ++starts_;
      running_ = true;
      return nlohmann::json{{"running", running_}};
    };
    s.configs = [this] { return ConfigsJson(gated_, held_, released_, 2048); };
    s.release_config = [this](std::string_view path) -> Result<nlohmann::json> {
      release_asked_.emplace_back(path);
      if (!gated_) return Status::FailedPrecondition("hold_configs is off");
      size_t before = held_.size();
      std::erase_if(held_, [path](const files::HeldConfig& c) { return c.path == path; });
      if (held_.size() == before) return Status::NotFound(std::string(path) + " is not held back");
      ++released_;
      return ConfigsJson(gated_, held_, released_, 2048);
    };
    s.user = "admin";
    s.password = "secret";
    handler_ = std::make_unique<AdminHandler>(std::move(s));

    files::HeldConfig c;
    c.path = "000000000000.cfg";
    c.sha256 = Sha256::Of("new");
    c.size = 100;
    c.since = 1795636800;
    c.reason = "fw/sip.ld: not on the origin (tried again later)";
    files::HeldFile f;
    f.path = "fw/sip.ld";
    f.state = files::HeldFile::State::kFailed;
    f.error = "not on the origin";
    c.files = {f};
    example_ = c;
    held_.push_back(example_);
  }
  http::Response Do(http::Request r) { return handler_->Handle(r, files::Peer{}); }

  // POST /api/v1/configs/release with `body`, fed to the handler's sink the way the server feeds
  // it (in `piece`-byte writes); a sink that refuses a write ends as the server ends it (413).
  http::Response Release(
      std::string_view body,
      std::vector<std::pair<std::string, std::string>> headers = {{"authorization", kGoodAuth}},
      size_t piece = 1 << 20) {
    http::Response r = Do(Req(http::Method::kPost, "/api/v1/configs/release", std::move(headers)));
    if (!r.sink) return r;
    for (size_t at = 0; at < body.size(); at += piece) {
      EXPECT_TRUE(r.sink->WantsMore());
      Status s = r.sink->Write(body.substr(at, piece));
      if (!s.ok()) {
        EXPECT_TRUE(s.Is(StatusCode::kResourceExhausted)) << s.message();
        r.sink->Abort();
        return http::ErrorResponse(413);
      }
    }
    http::Response answer;
    bool answered = false;
    r.sink->Finish([&](http::Response a) {
      answer = std::move(a);
      answered = true;
    });
    EXPECT_TRUE(answered) << "the answer comes at once";
    return answer;
  }

  std::unique_ptr<AdminHandler> handler_;
  std::string seen_host_;
  bool configured_ = true;
  bool running_ = false;
  int starts_ = 0;
  bool gated_ = true;
  files::HeldConfig example_;  // 000000000000.cfg, waiting for an image the origin lacks
  std::vector<files::HeldConfig> held_;
  uint64_t released_ = 0;
  std::vector<std::string> release_asked_;
};

TEST_F(AdminHandlerTest, HealthAndMetricsNeedNoCredentials) {
  EXPECT_EQ(Do(Req(http::Method::kGet, "/healthz")).status, 200);
  http::Response m = Do(Req(http::Method::kGet, "/metrics"));
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(HeaderOf(m, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(Do(Req(http::Method::kPost, "/metrics")).status, 405);
}

TEST_F(AdminHandlerTest, EveryApiPathAndTheConsoleNeedTheCredentials) {
  for (const char* path :
       {"/api/v1/status", "/api/v1/devices", "/api/v1/files", "/api/v1/history", "/api/v1/tools",
        "/api/v1/sync", "/api/v1/configs", "/api/v1/configs/release", "/api/v1/nonexistent", "/"}) {
    http::Response r = Do(Req(http::Method::kGet, path));
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_EQ(HeaderOf(r, "WWW-Authenticate"), "Basic realm=\"siterelay admin\", charset=\"UTF-8\"");
    r = Do(Req(http::Method::kGet, path, {{"authorization", "Basic YWRtaW46d3Jvbmc="}}));
    EXPECT_EQ(r.status, 401) << path << " with a wrong password";
  }
  EXPECT_EQ(Do(Req(http::Method::kPost, "/api/v1/sync")).status, 401);
  EXPECT_EQ(starts_, 0);
  http::Response r = Do(Req(http::Method::kPost, "/api/v1/configs/release"));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.sink, nullptr) << "no body is read before the credentials are checked";
  EXPECT_EQ(Release(R"({"path": "000000000000.cfg"})", {}).status, 401);
  EXPECT_TRUE(release_asked_.empty());
}

TEST_F(AdminHandlerTest, ApiAnswersJsonWithTheCredentials) {
  for (const char* path : {"/api/v1/status", "/api/v1/devices", "/api/v1/files", "/api/v1/history",
                           "/api/v1/sync", "/api/v1/configs"}) {
    http::Response r = Do(Req(http::Method::kGet, path, {{"authorization", kGoodAuth}}));
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(HeaderOf(r, "Content-Type"), "application/json") << path;
    EXPECT_TRUE(nlohmann::json::accept(r.body)) << path;
  }
  EXPECT_EQ(Do(Req(http::Method::kGet, "/api/v1/nope", {{"authorization", kGoodAuth}})).status,
            404);
  EXPECT_EQ(Do(Req(http::Method::kPost, "/api/v1/status", {{"authorization", kGoodAuth}})).status,
            405);
  http::Response head = Do(Req(http::Method::kHead, "/api/v1/status", {{"authorization", kGoodAuth}}));
  EXPECT_TRUE(head.head_only);
}

TEST_F(AdminHandlerTest, ToolsAreToldTheHostTheClientUsed) {
  http::Response r = Do(Req(http::Method::kGet, "/api/v1/tools",
                            {{"authorization", kGoodAuth}, {"host", "10.1.2.3:5050"}}));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(seen_host_, "10.1.2.3:5050");
}

TEST_F(AdminHandlerTest, PostSyncStartsAPassAndRefusesOtherSites) {
  http::Response r = Do(Req(http::Method::kPost, "/api/v1/sync",
                            {{"authorization", kGoodAuth},
                             {"host", "10.1.2.3:5050"},
                             {"origin", "http://evil.example"}}));
  EXPECT_EQ(r.status, 403) << "a form posted from another site, riding on the browser's login";
  EXPECT_EQ(starts_, 0);
  r = Do(Req(http::Method::kPost, "/api/v1/sync",
             {{"authorization", kGoodAuth}, {"host", "10.1.2.3:5050"},
              {"origin", "http://10.1.2.3:5050"}}));
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(nlohmann::json::parse(r.body)["running"], true);
  r = Do(Req(http::Method::kPost, "/api/v1/sync", {{"authorization", kGoodAuth}}));  // curl
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(starts_, 2);
  configured_ = false;
  r = Do(Req(http::Method::kPost, "/api/v1/sync", {{"authorization", kGoodAuth}}));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "no manifest configured");
}

TEST_F(AdminHandlerTest, ConfigsListWhatIsHeldAndWhy) {
  http::Response r = Do(Req(http::Method::kGet, "/api/v1/configs", {{"authorization", kGoodAuth}}));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(HeaderOf(r, "Content-Type"), "application/json");
  nlohmann::json j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["enabled"], true);
  EXPECT_EQ(j["released"], 0);
  EXPECT_EQ(j["wan_rate"], 2048);
  ASSERT_EQ(j["held"].size(), 1u);
  const nlohmann::json& c = j["held"][0];
  EXPECT_EQ(c["path"], "000000000000.cfg");
  EXPECT_EQ(c["sha256"], Sha256::Of("new").Hex());
  EXPECT_EQ(c["size"], 100);
  EXPECT_EQ(c["since"], 1795636800);
  EXPECT_EQ(c["reason"], "fw/sip.ld: not on the origin (tried again later)");
  EXPECT_TRUE(c.contains("eta_seconds"));
  EXPECT_TRUE(c["eta_seconds"].is_null());
  ASSERT_EQ(c["files"].size(), 1u);
  EXPECT_EQ(c["files"][0]["path"], "fw/sip.ld");
  EXPECT_EQ(c["files"][0]["state"], "failed");
  EXPECT_EQ(c["files"][0]["bytes_done"], 0);
  EXPECT_TRUE(c["files"][0]["bytes_total"].is_null());
  EXPECT_EQ(c["files"][0]["error"], "not on the origin");

  EXPECT_EQ(Do(Req(http::Method::kPost, "/api/v1/configs", {{"authorization", kGoodAuth}})).status,
            405);
  r = Do(Req(http::Method::kGet, "/api/v1/configs/release", {{"authorization", kGoodAuth}}));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(HeaderOf(r, "Allow"), "POST");
  EXPECT_TRUE(release_asked_.empty());
}

TEST_F(AdminHandlerTest, ReleasePublishesTheNamedConfigAndAnswersTheNewList) {
  http::Response r = Release(R"({"path": "000000000000.cfg"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(HeaderOf(r, "Content-Type"), "application/json");
  nlohmann::json j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["held"], nlohmann::json::array());
  EXPECT_EQ(j["released"], 1);
  EXPECT_EQ(release_asked_, std::vector<std::string>{"000000000000.cfg"});

  r = Release(R"({"path": "000000000000.cfg"})");
  EXPECT_EQ(r.status, 404) << "no longer held";
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "000000000000.cfg is not held back");

  gated_ = false;
  r = Release(R"({"path": "000000000000.cfg"})");
  EXPECT_EQ(r.status, 409) << "hold_configs off: as POST /api/v1/sync without a manifest";
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "hold_configs is off");
}

TEST_F(AdminHandlerTest, ReleaseRefusesABadBody) {
  for (const char* body : {"", "000000000000.cfg", "path=000000000000.cfg", "{}", R"({"path": 1})",
                           R"({"path": ""})", "[]"}) {
    http::Response r = Release(body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_TRUE(nlohmann::json::parse(r.body)["error"].is_string()) << body;
  }
  EXPECT_TRUE(release_asked_.empty());
  EXPECT_EQ(held_.size(), 1u);
}

TEST_F(AdminHandlerTest, ReleaseRefusesOtherSitesAsSyncDoes) {
  // The same check as POST /api/v1/sync: a form posted from another site, riding on the
  // browser's login, is refused before its body is read.
  std::vector<std::pair<std::string, std::string>> evil = {
      {"authorization", kGoodAuth}, {"host", "10.1.2.3:5050"}, {"origin", "http://evil.example"}};
  http::Response r = Do(Req(http::Method::kPost, "/api/v1/configs/release", evil));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.sink, nullptr);
  EXPECT_EQ(Do(Req(http::Method::kPost, "/api/v1/sync", evil)).status, 403);
  EXPECT_TRUE(release_asked_.empty());
  EXPECT_EQ(starts_, 0);

  r = Release(R"({"path": "000000000000.cfg"})", {{"authorization", kGoodAuth},
                                                  {"host", "10.1.2.3:5050"},
                                                  {"origin", "http://10.1.2.3:5050"}});
  EXPECT_EQ(r.status, 200) << "the console itself";
  EXPECT_EQ(release_asked_.size(), 1u);
}

TEST_F(AdminHandlerTest, ReleaseBodyIsReadUpToItsLimit) {
  const std::string json = R"({"path": "000000000000.cfg"})";
  auto padded = [&](size_t size) { return json + std::string(size - json.size(), ' '); };
  // N-1 and N bytes are read (in one write, and a byte at a time); N+1 is refused with 413.
  http::Response r = Release(padded(kMaxActionBodyBytes - 1));
  EXPECT_EQ(r.status, 200) << r.body;
  held_.push_back(example_);  // held again, for the next release
  r = Release(padded(kMaxActionBodyBytes), {{"authorization", kGoodAuth}}, 1);
  EXPECT_EQ(r.status, 200) << r.body;
  held_.push_back(example_);
  r = Release(padded(kMaxActionBodyBytes + 1));
  EXPECT_EQ(r.status, 413);
  r = Release(padded(kMaxActionBodyBytes + 1), {{"authorization", kGoodAuth}}, 1000);
  EXPECT_EQ(r.status, 413) << "in pieces";
  EXPECT_EQ(release_asked_.size(), 2u) << "nothing released from an oversized body";
}

TEST_F(AdminHandlerTest, TheConsoleIsServedWithValidators) {
  const WebAsset* index = FindWebAsset("/");
  if (index == nullptr) GTEST_SKIP() << "web/ has no index.html in this tree";
  http::Response r = Do(Req(http::Method::kGet, "/", {{"authorization", kGoodAuth}}));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, index->body);
  EXPECT_EQ(HeaderOf(r, "Content-Type"), "text/html; charset=utf-8");
  std::string etag = HeaderOf(r, "ETag");
  EXPECT_EQ(etag, index->etag);
  EXPECT_NE(HeaderOf(r, "Content-Security-Policy"), "");
  r = Do(Req(http::Method::kGet, "/index.html",
             {{"authorization", kGoodAuth}, {"if-none-match", etag}}));
  EXPECT_EQ(r.status, 304);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(Do(Req(http::Method::kGet, "/../etc/passwd", {{"authorization", kGoodAuth}})).status,
            404);
  EXPECT_EQ(Do(Req(http::Method::kGet, "/nothing.js", {{"authorization", kGoodAuth}})).status, 404);
}

TEST(WebAssetsTest, OnlyEmbeddedNamesAreFound) {
  EXPECT_EQ(FindWebAsset(""), nullptr);
  EXPECT_EQ(FindWebAsset("index.html"), nullptr) << "URL paths start with /";
  EXPECT_EQ(FindWebAsset("/a/index.html"), nullptr);
  EXPECT_EQ(FindWebAsset("/..index.html"), nullptr);
  for (const WebAsset& a : WebAssets()) {
    const WebAsset* found = FindWebAsset("/" + std::string(a.name));
    ASSERT_NE(found, nullptr) << a.name;
    EXPECT_EQ(found->name, a.name);
    EXPECT_EQ(found->etag.size(), 18u) << "16 hex digits in quotes";
  }
}

}  // namespace
}  // namespace siterelay::admin
