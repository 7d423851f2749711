// The operator's listener ([admin], CONTRACT.md "Admin API"; docs/admin.md): /healthz and
// /metrics without auth; the JSON API under /api/v1/ and the web console (web/, embedded) behind
// HTTP Basic with the admin credentials. The operator's actions (POST /api/v1/sync, POST
// /api/v1/configs/release) go through one check against pages of other sites (Action()). Runs on
// the loop thread.
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
  std::function<nlohmann::json()> configs;  // GET /api/v1/configs: the held-back master configs
  // POST /api/v1/configs/release: publishes the held `path` now and returns the new list;
  // NotFound when it is not held (404), FailedPrecondition when nothing is ever held (409).
  std::function<Result<nlohmann::json>(std::string_view path)> release_config;
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
  // An operator's action (a POST that changes something): refused before `act` runs when it
  // comes from a page of another site.
  http::Response Action(const http::Request& request,
                        const std::function<http::Response()>& act) const;
  AdminSources sources_;
};

}  // namespace siterelay::admin
