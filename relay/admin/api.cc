#include "relay/admin/api.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "relay/base/fs.h"
#include "relay/base/strings.h"

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
  const sync::SyncProgress& s = in.sync;
  j["sync"] = {{"configured", in.sync_configured},
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
  j["log_spool"] = {{"shipping", m.logs_enabled},
                    {"unbatched_bytes", m.log_unbatched_bytes},
                    {"pending_batches", m.log_pending_batches},
                    {"pending_bytes", m.log_pending_bytes},
                    {"dead_batches", m.log_dead_batches},
                    {"shipped_lines", m.log_shipped_lines},
                    {"dropped_lines", m.log_dropped_lines}};
  return j;
}

nlohmann::json DevicesJson(const std::map<std::string, files::Device>& devices) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [mac, d] : devices) {
    out.push_back({{"mac", d.mac},
                   {"model", d.model},
                   {"firmware", d.firmware},
                   {"ip", d.ip},
                   {"protocol", std::string(files::ProtocolName(d.protocol))},
                   {"first_seen", d.first_seen},
                   {"last_seen", d.last_seen}});
  }
  return out;
}

nlohmann::json FilesJson(const std::vector<cache::Entry>& entries, int64_t now) {
  nlohmann::json out = nlohmann::json::array();
  for (const cache::Entry& e : entries) {
    out.push_back({{"path", e.path},
                   {"size", e.size},
                   {"sha256", e.sha256.Hex()},
                   {"state", std::string(e.State(now))}});
  }
  return out;
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
