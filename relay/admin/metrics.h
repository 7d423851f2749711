// /metrics (CONTRACT.md "Admin API"): the relay's counters in the Prometheus text exposition
// format (version 0.0.4), for the tools admins already run. The relay fills a Metrics snapshot on
// the loop thread (serve.cc); rendering it is a pure function, tested on its own.
//
// Names follow Prometheus conventions: siterelay_ prefix, _total for counters, _bytes for sizes,
// labels for the protocol, the status or reply code, and the content class.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "relay/base/mime.h"
#include "sync/prefetch.h"

namespace siterelay::admin {

struct ProtocolMetrics {
  std::string protocol;              // "http", "https", "tftp", "ftp"
  std::map<std::string, uint64_t> results;  // status or reply code ("200", "426", "ok") -> count
  uint64_t open = 0;                 // connections, transfers or sessions now
};

struct Metrics {
  std::string version;
  int64_t started = 0;  // Unix seconds
  std::vector<ProtocolMetrics> protocols;
  // Cache:
  uint64_t cache_objects = 0;
  uint64_t cache_bytes = 0;
  uint64_t cache_entries = 0;
  uint64_t stale_serves = 0;
  // WAN saved: bodies served to phones and fetched from the origin, by content class.
  std::array<uint64_t, kContentClasses> served_bytes{};
  std::array<uint64_t, kContentClasses> origin_bytes{};
  // The origin:
  uint64_t origin_requests = 0;
  uint64_t origin_failures = 0;
  uint64_t origin_revalidations = 0;
  uint64_t origin_not_modified = 0;
  uint64_t origin_resumes = 0;
  uint64_t origin_in_flight = 0;
  uint64_t upstream_sent_bytes = 0;  // uploads: settings and log batches
  // Uploads going upstream:
  uint64_t outbox_pending = 0;
  uint64_t outbox_sent = 0;
  uint64_t outbox_failures = 0;
  bool logs_enabled = false;
  uint64_t log_unbatched_bytes = 0;
  uint64_t log_pending_batches = 0;
  uint64_t log_pending_bytes = 0;
  uint64_t log_dead_batches = 0;
  int64_t log_shipped_lines = 0;
  int64_t log_dropped_lines = 0;
  // TLS (HTTPS and FTPS) handshakes over the life of the process:
  uint64_t tls_handshakes = 0;
  uint64_t tls_handshake_failures = 0;
  // The prefetch pass (sync_configured: a manifest or prefetch list is set):
  bool sync_configured = false;
  sync::SyncProgress sync;
  // Master configs held back until what they name is cached (configs_gated: files::ConfigGate is
  // on, i.e. an origin and [origin] hold_configs):
  bool configs_gated = false;
  uint64_t configs_held = 0;
  uint64_t configs_held_files_waiting = 0;  // files not here yet, over all held configs
  uint64_t configs_released = 0;            // new versions the gate published since start
  // The device inventory:
  uint64_t devices = 0;
  uint64_t devices_firmware_mismatch = 0;
  // The process:
  uint64_t resident_bytes = 0;
};

// The Prometheus text for `m`.
std::string RenderPrometheus(const Metrics& m);

// The process's resident set (from /proc/self/statm), 0 when unknown.
uint64_t ResidentBytes();

}  // namespace siterelay::admin
