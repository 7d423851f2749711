#include "relay/admin/admin_handler.h"

#include <openssl/crypto.h>

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

// Compares without leaking where the first difference is.
bool SameSecret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
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

http::Response AdminHandler::Handle(const http::Request& request, const files::Peer& peer) {
  std::string_view path = request.target;
  path = path.substr(0, path.find('?'));
  const std::function<nlohmann::json()>* api = nullptr;
  if (path == "/api/v1/status") api = &sources_.status;
  if (path == "/api/v1/devices") api = &sources_.devices;
  if (path == "/api/v1/files") api = &sources_.files;
  bool metrics = path == "/metrics" && sources_.metrics;
  bool known = path == "/healthz" || metrics || (api != nullptr && *api);
  if (!known) return http::ErrorResponse(404);
  if (request.method != http::Method::kGet && request.method != http::Method::kHead) {
    http::Response r = http::ErrorResponse(405);
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  http::Response r;
  if (api != nullptr) {
    if (!Authorized(request)) {
      SR_LOG(kInfo) << "admin: " << peer.ip << " " << path << ": no or wrong credentials";
      r = http::ErrorResponse(401);
      r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"siterelay admin\", charset=\"UTF-8\"");
      return r;
    }
    r = Text((*api)().dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
             "application/json");
  } else if (metrics) {
    r = Text(RenderPrometheus(sources_.metrics()), "text/plain; version=0.0.4; charset=utf-8");
  } else {
    // Every listener was bound before the loop started, or serve would have exited: up.
    r = Text("ok\n", "text/plain");
  }
  r.head_only = request.method == http::Method::kHead;
  return r;
}

}  // namespace siterelay::admin
