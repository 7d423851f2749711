#include "relay/admin/admin_handler.h"

#include <openssl/crypto.h>

#include "relay/admin/api.h"
#include "relay/admin/limits.h"
#include "relay/admin/web_assets.h"
#include "relay/base/log.h"
#include "relay/http/fields.h"

namespace siterelay::admin {
namespace {

http::Response Text(std::string body, std::string content_type) {
  http::Response r;
  r.body = std::move(body);
  r.headers.emplace_back("Content-Type", std::move(content_type));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

http::Response Json(const nlohmann::json& doc, int status = 200) {
  http::Response r =
      Text(doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
           "application/json");
  r.status = status;
  return r;
}

http::Response MethodNotAllowed(const char* allow) {
  http::Response r = http::ErrorResponse(405);
  r.headers.emplace_back("Allow", allow);
  return r;
}

// Compares without leaking where the first difference is.
bool SameSecret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// A browser that still holds the admin credentials sends them along with a form another site
// posts to us; such a request carries that site's Origin. Scripts (curl) send no Origin.
bool SameOrigin(const http::Request& request) {
  const std::string* origin = request.Header("origin");
  if (origin == nullptr) return true;
  const std::string* host = request.Header("host");
  if (host == nullptr) return false;
  size_t scheme = origin->find("://");
  return scheme != std::string::npos && origin->substr(scheme + 3) == *host;
}

// An action that did not happen: 404 for what is not there, 409 for what this relay is not set up
// to do, each with the reason for the console.
http::Response Refused(const Status& s) {
  return Json({{"error", s.message()}}, s.Is(StatusCode::kNotFound) ? 404 : 409);
}

// An action's JSON body, read whole (at most `limit` bytes: past it the server answers 413), then
// answered by `answer`. Nothing is paused or deferred: the body is small and `answer` runs at
// once on the loop thread.
class SmallBodySink final : public http::BodySink {
 public:
  SmallBodySink(size_t limit, std::function<http::Response(std::string_view body)> answer)
      : limit_(limit), answer_(std::move(answer)) {}
  Status Write(std::string_view data) override {
    if (data.size() > limit_ - body_.size()) {
      return Status::ResourceExhausted("request body over " + std::to_string(limit_) + " bytes");
    }
    body_.append(data);
    return Status::Ok();
  }
  bool WantsMore() const override { return true; }
  void OnWantsMore(std::function<void()>) override {}  // never paused, so never resumed
  void Finish(std::function<void(http::Response)> done) override { done(answer_(body_)); }
  void Abort() override {}

 private:
  size_t limit_;
  std::function<http::Response(std::string_view)> answer_;
  std::string body_;
};

// The embedded console file, or 304 when the browser's copy is current.
http::Response Asset(const WebAsset& asset, const http::Request& request) {
  const std::string* inm = request.Header("if-none-match");
  http::Response r;
  if (inm != nullptr && inm->find(asset.etag) != std::string::npos) {
    r.status = 304;
  } else {
    r.body = std::string(asset.body);
    r.headers.emplace_back("Content-Type", std::string(asset.content_type));
  }
  r.headers.emplace_back("ETag", std::string(asset.etag));
  // Revalidated on every load, so a new binary's console is seen at once.
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
  return r;
}

}  // namespace

bool AdminHandler::Authorized(const http::Request& request) const {
  if (sources_.password.empty()) return false;
  const std::string* h = request.Header("authorization");
  if (h == nullptr) return false;
  auto creds = http::ParseBasicAuth(*h);
  return creds && SameSecret(creds->user, sources_.user) &&
         SameSecret(creds->password, sources_.password);
}

http::Response AdminHandler::Action(const http::Request& request,
                                    const std::function<http::Response()>& act) const {
  if (!SameOrigin(request)) return http::ErrorResponse(403);
  return act();
}

http::Response AdminHandler::Api(const http::Request& request, std::string_view path) {
  bool get = request.method == http::Method::kGet || request.method == http::Method::kHead;
  if (path == "/api/v1/sync" && sources_.sync) {
    if (request.method == http::Method::kPost && sources_.start_sync) {
      return Action(request, [this] {
        Result<nlohmann::json> started = sources_.start_sync();
        if (!started.ok()) return Refused(started.status());
        return Json(*started, 202);
      });
    }
    if (!get) return MethodNotAllowed(sources_.start_sync ? "GET, HEAD, POST" : "GET, HEAD");
    return Json(sources_.sync());
  }
  if (path == "/api/v1/configs" && sources_.configs) {
    if (!get) return MethodNotAllowed("GET, HEAD");
    return Json(sources_.configs());
  }
  if (path == "/api/v1/configs/release" && sources_.release_config) {
    if (request.method != http::Method::kPost) return MethodNotAllowed("POST");
    return Action(request, [this] {
      http::Response r;
      r.sink = std::make_shared<SmallBodySink>(
          kMaxActionBodyBytes, [release = sources_.release_config](std::string_view body) {
            Result<std::string> config = ParseReleaseRequest(body);
            if (!config.ok()) return Json({{"error", config.status().message()}}, 400);
            Result<nlohmann::json> left = release(*config);
            if (!left.ok()) return Refused(left.status());
            return Json(*left);
          });
      return r;
    });
  }
  if (path == "/api/v1/tools" && sources_.tools) {
    if (!get) return MethodNotAllowed("GET, HEAD");
    const std::string* host = request.Header("host");
    return Json(sources_.tools(host != nullptr ? std::string_view(*host) : std::string_view()));
  }
  const std::function<nlohmann::json()>* doc = nullptr;
  if (path == "/api/v1/status") doc = &sources_.status;
  if (path == "/api/v1/devices") doc = &sources_.devices;
  if (path == "/api/v1/files") doc = &sources_.files;
  if (path == "/api/v1/history") doc = &sources_.history;
  if (doc == nullptr || !*doc) return http::ErrorResponse(404);
  if (!get) return MethodNotAllowed("GET, HEAD");
  return Json((*doc)());
}

http::Response AdminHandler::Handle(const http::Request& request, const files::Peer& peer) {
  std::string_view path = request.target;
  path = path.substr(0, path.find('?'));
  bool get = request.method == http::Method::kGet || request.method == http::Method::kHead;
  http::Response r;
  if (path == "/healthz" || (path == "/metrics" && sources_.metrics)) {
    if (!get) return MethodNotAllowed("GET, HEAD");
    if (path == "/metrics") {
      r = Text(RenderPrometheus(sources_.metrics()), "text/plain; version=0.0.4; charset=utf-8");
    } else {
      // Every listener was bound before the loop started, or serve would have exited: up.
      r = Text("ok\n", "text/plain");
    }
  } else {
    bool api = path.starts_with("/api/");
    const WebAsset* asset = api ? nullptr : FindWebAsset(path);
    if (!api && asset == nullptr) return http::ErrorResponse(404);
    if (!Authorized(request)) {
      SR_LOG(kInfo) << "admin: " << peer.ip << " " << path << ": no or wrong credentials";
      r = http::ErrorResponse(401);
      r.headers.emplace_back("WWW-Authenticate",
                             "Basic realm=\"siterelay admin\", charset=\"UTF-8\"");
      return r;
    }
    if (api) {
      r = Api(request, path);
    } else if (!get) {
      return MethodNotAllowed("GET, HEAD");
    } else {
      r = Asset(*asset, request);
    }
  }
  r.head_only = request.method == http::Method::kHead;
  return r;
}

}  // namespace siterelay::admin
