#include "relay/admin/admin_handler.h"

#include <gtest/gtest.h>

#include "relay/admin/web_assets.h"

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
    s.user = "admin";
    s.password = "secret";
    handler_ = std::make_unique<AdminHandler>(std::move(s));
  }
  http::Response Do(http::Request r) { return handler_->Handle(r, files::Peer{}); }

  std::unique_ptr<AdminHandler> handler_;
  std::string seen_host_;
  bool configured_ = true;
  bool running_ = false;
  int starts_ = 0;
};

TEST_F(AdminHandlerTest, HealthAndMetricsNeedNoCredentials) {
  EXPECT_EQ(Do(Req(http::Method::kGet, "/healthz")).status, 200);
  http::Response m = Do(Req(http::Method::kGet, "/metrics"));
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(HeaderOf(m, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(Do(Req(http::Method::kPost, "/metrics")).status, 405);
}

TEST_F(AdminHandlerTest, EveryApiPathAndTheConsoleNeedTheCredentials) {
  for (const char* path : {"/api/v1/status", "/api/v1/devices", "/api/v1/files", "/api/v1/history",
                           "/api/v1/tools", "/api/v1/sync", "/api/v1/nonexistent", "/"}) {
    http::Response r = Do(Req(http::Method::kGet, path));
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_EQ(HeaderOf(r, "WWW-Authenticate"), "Basic realm=\"siterelay admin\", charset=\"UTF-8\"");
    r = Do(Req(http::Method::kGet, path, {{"authorization", "Basic YWRtaW46d3Jvbmc="}}));
    EXPECT_EQ(r.status, 401) << path << " with a wrong password";
  }
  EXPECT_EQ(Do(Req(http::Method::kPost, "/api/v1/sync")).status, 401);
  EXPECT_EQ(starts_, 0);
}

TEST_F(AdminHandlerTest, ApiAnswersJsonWithTheCredentials) {
  for (const char* path :
       {"/api/v1/status", "/api/v1/devices", "/api/v1/files", "/api/v1/history", "/api/v1/sync"}) {
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
