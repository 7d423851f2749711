#include "relay/admin/api.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>

#include "relay/base/fs.h"
#include "relay/base/strings.h"
#include "relay/base/url.h"

namespace siterelay::admin {
namespace {

// The admin password file's characters: unambiguous letters and digits.
constexpr char kAlphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
constexpr size_t kPasswordLength = 20;

}  // namespace

nlohmann::json StatusJson(const StatusInputs& in) {
  const Metrics& m = in.metrics;
  nlohmann::json listeners = nlohmann::json::array();
  for (const Listener& l : in.listeners) {
    listeners.push_back({{"protocol", l.protocol}, {"address", l.address}});
  }
  uint64_t served = 0, from_origin = 0;
  for (size_t c = 0; c < kContentClasses; ++c) {
    served += m.served_bytes[c];
    from_origin += m.origin_bytes[c];
  }
  nlohmann::json requests = nlohmann::json::object();
  for (const ProtocolMetrics& p : m.protocols) {
    nlohmann::json by = nlohmann::json::object();
    for (const auto& [code, n] : p.results) by[code] = n;
    requests[p.protocol] = {{"results", by}, {"open", p.open}};
  }
  nlohmann::json j = {
      {"version", m.version},
      {"started", m.started},
      {"uptime_seconds", in.now - m.started},
      {"listeners", listeners},
      {"requests", requests},
      {"cache",
       {{"objects", m.cache_objects},
        {"bytes", m.cache_bytes},
        {"entries", m.cache_entries},
        {"stale_serves", m.stale_serves}}},
      {"wan",
       {{"served_bytes", served},
        {"origin_bytes", from_origin},
        {"saved_bytes", served > from_origin ? served - from_origin : 0}}},
      {"origin",
       {{"configured", !in.origin_url.empty()},
        {"url", in.origin_url},
        {"requests", m.origin_requests},
        {"failures", m.origin_failures},
        {"in_flight", m.origin_in_flight}}},
      {"outbox",
       {{"pending", m.outbox_pending}, {"sent", m.outbox_sent}, {"failures", m.outbox_failures}}},
      {"resident_bytes", m.resident_bytes},
  };
  j["sync"] = SyncJson(m.sync_configured, m.sync);
  j["tls"] = {{"handshakes", m.tls_handshakes}, {"failures", m.tls_handshake_failures}};
  j["devices"] = {{"total", m.devices},
                  {"seen_24h", in.devices_seen_24h},
                  {"firmware_mismatch", m.devices_firmware_mismatch}};
  j["log_spool"] = {{"shipping", m.logs_enabled},
                    {"unbatched_bytes", m.log_unbatched_bytes},
                    {"pending_batches", m.log_pending_batches},
                    {"pending_bytes", m.log_pending_bytes},
                    {"dead_batches", m.log_dead_batches},
                    {"shipped_lines", m.log_shipped_lines},
                    {"dropped_lines", m.log_dropped_lines}};
  return j;
}

nlohmann::json SyncJson(bool configured, const sync::SyncProgress& s) {
  return {{"configured", configured},
          {"running", s.running},
          {"started_at", s.started_at},
          {"finished_at", s.finished_at},
          {"files_total", s.files_total},
          {"files_done", s.files_done},
          {"files_failed", s.files_failed},
          {"bytes_total", s.bytes_total},
          {"bytes_done", s.bytes_done},
          {"generation", s.generation},
          {"result", s.result.ok() ? "ok" : s.result.message()}};
}

nlohmann::json DevicesJson(const std::vector<DeviceView>& devices) {
  nlohmann::json out = nlohmann::json::array();
  for (const DeviceView& v : devices) {
    const files::Device& d = *v.device;
    out.push_back({{"mac", d.mac},
                   {"model", d.model},
                   {"firmware", d.firmware},
                   {"serial", d.serial},
                   {"ip", d.ip},
                   {"protocol", std::string(files::ProtocolName(d.protocol))},
                   {"first_seen", d.first_seen},
                   {"last_seen", d.last_seen},
                   {"last_boot", d.last_boot},
                   {"files_fetched", d.files_fetched},
                   {"files_failed", d.files_failed},
                   {"upload_bytes", d.upload_bytes},
                   {"part_number", d.part_number},
                   {"expected_firmware", v.expected_firmware},
                   {"firmware_mismatch", FirmwareMismatch(d.firmware, v.expected_firmware)}});
  }
  return out;
}

bool FirmwareMismatch(std::string_view running, std::string_view expected) {
  if (running.empty() || expected.empty()) return false;
  // "5.9.7" in a config path names every 5.9.7.x build: compare the parts the config gives.
  if (running.size() > expected.size() && running.starts_with(expected) &&
      running[expected.size()] == '.') {
    return false;
  }
  return running != expected;
}

nlohmann::json FilesJson(const std::vector<cache::Entry>& entries, int64_t now) {
  nlohmann::json out = nlohmann::json::array();
  for (const cache::Entry& e : entries) {
    out.push_back({{"path", e.path},
                   {"size", e.size},
                   {"sha256", e.sha256.Hex()},
                   {"state", std::string(e.State(now))},
                   {"source", std::string(cache::SourceName(e.source))},
                   {"modified", e.Modified()}});
  }
  return out;
}

nlohmann::json HistoryJson(const std::vector<cache::TrafficRecord>& buckets,
                           int64_t bucket_seconds, int64_t now) {
  nlohmann::json points = nlohmann::json::array();
  for (const cache::TrafficRecord& b : buckets) {
    points.push_back({{"t", b.t},
                      {"served_bytes", b.served_bytes},
                      {"origin_bytes", b.origin_bytes},
                      {"requests",
                       {{"http", b.requests[0]},
                        {"https", b.requests[1]},
                        {"tftp", b.requests[2]},
                        {"ftp", b.requests[3]}}}});
  }
  return {{"bucket_seconds", bucket_seconds}, {"now", now}, {"points", points}};
}

nlohmann::json ConfigsJson(bool enabled, const std::vector<files::HeldConfig>& held,
                           uint64_t released, double wan_rate) {
  nlohmann::json out = nlohmann::json::array();
  for (const files::HeldConfig& c : held) {
    nlohmann::json fs = nlohmann::json::array();
    for (const files::HeldFile& f : c.files) {
      fs.push_back({{"path", f.path},
                    {"state", std::string(files::HeldFileStateName(f.state))},
                    {"bytes_done", f.bytes_done},
                    {"bytes_total", f.bytes_total ? nlohmann::json(*f.bytes_total) : nullptr},
                    {"error", f.error}});
    }
    out.push_back({{"path", c.path},
                   {"sha256", c.sha256.Hex()},
                   {"size", c.size},
                   {"since", c.since},
                   {"reason", c.reason},
                   {"eta_seconds", c.eta_seconds ? nlohmann::json(*c.eta_seconds) : nullptr},
                   {"files", fs}});
  }
  // Whole bytes/s: the rate is a smoothed estimate, its fractions mean nothing.
  uint64_t rate =
      std::isfinite(wan_rate) && wan_rate > 0 ? static_cast<uint64_t>(std::llround(wan_rate)) : 0;
  return {{"enabled", enabled}, {"held", out}, {"released", released}, {"wan_rate", rate}};
}

uint64_t HeldFilesWaiting(const std::vector<files::HeldConfig>& held) {
  uint64_t n = 0;
  for (const files::HeldConfig& c : held) {
    for (const files::HeldFile& f : c.files) {
      if (f.state != files::HeldFile::State::kHere) ++n;
    }
  }
  return n;
}

Result<std::string> ParseReleaseRequest(std::string_view body) {
  // No exceptions: a malformed body is an answer (400), not an error path.
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::InvalidArgument("the body is not JSON");
  if (!doc.is_object()) return Status::InvalidArgument("the body is not a JSON object");
  auto path = doc.find("path");
  if (path == doc.end() || !path->is_string()) {
    return Status::InvalidArgument("the body has no \"path\" string");
  }
  const std::string& p = path->get_ref<const std::string&>();
  if (p.empty()) return Status::InvalidArgument("\"path\" is empty");
  return p;
}

std::string LastCertificate(std::string_view pem) {
  constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  size_t begin = pem.rfind(kBegin);
  if (begin == std::string_view::npos) return "";
  size_t end = pem.find(kEnd, begin);
  if (end == std::string_view::npos) return "";
  return std::string(pem.substr(begin, end + kEnd.size() - begin)) + "\n";
}

nlohmann::json ToolsJson(const ToolsInputs& in) {
  struct Scheme {
    const char* protocol;
    const char* scheme;
    uint16_t default_port;
    bool credentials;  // FTP logs in; HTTP(S) phones send Basic auth from the URL too
  };
  static constexpr Scheme kSchemes[] = {{"http", "http", 80, true},
                                        {"https", "https", 443, true},
                                        {"tftp", "tftp", 69, false},
                                        {"ftp", "ftp", 21, true},
                                        {"ftps", "ftps", 990, true}};
  nlohmann::json urls = nlohmann::json::array();
  for (const Scheme& sc : kSchemes) {
    for (const Listener& l : in.listeners) {
      if (l.protocol != sc.protocol) continue;
      size_t colon = l.address.rfind(':');
      if (colon == std::string::npos) continue;
      std::string port = l.address.substr(colon + 1);
      std::string bound = l.address.substr(0, colon);
      // A listener on one address is reached there (loopback too: phones cannot reach it, and
      // the page should not pretend they can); a wildcard one by the relay's address.
      std::string host = in.host;
      if (bound != "0.0.0.0" && bound != "[::]") {
        host = bound;
      } else if (host.find(':') != std::string::npos && host.front() != '[') {
        host = "[" + host + "]";
      }
      std::string url = std::string(sc.scheme) + "://";
      if (sc.credentials && !in.user.empty()) url += in.user + ":" + in.password + "@";
      url += host;
      if (port != std::to_string(sc.default_port)) url += ":" + port;
      url += "/";
      Result<std::string> dhcp = DhcpOptionValue(url);
      urls.push_back({{"protocol", sc.protocol},
                      {"url", url},
                      {"dhcp_option", dhcp.ok() ? *dhcp : std::string()}});
    }
  }
  std::string ca = LastCertificate(in.certificate_pem);
  std::string snippet;
  if (!ca.empty()) {
    std::string oneline = ca;
    while (!oneline.empty() && oneline.back() == '\n') oneline.pop_back();
    snippet = "device.sec.TLS.customCaCert1=\"" + oneline + "\"";
  }
  return {{"host", in.host}, {"urls", urls}, {"ca_certificate", ca}, {"ca_snippet", snippet}};
}

Result<std::string> AdminPassword(const std::string& configured, const std::string& data_dir,
                                  bool create) {
  if (!configured.empty()) return configured;
  std::string path = data_dir + "/admin-password";
  auto existing = ReadWholeFile(path, 4096);
  if (existing.ok()) {
    std::string p = *existing;
    while (!p.empty() && (p.back() == '\n' || p.back() == '\r' || p.back() == ' ')) p.pop_back();
    if (!p.empty()) return p;
  }
  if (!create) {
    return Status::NotFound(path + " does not exist: start the relay once, or set [admin] password");
  }
  unsigned char random[kPasswordLength];
  if (RAND_bytes(random, sizeof random) != 1) return Status::Internal("no random bytes");
  std::string password;
  for (unsigned char r : random) password += kAlphabet[r % (sizeof kAlphabet - 1)];
  FileSystem* fs = FileSystem::Default();
  SR_RETURN_IF_ERROR(fs->MakeDirs(data_dir));
  std::string tmp = path + ".tmp";
  SR_ASSIGN_OR_RETURN(int fd, fs->Open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  ScopedFd f(fs, fd);
  std::string line = password + "\n";
  SR_RETURN_IF_ERROR(
      fs->WriteAll(fd, {reinterpret_cast<const uint8_t*>(line.data()), line.size()}));
  SR_RETURN_IF_ERROR(fs->Fsync(fd));
  SR_RETURN_IF_ERROR(f.Close());
  SR_RETURN_IF_ERROR(fs->Rename(tmp, path));
  SR_RETURN_IF_ERROR(fs->FsyncDir(data_dir));
  return password;
}

}  // namespace siterelay::admin
