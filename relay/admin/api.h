// The JSON API under /api/v1/ (CONTRACT.md "Admin API"; shapes in docs/admin.md): pure
// functions from what the relay knows to the documents the console, scripts and
// `siterelay status` read. serve.cc gathers the inputs on the loop thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cache/catalog.h"
#include "cache/entry.h"
#include "relay/admin/metrics.h"
#include "relay/files/config_gate.h"
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
  uint64_t devices_seen_24h = 0;
};

nlohmann::json StatusJson(const StatusInputs& in);
// The pass's progress: status.sync and GET /api/v1/sync.
nlohmann::json SyncJson(bool configured, const sync::SyncProgress& s);

// A device with what the console works out about it.
struct DeviceView {
  const files::Device* device = nullptr;
  std::string expected_firmware;  // "" when the config names no version the relay can read
};
nlohmann::json DevicesJson(const std::vector<DeviceView>& devices);
// Whether a phone running `running` differs from `expected`; false when either is unknown. A
// shorter expected version ("5.9.7") matches every build under it ("5.9.7.47435").
bool FirmwareMismatch(std::string_view running, std::string_view expected);

// The console's traffic chart (GET /api/v1/history): buckets oldest first.
nlohmann::json HistoryJson(const std::vector<cache::TrafficRecord>& buckets, int64_t bucket_seconds,
                           int64_t now);
nlohmann::json FilesJson(const std::vector<cache::Entry>& entries, int64_t now);

// Master configs held back until what they name is cached (files::ConfigGate; GET
// /api/v1/configs, and the answer to POST /api/v1/configs/release). `enabled`: the gate is on (an
// origin, and [origin] hold_configs). `released`: new versions it has published since start.
// `wan_rate`: bytes/s, as the estimates use it.
nlohmann::json ConfigsJson(bool enabled, const std::vector<files::HeldConfig>& held,
                           uint64_t released, double wan_rate);
// Files not here yet over all held configs (siterelay_configs_held_files_waiting).
uint64_t HeldFilesWaiting(const std::vector<files::HeldConfig>& held);
// The body of POST /api/v1/configs/release, {"path": "000000000000.cfg"}: the path as GET lists
// it, or InvalidArgument saying what is wrong. Other members are ignored.
Result<std::string> ParseReleaseRequest(std::string_view body);

// The tools page (GET /api/v1/tools): what to give phones to find this relay and trust it.
struct ToolsInputs {
  std::string host;  // the relay's address for phones (a bare IPv6 address gets brackets)
  std::vector<Listener> listeners;  // the phone listeners: http, https, tftp, ftp, ftps
  std::string user;  // the first [[account]], "" without accounts
  std::string password;
  std::string certificate_pem;  // the HTTPS certificate file, "" without TLS
};
nlohmann::json ToolsJson(const ToolsInputs& in);
// The last certificate of a PEM file (a chain ends nearest its root: what phones must trust);
// "" when there is none.
std::string LastCertificate(std::string_view pem);

// The password of the admin API: [admin] password, or the one generated at the first start
// into data_dir/admin-password (mode 0600; `create` makes it when missing).
Result<std::string> AdminPassword(const std::string& configured, const std::string& data_dir,
                                  bool create);

}  // namespace siterelay::admin
