// The JSON API under /api/v1/ (CONTRACT.md "Admin API"; shapes in docs/admin.md): pure
// functions from what the relay knows to the documents the console, scripts and
// `siterelay status` read. serve.cc gathers the inputs on the loop thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cache/entry.h"
#include "relay/admin/metrics.h"
#include "relay/files/file_service.h"
#include "sync/prefetch.h"

namespace siterelay::admin {

struct Listener {
  std::string protocol;  // "http", "https", "tftp", "ftp", "ftps", "admin"
  std::string address;   // "127.0.0.1:8080"
};

struct StatusInputs {
  Metrics metrics;  // version, start time, counters
  int64_t now = 0;
  std::vector<Listener> listeners;
  std::string origin_url;  // "" without an origin (credentials never included)
  bool sync_configured = false;
  sync::SyncProgress sync;
};

nlohmann::json StatusJson(const StatusInputs& in);
nlohmann::json DevicesJson(const std::map<std::string, files::Device>& devices);
nlohmann::json FilesJson(const std::vector<cache::Entry>& entries, int64_t now);

// The password of the admin API: [admin] password, or the one generated at the first start
// into data_dir/admin-password (mode 0600; `create` makes it when missing).
Result<std::string> AdminPassword(const std::string& configured, const std::string& data_dir,
                                  bool create);

}  // namespace siterelay::admin
