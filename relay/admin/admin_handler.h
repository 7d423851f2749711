// The operator's listener ([admin], CONTRACT.md "Admin API"; docs/admin.md): /healthz and
// /metrics without auth; the JSON API under /api/v1/ and the web console (web/, embedded) behind
// HTTP Basic with the admin credentials. Runs on the loop thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "relay/admin/metrics.h"
#include "relay/base/status.h"
#include "relay/http/server.h"

namespace siterelay::admin {

// Where the answers come from (serve.cc fills them on the loop thread). Unset: 404.
struct AdminSources {
  std::function<Metrics()> metrics;
  std::function<nlohmann::json()> status;
  std::function<nlohmann::json()> devices;
  std::function<nlohmann::json()> files;
  std::function<nlohmann::json()> history;
  // `host`: the Host the client reached the admin listener by, for the URLs phones are given.
  std::function<nlohmann::json(std::string_view host)> tools;
  std::function<nlohmann::json()> sync;  // GET /api/v1/sync: the pass's progress
  // POST /api/v1/sync: starts a pass (or joins the running one) and returns its progress;
  // FailedPrecondition when there is nothing to sync (409).
  std::function<Result<nlohmann::json>()> start_sync;
  std::string user = "admin";
  std::string password;  // never empty when the API is served
};

class AdminHandler final : public http::Handler {
 public:
  explicit AdminHandler(AdminSources sources = {}) : sources_(std::move(sources)) {}
  void SetCredentials(std::string user, std::string password) {
    sources_.user = std::move(user);
    sources_.password = std::move(password);
  }
  http::Response Handle(const http::Request& request, const files::Peer& peer) override;

 private:
  bool Authorized(const http::Request& request) const;
  http::Response Api(const http::Request& request, std::string_view path);
  AdminSources sources_;
};

}  // namespace siterelay::admin
