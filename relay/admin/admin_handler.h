// The operator's listener ([admin], CONTRACT.md "Admin API"): /healthz and /metrics without auth;
// /api/v1/status, /api/v1/devices and /api/v1/files behind HTTP Basic with the admin credentials.
// The web console and the sync endpoints come with the rest of the console issue. Runs on the
// loop thread.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "relay/admin/metrics.h"
#include "relay/http/server.h"

namespace siterelay::admin {

// Where the answers come from (serve.cc fills them on the loop thread). Unset: 404.
struct AdminSources {
  std::function<Metrics()> metrics;
  std::function<nlohmann::json()> status;
  std::function<nlohmann::json()> devices;
  std::function<nlohmann::json()> files;
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
  AdminSources sources_;
};

}  // namespace siterelay::admin
