#include "relay/admin/metrics.h"

#include <unistd.h>

#include <cstdio>

namespace siterelay::admin {
namespace {

// One metric family: HELP, TYPE, then its samples.
class Writer {
 public:
  void Family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // `labels`: already formatted, {a="b",c="d"}, or empty.
  void Sample(const char* name, const std::string& labels, uint64_t value) {
    out_ += name;
    out_ += labels;
    out_ += ' ';
    out_ += std::to_string(value);
    out_ += '\n';
  }
  void One(const char* name, const char* type, const char* help, uint64_t value) {
    Family(name, type, help);
    Sample(name, "", value);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// A label value: backslash, quote and newline escaped (exposition format 0.0.4).
std::string Label(const char* name, const std::string& value) {
  std::string out = name;
  out += "=\"";
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string RenderPrometheus(const Metrics& m) {
  Writer w;
  w.Family("siterelay_build_info", "gauge", "The running version.");
  w.Sample("siterelay_build_info", "{" + Label("version", m.version) + "}", 1);
  w.One("siterelay_start_time_seconds", "gauge", "When the relay started (Unix time).",
        static_cast<uint64_t>(m.started));

  w.Family("siterelay_requests_total", "counter",
           "Phone requests and transfers by protocol and result (HTTP status, FTP reply code, "
           "TFTP ok or failed).");
  for (const ProtocolMetrics& p : m.protocols) {
    for (const auto& [code, n] : p.results) {
      w.Sample("siterelay_requests_total",
               "{" + Label("protocol", p.protocol) + "," + Label("result", code) + "}", n);
    }
  }
  w.Family("siterelay_open", "gauge",
           "Connections (HTTP, HTTPS), transfers (TFTP) or sessions (FTP) open now.");
  for (const ProtocolMetrics& p : m.protocols) {
    w.Sample("siterelay_open", "{" + Label("protocol", p.protocol) + "}", p.open);
  }

  w.One("siterelay_cache_objects", "gauge", "Objects in the cache.", m.cache_objects);
  w.One("siterelay_cache_bytes", "gauge", "Bytes of the objects in the cache.", m.cache_bytes);
  w.One("siterelay_cache_entries", "gauge", "Paths the cache serves.", m.cache_entries);
  w.One("siterelay_stale_serves_total", "counter",
        "Reads answered with the last good copy because the origin failed.", m.stale_serves);
  auto by_class = [&w](const char* name, const char* help,
                       const std::array<uint64_t, kContentClasses>& bytes) {
    w.Family(name, "counter", help);
    for (size_t c = 0; c < kContentClasses; ++c) {
      std::string cls(ContentClassName(static_cast<ContentClass>(c)));
      w.Sample(name, "{" + Label("class", cls) + "}", bytes[c]);
    }
  };
  by_class("siterelay_served_bytes_total", "Body bytes served to phones, by content class.",
           m.served_bytes);
  by_class("siterelay_origin_bytes_total",
           "Body bytes fetched from the origin, by content class (served - origin = WAN saved).",
           m.origin_bytes);
  w.One("siterelay_origin_requests_total", "counter", "Requests sent to the origin.",
        m.origin_requests);
  w.One("siterelay_origin_failures_total", "counter",
        "Origin requests that ended without a usable answer.", m.origin_failures);
  w.One("siterelay_origin_revalidations_total", "counter",
        "Conditional requests to the origin.", m.origin_revalidations);
  w.One("siterelay_origin_not_modified_total", "counter",
        "Conditional requests the origin answered 304.", m.origin_not_modified);
  w.One("siterelay_origin_resumes_total", "counter", "Downloads resumed after a cut.",
        m.origin_resumes);
  w.One("siterelay_origin_transfers_in_flight", "gauge", "Origin transfers running now.",
        m.origin_in_flight);
  w.One("siterelay_upstream_sent_bytes_total", "counter",
        "Bytes uploaded upstream (settings files, log batches).", m.upstream_sent_bytes);

  w.One("siterelay_outbox_pending", "gauge", "Settings uploads not yet on the origin.",
        m.outbox_pending);
  w.One("siterelay_outbox_sent_total", "counter", "Settings uploads the origin took.",
        m.outbox_sent);
  w.One("siterelay_outbox_failures_total", "counter",
        "Attempts to send a settings upload that failed (each is retried).", m.outbox_failures);
  if (m.logs_enabled) {
    w.One("siterelay_log_spool_unbatched_bytes", "gauge",
          "Spooled log bytes not yet cut into a batch.", m.log_unbatched_bytes);
    w.One("siterelay_log_batches_pending", "gauge", "Log batches waiting for the upstream.",
          m.log_pending_batches);
    w.One("siterelay_log_batches_pending_bytes", "gauge",
          "Compressed bytes of the log batches waiting.", m.log_pending_bytes);
    w.One("siterelay_log_batches_dead", "gauge",
          "Log batches the upstream refused for good (kept, not retried).", m.log_dead_batches);
    w.One("siterelay_log_lines_shipped_total", "counter",
          "Log lines the upstream acknowledged.", static_cast<uint64_t>(m.log_shipped_lines));
    w.One("siterelay_log_lines_dropped_total", "counter",
          "Oldest unsent log lines dropped past logs.spool_bytes.",
          static_cast<uint64_t>(m.log_dropped_lines));
  }
  w.One("siterelay_tls_handshakes_total", "counter",
        "TLS handshakes completed (HTTPS, FTPS control and data).", m.tls_handshakes);
  w.One("siterelay_tls_handshake_failures_total", "counter",
        "TLS handshakes that failed: an alert or protocol error, or the peer left half-way.",
        m.tls_handshake_failures);
  if (m.sync_configured) {
    const sync::SyncProgress& s = m.sync;
    w.One("siterelay_sync_running", "gauge", "1 while a prefetch pass runs.", s.running ? 1 : 0);
    w.Family("siterelay_sync_files", "gauge",
             "Files of the current (or last) pass: listed, done (cached and verified), failed.");
    w.Sample("siterelay_sync_files", "{state=\"total\"}", s.files_total);
    w.Sample("siterelay_sync_files", "{state=\"done\"}", s.files_done);
    w.Sample("siterelay_sync_files", "{state=\"failed\"}", s.files_failed);
    w.Family("siterelay_sync_bytes", "gauge",
             "Bytes the current (or last) pass had to download, and has downloaded.");
    w.Sample("siterelay_sync_bytes", "{state=\"total\"}", s.bytes_total);
    w.Sample("siterelay_sync_bytes", "{state=\"done\"}", s.bytes_done);
    w.One("siterelay_sync_last_success", "gauge",
          "1 when the last finished pass got everything, 0 when it failed.",
          s.result.ok() ? 1 : 0);
    w.One("siterelay_sync_finished_time_seconds", "gauge",
          "When the last pass finished (Unix time; 0: none yet).",
          static_cast<uint64_t>(s.finished_at));
    w.One("siterelay_sync_generation", "gauge", "The newest manifest set published.",
          s.generation);
  }
  if (m.configs_gated) {
    w.One("siterelay_configs_held", "gauge",
          "New master configs held back from phones until every file they name is cached.",
          m.configs_held);
    w.One("siterelay_configs_held_files_waiting", "gauge",
          "Files the held configs name that are not cached yet.", m.configs_held_files_waiting);
    w.One("siterelay_configs_released_total", "counter",
          "New master configs published to phones after being held (complete, or released by "
          "hand).",
          m.configs_released);
  }
  w.One("siterelay_devices", "gauge", "Phones in the device inventory.", m.devices);
  w.One("siterelay_devices_firmware_mismatch", "gauge",
        "Phones whose firmware differs from the one their master config points at.",
        m.devices_firmware_mismatch);
  w.One("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
        m.resident_bytes);
  return w.Take();
}

uint64_t ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace siterelay::admin
