#include "relay/admin/admin_handler.h"

namespace siterelay::admin {

http::Response AdminHandler::Handle(const http::Request& request, const files::Peer&) {
  std::string_view path = request.target;
  path = path.substr(0, path.find('?'));
  bool metrics = path == "/metrics" && metrics_;
  if (path != "/healthz" && !metrics) return http::ErrorResponse(404);
  if (request.method != http::Method::kGet && request.method != http::Method::kHead) {
    http::Response r = http::ErrorResponse(405);
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  http::Response r;
  if (metrics) {
    r.body = RenderPrometheus(metrics_());
    r.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  } else {
    // Every listener was bound before the loop started, or serve would have exited: up.
    r.body = "ok\n";
    r.headers.emplace_back("Content-Type", "text/plain");
  }
  r.headers.emplace_back("Cache-Control", "no-store");
  r.head_only = request.method == http::Method::kHead;
  return r;
}

}  // namespace siterelay::admin
