// `siterelay serve`: one libuv loop owning every listener (DESIGN.md "Threads").
//
// SIGTERM/SIGINT: stop accepting, let transfers finish for up to 10 s, cut the rest, exit 0.
// SIGHUP: re-read the config file and apply accounts, allow_from, certificates and listener
// lists without dropping anything in flight; a list that cannot be bound is left as it was.
// With NOTIFY_SOCKET set (systemd Type=notify), READY=1 is sent once every listener is up and
// STOPPING=1 when stopping; with WATCHDOG_USEC set too (WatchdogSec=), WATCHDOG=1 every half of
// it from the event loop, so a loop that stops turning gets the relay restarted.
#include "relay/serve.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <fcntl.h>

#include <csignal>
#include <ctime>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <vector>

#include "cache/cache.h"
#include "relay/admin/admin_handler.h"
#include "relay/base/config.h"
#include "relay/base/log.h"
#include "relay/base/memory.h"
#include "relay/base/uv.h"
#include "relay/files/config_gate.h"
#include "relay/files/file_service.h"
#include "relay/files/uploads.h"
#include "relay/http/file_handler.h"
#include "relay/http/server.h"
#include "relay/admin/api.h"
#include "relay/admin/firmware.h"
#include "relay/admin/history.h"
#include "relay/base/url.h"
#include "relay/ftp/server.h"
#include "sync/log_shipper.h"
#include "sync/outbox.h"
#include "sync/sender.h"
#include "relay/tftp/server.h"
#include "relay/tls/tls.h"
#include "sync/fetcher.h"
#include "sync/prefetch.h"
#include "siterelay_version.h"

namespace siterelay {
namespace {

constexpr uint64_t kStopGraceMs = 10'000;
constexpr uint64_t kAccessFlushMs = 60'000;
constexpr uint64_t kDevicesFlushMs = 10'000;
constexpr uint64_t kHistorySampleMs = 60'000;
constexpr uint64_t kWindowCheckMs = 60'000;
constexpr uint64_t kSyncRetryMs = 300'000;

// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET.
void Notify(const char* state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  size_t len = std::strlen(path);
  if (len >= sizeof sa.sun_path) return;
  std::memcpy(sa.sun_path, path, len);
  if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';  // abstract namespace
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  (void)::sendto(fd, state, std::strlen(state), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa),
                 static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
  ::close(fd);
}

// A certificate is needed for HTTPS, for implicit FTPS, and for AUTH TLS on plain FTP.
bool WantsTls(const Config& c) {
  return !c.https.listen.empty() || !c.ftp.listen.empty() || !c.ftp.implicit_tls_listen.empty();
}

bool SameListeners(const Config& a, const Config& b) {
  return a.http.listen == b.http.listen && a.admin.listen == b.admin.listen &&
         a.https.listen == b.https.listen && a.tftp.listen == b.tftp.listen &&
         a.ftp.listen == b.ftp.listen && a.ftp.implicit_tls_listen == b.ftp.implicit_tls_listen;
}

bool SameOrigin(const OriginConfig& a, const OriginConfig& b) {
  auto same_routes = [&] {
    if (a.routes.size() != b.routes.size()) return false;
    for (size_t i = 0; i < a.routes.size(); ++i) {
      const OriginRoute &x = a.routes[i], &y = b.routes[i];
      if (x.match != y.match || x.url != y.url || x.user != y.user || x.password != y.password) {
        return false;
      }
    }
    return true;
  };
  return a.url == b.url && a.user == b.user && a.password == b.password &&
         a.ca_file == b.ca_file && a.fresh_for == b.fresh_for &&
         a.negative_for == b.negative_for && same_routes();
}

class Relay {
 public:
  Relay(std::string config_path, Config config)
      : config_path_(std::move(config_path)),
        config_(std::move(config)),
        admin_handler_(AdminSources()),
        started_(static_cast<int64_t>(std::time(nullptr))) {}

  int Run() {
    std::signal(SIGPIPE, SIG_IGN);  // a peer that hangs up is an EPIPE, not a dead relay
    cache::CacheOptions o;
    o.data_dir = config_.data_dir;
    o.max_bytes = config_.cache_max_bytes;
    auto cache = cache::Cache::Open(o);
    if (!cache.ok()) {
      std::cerr << "siterelay: " << cache.status().message() << "\n";
      return 1;
    }
    cache_ = std::move(cache).value();
    if (!config_.origin.url.empty()) {
      fetcher_ = std::make_unique<sync::Fetcher>(loop_.get(), config_.origin, cache_.get(),
                                                 Clock::System());
    }
    files_ = std::make_unique<files::FileService>(config_, cache_.get(), Clock::System(),
                                                  fetcher_.get());
    firmware_ = std::make_unique<admin::FirmwareExpectations>(files_.get());
    if (fetcher_ != nullptr && config_.origin.hold_configs) {
      gate_ = std::make_unique<files::ConfigGate>(loop_.get(), files_.get(), cache_.get(),
                                                  fetcher_.get(), Clock::System(),
                                                  config_.origin.fresh_for);
      gate_->SetWindow([this] { return InSyncWindow(); });
      fetcher_->SetGate(gate_.get());
    }
    if (fetcher_ != nullptr) {
      prefetcher_ = std::make_unique<sync::Prefetcher>(loop_.get(), config_.origin, cache_.get(),
                                                       fetcher_.get(), Clock::System());
      if (!prefetcher_->configured()) prefetcher_.reset();
    }
    uploads_ = std::make_unique<files::Uploads>(loop_.get(), cache_.get(), Clock::System());
    // What goes upstream: settings files back to the origin (and, later, log batches).
    sender_ = std::make_unique<sync::Sender>(
        loop_.get(), fetcher_ != nullptr ? &fetcher_->limiter() : nullptr);
    if (fetcher_ != nullptr) {
      outbox_ = std::make_unique<sync::Outbox>(loop_.get(), config_.origin, cache_.get(),
                                               sender_.get());
    }
    if (!config_.logs.upstream.empty()) {
      logs_ = std::make_unique<sync::LogShipper>(loop_.get(), config_, cache_.get(),
                                                 sender_.get(), Clock::System());
    }
    uploads_->OnFiled([this](const std::string& path, const files::UploadName& name,
                             uint64_t new_bytes) {
      files_->CountUploaded(name.mac, new_bytes);
      if (name.kind == files::UploadName::kSettings && outbox_ != nullptr) outbox_->Poke(path);
      if (name.kind == files::UploadName::kLog && logs_ != nullptr) {
        std::string spool = files::SpoolPath(config_.data_dir, name);
        logs_->Appended(spool.substr(spool.rfind('/') + 1), new_bytes);
      }
    });
    file_handler_ = std::make_unique<http::FileHandler>(files_.get(), uploads_.get(),
                                                        config_.upload_max_bytes);
    phones_ = std::make_unique<http::HttpServer>(loop_.get(), files::Protocol::kHttp,
                                                 file_handler_.get(), http::ServerLimits{},
                                                 files_.get());
    admin_server_ = std::make_unique<http::HttpServer>(loop_.get(), files::Protocol::kHttp,
                                                       &admin_handler_, http::ServerLimits{},
                                                       nullptr);
    https_ = std::make_unique<http::HttpServer>(loop_.get(), files::Protocol::kHttps,
                                                file_handler_.get(), http::ServerLimits{},
                                                files_.get());
    tftp::TftpLimits tftp_limits;
    tftp_limits.allow_uploads = config_.tftp.allow_uploads;
    tftp_limits.max_upload_bytes = config_.upload_max_bytes;
    tftp_ = std::make_unique<tftp::TftpServer>(loop_.get(), files_.get(), uploads_.get(),
                                               tftp_limits);
    ftp::FtpLimits ftp_limits;
    ftp_limits.passive_port_min = config_.ftp.passive_port_min;
    ftp_limits.passive_port_max = config_.ftp.passive_port_max;
    ftp_limits.max_upload_bytes = config_.upload_max_bytes;
    ftp_ = std::make_unique<ftp::FtpServer>(loop_.get(), files_.get(), uploads_.get(),
                                            ftp_limits);
    Status s;
    if (WantsTls(config_)) {
      auto tls = tls::TlsContext::Create(config_.tls, config_.data_dir);
      if (tls.ok()) {
        tls_ = *tls;
        https_->SetTls(tls_);
        ftp_->SetTls(tls_);
      } else {
        s = tls.status();
      }
    }
    if (s.ok() && !config_.admin.listen.empty()) {
      // The API's password: [admin] password, or the one made at the first start.
      auto password = admin::AdminPassword(config_.admin.password, config_.data_dir, true);
      if (password.ok()) {
        admin_handler_.SetCredentials(config_.admin.user, *password);
      } else {
        s = password.status();
      }
    }
    if (s.ok()) s = phones_->Listen(config_.http.listen);
    if (s.ok()) s = https_->Listen(config_.https.listen);
    if (s.ok()) s = admin_server_->Listen(config_.admin.listen);
    if (s.ok()) s = tftp_->Listen(config_.tftp.listen);
    if (s.ok()) s = ftp_->Listen(config_.ftp.listen, config_.ftp.implicit_tls_listen);
    if (!s.ok()) {
      std::cerr << "siterelay: " << s.message() << "\n";
      // Close what did bind, and let the loop run the close callbacks before the servers go.
      for (auto* server : Servers()) server->StopAccepting();
      tftp_->StopAccepting();
      ftp_->StopAccepting();
      uv_run(loop_.get(), UV_RUN_DEFAULT);
      return 1;
    }
    RestoreHistory();
    StartSignals();
    WriteAdminUrl();
    if (outbox_ != nullptr) outbox_->Start();
    if (logs_ != nullptr) {
      Status ls = logs_->Start();
      if (!ls.ok()) {
        SR_LOG(kError) << "logs: not shipping: " << ls.ToString();
        logs_.reset();
      }
    }
    // 0: no background passes.
    if ((prefetcher_ != nullptr || gate_ != nullptr) && config_.origin.sync_interval > 0) {
      sync_timer_ = std::make_unique<Timer>(loop_.get());
      ScheduleSync(0);
    }
    Announce();
    Notify("READY=1");
    StartWatchdog();
    int rc = uv_run(loop_.get(), UV_RUN_DEFAULT);
    (void)rc;
    Status f = cache_->FlushAccess();
    if (!f.ok()) SR_LOG(kWarning) << "cache: " << f.ToString();
    (void)FileSystem::Default()->Unlink(config_.data_dir + "/admin-url");
    SR_LOG(kInfo) << "siterelay stopped";
    FlushLog();
    return 0;
  }

 private:
  // data_dir/admin-url: where the admin API is, for `siterelay status` when [admin] listen asked
  // the kernel for a port (0). Removed at stop.
  void WriteAdminUrl() {
    std::string path = config_.data_dir + "/admin-url";
    if (admin_server_->bound().empty()) return;
    const ListenAddress& a = admin_server_->bound().front();
    std::string host = a.host == "0.0.0.0" ? "127.0.0.1" : a.host == "::" ? "::1" : a.host;
    if (a.ipv6) host = "[" + host + "]";
    std::string url = "http://" + host + ":" + std::to_string(a.port) + "/\n";
    std::string tmp = path + ".tmp";
    FileSystem* fs = FileSystem::Default();
    auto fd = fs->Open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (!fd.ok()) return;
    ScopedFd f(fs, *fd);
    if (fs->WriteAll(*fd, {reinterpret_cast<const uint8_t*>(url.data()), url.size()}).ok() &&
        f.Close().ok()) {
      (void)fs->Rename(tmp, path);
    }
  }

  void RestoreHistory() {
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    std::vector<cache::TrafficRecord> buckets;
    Status s = cache_->LoadTraffic(admin::TrafficHistory::KeepSince(now), &buckets);
    if (!s.ok()) SR_LOG(kWarning) << "history: " << s.ToString();
    history_.Restore(std::move(buckets));
  }

  admin::AdminSources AdminSources() {
    admin::AdminSources a;
    a.metrics = [this] { return Snapshot(); };
    a.status = [this] { return StatusDocument(); };
    a.devices = [this] { return admin::DevicesJson(DeviceViews()); };
    a.files = [this] {
      return admin::FilesJson(cache_->List(), static_cast<int64_t>(std::time(nullptr)));
    };
    a.history = [this] {
      int64_t now = static_cast<int64_t>(std::time(nullptr));
      history_.Sample(now, Traffic());  // the current bucket as of now
      return admin::HistoryJson(history_.Buckets(now), admin::TrafficHistory::kBucketSeconds,
                                now);
    };
    a.tools = [this](std::string_view host) { return ToolsDocument(host); };
    a.sync = [this] {
      return admin::SyncJson(prefetcher_ != nullptr,
                             prefetcher_ != nullptr ? prefetcher_->progress() : sync::SyncProgress());
    };
    a.start_sync = [this]() -> Result<nlohmann::json> {
      if (prefetcher_ == nullptr) {
        return Status::FailedPrecondition(
            fetcher_ == nullptr ? "no [origin] url is configured"
                                : "no [origin] manifest or prefetch list is configured");
      }
      if (!prefetcher_->progress().running) {
        SR_LOG(kInfo) << "sync: pass started from the admin API";
        prefetcher_->Run([](Status s) {
          if (s.ok()) {
            SR_LOG(kInfo) << "sync: the pass from the admin API is complete";
          } else {
            SR_LOG(kWarning) << "sync: the pass from the admin API failed: " << s.ToString();
          }
        });
      }
      return admin::SyncJson(true, prefetcher_->progress());
    };
    a.configs = [this] {
      if (gate_ == nullptr) return admin::ConfigsJson(false, {}, 0, 0);
      return admin::ConfigsJson(true, gate_->held(), gate_->released(), gate_->wan_rate());
    };
    a.release_config = [this](std::string_view path) -> Result<nlohmann::json> {
      if (gate_ == nullptr) {
        return Status::FailedPrecondition(fetcher_ == nullptr
                                              ? "no [origin] url is configured"
                                              : "[origin] hold_configs is off: nothing is held");
      }
      SR_RETURN_IF_ERROR(gate_->Release(path));
      SR_LOG(kInfo) << "config gate: " << path << " released from the admin API";
      // Its publication is a catalog write under way; once it lands the gate forgets the config
      // (published, or dropped when its object went meanwhile), so the list the operator gets
      // back leaves it out already rather than show it held a moment longer.
      std::vector<files::HeldConfig> held = gate_->held();
      std::erase_if(held, [path](const files::HeldConfig& c) { return c.path == path; });
      return admin::ConfigsJson(true, held, gate_->released(), gate_->wan_rate());
    };
    return a;
  }

  // The devices with the firmware their master config points at.
  std::vector<admin::DeviceView> DeviceViews() const {
    std::vector<admin::DeviceView> out;
    for (const auto& [mac, d] : files_->devices()) {
      out.push_back({&d, firmware_->For(d)});
    }
    return out;
  }

  // The traffic history's counters, totals since start.
  admin::TrafficTotals Traffic() const {
    admin::TrafficTotals t;
    for (size_t c = 0; c < kContentClasses; ++c) {
      t.served_bytes += files_->served_bytes(static_cast<ContentClass>(c));
      if (fetcher_ != nullptr) t.origin_bytes += fetcher_->stats().bytes_by_class[c];
    }
    auto sum = [](const auto& by_result) {
      uint64_t n = 0;
      for (const auto& [result, count] : by_result) n += count;
      return n;
    };
    t.requests[0] = sum(phones_->responses());
    t.requests[1] = sum(https_->responses());
    t.requests[2] = sum(tftp_->outcomes());
    t.requests[3] = sum(ftp_->replies());
    return t;
  }

  void SampleHistory() {
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    cache::TrafficRecord bucket = history_.Sample(now, Traffic());
    cache_->WriteAsync(
        loop_.get(),
        [bucket, keep = admin::TrafficHistory::KeepSince(now)](cache::Catalog& catalog) {
          return catalog.SaveTraffic(bucket, keep);
        },
        [](Status s) {
          if (!s.ok()) SR_LOG(kWarning) << "history: " << s.ToString();
        });
  }

  // Where phones are served: protocol and bound address of every listener.
  std::vector<admin::Listener> PhoneListeners() const {
    std::vector<admin::Listener> out;
    auto add = [&](const char* protocol, const std::vector<ListenAddress>& list) {
      for (const ListenAddress& a : list) out.push_back({protocol, a.ToString()});
    };
    add("http", phones_->bound());
    add("https", https_->bound());
    add("tftp", tftp_->bound());
    add("ftp", ftp_->bound());
    add("ftps", ftp_->bound_implicit());
    return out;
  }

  nlohmann::json ToolsDocument(std::string_view host_header) const {
    admin::ToolsInputs in;
    // The host the console was reached by, without its port, unless it is this machine's
    // loopback: phones need an address on the LAN.
    std::string host(host_header);
    if (!host.empty() && host.front() == '[') {
      host = host.substr(1, host.find(']') == std::string::npos ? 0 : host.find(']') - 1);
    } else if (std::count(host.begin(), host.end(), ':') == 1) {
      host = host.substr(0, host.find(':'));
    }
    if (host.empty() || host == "localhost" || host.starts_with("127.") || host == "::1") {
      std::vector<std::string> mine = LocalAddresses();
      if (!mine.empty()) host = mine.front();
      if (host.empty()) host = "127.0.0.1";
    }
    in.host = host;
    in.listeners = PhoneListeners();
    if (!config_.accounts.empty()) {
      in.user = config_.accounts.front().user;
      in.password = config_.accounts.front().password;
    }
    if (tls_ != nullptr) {
      auto pem = ReadWholeFile(tls_->cert_path(), 1 << 20);
      if (pem.ok()) in.certificate_pem = *pem;
    }
    return admin::ToolsJson(in);
  }

  nlohmann::json StatusDocument() const {
    admin::StatusInputs in;
    in.metrics = Snapshot();
    in.now = static_cast<int64_t>(std::time(nullptr));
    in.listeners = PhoneListeners();
    for (const ListenAddress& a : admin_server_->bound()) {
      in.listeners.push_back({"admin", a.ToString()});
    }
    in.origin_url = MaskSecrets(config_.origin.url);
    for (const auto& [mac, d] : files_->devices()) {
      if (d.last_seen >= in.now - 86400) ++in.devices_seen_24h;
    }
    return admin::StatusJson(in);
  }

  // The counters /metrics shows, read on the loop thread.
  admin::Metrics Snapshot() const {
    admin::Metrics m;
    m.version = SITERELAY_VERSION;
    m.started = started_;
    auto add = [&](const char* name, const std::map<int, uint64_t>& by_code, size_t open) {
      admin::ProtocolMetrics p;
      p.protocol = name;
      for (const auto& [code, n] : by_code) p.results[std::to_string(code)] = n;
      p.open = open;
      m.protocols.push_back(std::move(p));
    };
    add("http", phones_->responses(), phones_->connections());
    add("https", https_->responses(), https_->connections());
    admin::ProtocolMetrics tftp;
    tftp.protocol = "tftp";
    tftp.results = tftp_->outcomes();
    tftp.open = tftp_->transfers();
    m.protocols.push_back(std::move(tftp));
    add("ftp", ftp_->replies(), ftp_->sessions());
    m.cache_objects = cache_->object_count();
    m.cache_bytes = cache_->object_bytes();
    m.cache_entries = cache_->entry_count();
    m.stale_serves = files_->stale_serves();
    for (size_t c = 0; c < kContentClasses; ++c) {
      m.served_bytes[c] = files_->served_bytes(static_cast<ContentClass>(c));
    }
    if (fetcher_ != nullptr) {
      const sync::FetchStats& f = fetcher_->stats();
      for (size_t c = 0; c < kContentClasses; ++c) m.origin_bytes[c] = f.bytes_by_class[c];
      m.origin_requests = f.transfers;
      m.origin_failures = f.failures;
      m.origin_revalidations = f.revalidations;
      m.origin_not_modified = f.not_modified;
      m.origin_resumes = f.resumes;
      m.origin_in_flight = fetcher_->in_flight();
    }
    if (sender_ != nullptr) m.upstream_sent_bytes = sender_->bytes_sent();
    if (outbox_ != nullptr) {
      m.outbox_pending = outbox_->pending();
      m.outbox_sent = outbox_->stats().sent;
      m.outbox_failures = outbox_->stats().failures;
    }
    if (logs_ != nullptr) {
      sync::LogShipperStats l = logs_->stats();
      m.logs_enabled = true;
      m.log_unbatched_bytes = l.unbatched_bytes;
      m.log_pending_batches = l.pending_batches;
      m.log_pending_bytes = l.pending_bytes;
      m.log_dead_batches = l.dead_batches;
      m.log_shipped_lines = l.shipped_lines;
      m.log_dropped_lines = l.dropped_lines;
    }
    tls::TlsCounts tls = tls::CountsNow();
    m.tls_handshakes = tls.handshakes;
    m.tls_handshake_failures = tls.failures;
    m.sync_configured = prefetcher_ != nullptr;
    if (prefetcher_ != nullptr) m.sync = prefetcher_->progress();
    if (gate_ != nullptr) {
      std::vector<files::HeldConfig> held = gate_->held();
      m.configs_gated = true;
      m.configs_held = held.size();
      m.configs_held_files_waiting = admin::HeldFilesWaiting(held);
      m.configs_released = gate_->released();
    }
    m.devices = files_->devices().size();
    for (const admin::DeviceView& v : DeviceViews()) {
      if (admin::FirmwareMismatch(v.device->firmware, v.expected_firmware)) {
        ++m.devices_firmware_mismatch;
      }
    }
    m.resident_bytes = admin::ResidentBytes();
    return m;
  }

  void Announce() {
    SR_LOG(kInfo) << "siterelay " << SITERELAY_VERSION << " serving " << cache_->List().size()
                  << " cached file(s) from " << config_.data_dir << " (config: " << config_.source
                  << ")";
    // A URL someone on this machine can paste: a wildcard address becomes loopback.
    auto url = [](const char* scheme, const ListenAddress& a) {
      std::string host = a.host == "0.0.0.0" ? "127.0.0.1" : a.host == "::" ? "::1" : a.host;
      if (a.ipv6) host = "[" + host + "]";
      return std::string(scheme) + "://" + host + ":" + std::to_string(a.port) + "/";
    };
    for (const ListenAddress& a : phones_->bound()) {
      SR_LOG(kInfo) << "phones: " << url("http", a) << "  (try: curl " << url("http", a)
                    << "000000000000.cfg)";
    }
    for (const ListenAddress& a : https_->bound()) {
      SR_LOG(kInfo) << "phones: " << url("https", a) << "  (certificate " << tls_->cert_path()
                    << ", SHA-256 " << tls_->fingerprint() << ")";
    }
    for (const ListenAddress& a : tftp_->bound()) {
      SR_LOG(kInfo) << "phones: " << url("tftp", a) << "  (try: curl " << url("tftp", a)
                    << "000000000000.cfg)";
    }
    for (const ListenAddress& a : ftp_->bound()) {
      SR_LOG(kInfo) << "phones: " << url("ftp", a) << "  (try: curl " << url("ftp", a)
                    << "000000000000.cfg" << (tls_ != nullptr ? "; AUTH TLS offered)" : ")");
    }
    for (const ListenAddress& a : ftp_->bound_implicit()) {
      SR_LOG(kInfo) << "phones: " << url("ftps", a) << "  (implicit TLS; try: curl -k "
                    << url("ftps", a) << "000000000000.cfg)";
    }
    for (const ListenAddress& a : admin_server_->bound()) {
      SR_LOG(kInfo) << "admin: " << url("http", a) << "healthz  (API user '" << config_.admin.user
                    << "', password "
                    << (config_.admin.password.empty()
                            ? "in " + config_.data_dir + "/admin-password"
                            : std::string("from the config"))
                    << ")";
    }
  }

  // systemd's watchdog (sd_watchdog_enabled(3)): WATCHDOG_USEC, for this process when
  // WATCHDOG_PID names it or is unset.
  void StartWatchdog() {
    const char* usec = std::getenv("WATCHDOG_USEC");
    if (usec == nullptr) return;
    const char* pid = std::getenv("WATCHDOG_PID");
    if (pid != nullptr && std::strtoll(pid, nullptr, 10) != static_cast<long long>(::getpid())) {
      return;
    }
    uint64_t every_ms = std::strtoull(usec, nullptr, 10) / 2000;
    if (every_ms == 0) return;
    uv_timer_init(loop_.get(), &watchdog_timer_);
    watchdog_started_ = true;
    uv_timer_start(
        &watchdog_timer_, [](uv_timer_t*) noexcept { Notify("WATCHDOG=1"); }, every_ms, every_ms);
    uv_unref(reinterpret_cast<uv_handle_t*>(&watchdog_timer_));
    SR_LOG(kInfo) << "systemd watchdog: keep-alive every " << every_ms << " ms";
  }

  void StartSignals() {
    for (uv_signal_t* sig : {&sigterm_, &sigint_, &sighup_}) {
      uv_signal_init(loop_.get(), sig);
      sig->data = this;
    }
    auto stop = [](uv_signal_t* h, int signum) noexcept {
      static_cast<Relay*>(h->data)->Stop(signum);
    };
    uv_signal_start(&sigterm_, stop, SIGTERM);
    uv_signal_start(&sigint_, stop, SIGINT);
    uv_signal_start(
        &sighup_, [](uv_signal_t* h, int) noexcept { static_cast<Relay*>(h->data)->Reload(); },
        SIGHUP);
    uv_timer_init(loop_.get(), &flush_timer_);
    flush_timer_.data = this;
    uv_timer_start(
        &flush_timer_,
        [](uv_timer_t* t) noexcept {
          Status s = static_cast<Relay*>(t->data)->cache_->FlushAccess();
          if (!s.ok()) SR_LOG(kWarning) << "cache: " << s.ToString();
        },
        kAccessFlushMs, kAccessFlushMs);
    uv_unref(reinterpret_cast<uv_handle_t*>(&flush_timer_));
    uv_timer_init(loop_.get(), &log_timer_);  // the access lines gathered (relay/base/log.h)
    uv_timer_start(&log_timer_, [](uv_timer_t*) noexcept { FlushLog(); }, kAccessLogFlushMs,
                   kAccessLogFlushMs);
    uv_unref(reinterpret_cast<uv_handle_t*>(&log_timer_));
    uv_timer_init(loop_.get(), &devices_timer_);
    devices_timer_.data = this;
    uv_timer_start(
        &devices_timer_,
        [](uv_timer_t* t) noexcept {
          auto* r = static_cast<Relay*>(t->data);
          r->files_->FlushDevices(r->loop_.get());
        },
        kDevicesFlushMs, kDevicesFlushMs);
    uv_unref(reinterpret_cast<uv_handle_t*>(&devices_timer_));
    uv_timer_init(loop_.get(), &history_timer_);
    history_timer_.data = this;
    uv_timer_start(
        &history_timer_,
        [](uv_timer_t* t) noexcept { static_cast<Relay*>(t->data)->SampleHistory(); },
        kHistorySampleMs, kHistorySampleMs);
    uv_unref(reinterpret_cast<uv_handle_t*>(&history_timer_));
  }

  // Background sync passes (CONTRACT.md sync_interval, window): at start, then every
  // sync_interval; only inside the window, which is looked at again every minute while closed.
  // A pass that fails is tried again after at most five minutes. Each pass also fetches what the
  // site's master configs name for its phones (ConfigGate::PrefetchForSite).
  void ScheduleSync(uint64_t ms) {
    sync_timer_->Start(ms, [this] {
      if (!InSyncWindow()) {
        ScheduleSync(kWindowCheckMs);
        return;
      }
      if (gate_ != nullptr) gate_->PrefetchForSite();
      if (prefetcher_ == nullptr) {
        ScheduleSync(static_cast<uint64_t>(config_.origin.sync_interval) * 1000);
        return;
      }
      prefetcher_->Run([this](Status s) {
        if (sync_timer_ == nullptr) return;  // stopping
        uint64_t interval = static_cast<uint64_t>(config_.origin.sync_interval) * 1000;
        ScheduleSync(s.ok() ? interval : std::min(interval, kSyncRetryMs));
      });
    });
  }

  bool InSyncWindow() const {
    if (config_.origin.window.any) return true;
    std::time_t t = std::time(nullptr);
    std::tm local{};
    localtime_r(&t, &local);
    return config_.origin.window.Contains(local.tm_hour * 60 + local.tm_min);
  }

  void Reload() {
    auto fresh = LoadConfig(config_path_);
    if (!fresh.ok()) {
      SR_LOG(kError) << "reload refused, keeping the running config: " << fresh.status().message();
      return;
    }
    files_->Reload(*fresh);
    if (!SameOrigin(config_.origin, fresh->origin)) {
      SR_LOG(kWarning) << "reload: [origin] changes take effect at the next start";
    }
    if (tls_ != nullptr || WantsTls(*fresh)) {
      // New certificates apply to new connections; transfers in flight keep theirs.
      auto tls = tls::TlsContext::Create(fresh->tls, config_.data_dir);
      if (tls.ok()) {
        tls_ = *tls;
        https_->SetTls(tls_);
        ftp_->SetTls(tls_);
        SR_LOG(kInfo) << "reload: certificate " << tls_->cert_path() << ", SHA-256 "
                      << tls_->fingerprint();
      } else {
        SR_LOG(kError) << "reload: keeping the old certificate: " << tls.status().message();
      }
    }
    if (!SameListeners(config_, *fresh)) ReloadListeners(*fresh);
    SR_LOG(kInfo) << "reloaded " << fresh->source << ": " << fresh->accounts.size()
                  << " account(s)";
  }

  // New listeners are bound, dropped ones closed; transfers on them carry on. A list that cannot
  // be bound (port taken) is left as it was, with an error line.
  void ReloadListeners(const Config& fresh) {
    struct Change {
      http::HttpServer* server;
      const std::vector<ListenAddress>* now;
      std::vector<ListenAddress>* running;
      const char* name;
    };
    for (const Change& c : {Change{phones_.get(), &fresh.http.listen, &config_.http.listen, "http"},
                            Change{https_.get(), &fresh.https.listen, &config_.https.listen,
                                   "https"},
                            Change{admin_server_.get(), &fresh.admin.listen,
                                   &config_.admin.listen, "admin"}}) {
      if (*c.now == *c.running) continue;
      if (c.server == https_.get() && !c.now->empty() && tls_ == nullptr) {
        SR_LOG(kError) << "reload: https listeners need a certificate; not changed";
        continue;
      }
      Status s = c.server->Listen(*c.now);
      if (!s.ok()) {
        SR_LOG(kError) << "reload: " << c.name << " listeners not changed: " << s.message();
        continue;
      }
      *c.running = *c.now;
      std::string list;
      for (const ListenAddress& a : c.server->bound()) list += " " + a.ToString();
      SR_LOG(kInfo) << "reload: " << c.name << " listening on" << (list.empty() ? " nothing" : list);
    }
    if (fresh.tftp.listen != config_.tftp.listen) {
      Status s = tftp_->Listen(fresh.tftp.listen);
      if (s.ok()) {
        config_.tftp.listen = fresh.tftp.listen;
        SR_LOG(kInfo) << "reload: tftp listening on " << fresh.tftp.listen.size()
                      << " address(es)";
      } else {
        SR_LOG(kError) << "reload: tftp listeners not changed: " << s.message();
      }
    }
    if (fresh.ftp.listen != config_.ftp.listen ||
        fresh.ftp.implicit_tls_listen != config_.ftp.implicit_tls_listen) {
      Status s = ftp_->Listen(fresh.ftp.listen, fresh.ftp.implicit_tls_listen);
      if (s.ok()) {
        config_.ftp.listen = fresh.ftp.listen;
        config_.ftp.implicit_tls_listen = fresh.ftp.implicit_tls_listen;
        SR_LOG(kInfo) << "reload: ftp listening on " << ftp_->bound().size() << " address(es), "
                      << "implicit FTPS on " << ftp_->bound_implicit().size();
      } else {
        SR_LOG(kError) << "reload: ftp listeners not changed: " << s.message();
      }
    }
  }

  void Stop(int signum) {
    if (stopping_) {
      SR_LOG(kWarning) << "second stop signal: closing every connection now";
      Finish();
      return;
    }
    stopping_ = true;
    Notify("STOPPING=1");
    SR_LOG(kInfo) << "signal " << signum << ": no new connections; "
                  << phones_->connections() + https_->connections() + tftp_->transfers() +
                         ftp_->sessions()
                  << " open, waiting up to " << kStopGraceMs / 1000 << " s";
    pending_drains_ = 5;
    auto drained = [this] {
      if (--pending_drains_ == 0) Finish();
    };
    for (auto* server : Servers()) server->OnDrained(drained);
    tftp_->OnDrained(drained);
    ftp_->OnDrained(drained);
    for (auto* server : Servers()) server->StopAccepting();
    tftp_->StopAccepting();
    ftp_->StopAccepting();
    if (pending_drains_ == 0) return;  // Finish already ran
    uv_timer_init(loop_.get(), &grace_timer_);
    grace_timer_.data = this;
    grace_started_ = true;
    uv_timer_start(
        &grace_timer_,
        [](uv_timer_t* t) noexcept {
          auto* r = static_cast<Relay*>(t->data);
          SR_LOG(kWarning) << "stop: cutting "
                           << r->phones_->connections() + r->https_->connections() +
                                  r->tftp_->transfers() + r->ftp_->sessions()
                           << " transfer(s) still running after the grace period";
          r->Finish();
        },
        kStopGraceMs, 0);
  }

  std::vector<http::HttpServer*> Servers() {
    return {phones_.get(), https_.get(), admin_server_.get()};
  }

  // Closes what keeps the loop alive so that uv_run returns.
  void Finish() {
    if (finished_) return;
    finished_ = true;
    SampleHistory();  // while the fetcher's counters are still there; the write keeps the loop up
    for (auto* server : Servers()) server->CloseAll();
    tftp_->CloseAll();
    ftp_->CloseAll();
    // Transfers still running are abandoned (their temp files go at the next start); the
    // fetcher's sockets and timers must close for the loop to end. Nothing asks it after this.
    files_->SetFetcher(nullptr);
    if (fetcher_ != nullptr) fetcher_->SetGate(nullptr);
    gate_.reset();  // what it held comes back at the next revalidation
    sync_timer_.reset();
    prefetcher_.reset();
    outbox_.reset();  // what it had not sent is still in the catalog for the next start
    logs_.reset();    // so is every batch, and the spool
    sender_.reset();
    fetcher_.reset();
    files_->FlushDevices(loop_.get());  // the queued write keeps the loop running until done
    uv_close(reinterpret_cast<uv_handle_t*>(&devices_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&history_timer_), nullptr);
    for (uv_signal_t* sig : {&sigterm_, &sigint_, &sighup_}) {
      uv_close(reinterpret_cast<uv_handle_t*>(sig), nullptr);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&flush_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&log_timer_), nullptr);
    if (grace_started_) uv_close(reinterpret_cast<uv_handle_t*>(&grace_timer_), nullptr);
    if (watchdog_started_) uv_close(reinterpret_cast<uv_handle_t*>(&watchdog_timer_), nullptr);
  }

  std::string config_path_;
  Config config_;
  Loop loop_;
  std::unique_ptr<cache::Cache> cache_;
  std::unique_ptr<sync::Fetcher> fetcher_;  // null without an origin
  std::unique_ptr<files::FileService> files_;
  std::unique_ptr<admin::FirmwareExpectations> firmware_;
  std::unique_ptr<files::ConfigGate> gate_;  // null without an origin or with hold_configs off
  std::unique_ptr<sync::Prefetcher> prefetcher_;  // null without a manifest or prefetch list
  std::unique_ptr<Timer> sync_timer_;
  std::unique_ptr<files::Uploads> uploads_;
  std::unique_ptr<sync::Sender> sender_;
  std::unique_ptr<sync::Outbox> outbox_;  // null without an origin
  std::unique_ptr<sync::LogShipper> logs_;  // null without logs.upstream
  std::unique_ptr<http::FileHandler> file_handler_;
  admin::AdminHandler admin_handler_;
  int64_t started_;
  std::shared_ptr<tls::TlsContext> tls_;  // shared: https_ holds it for new connections too
  std::unique_ptr<http::HttpServer> phones_;
  std::unique_ptr<http::HttpServer> https_;
  std::unique_ptr<http::HttpServer> admin_server_;
  std::unique_ptr<tftp::TftpServer> tftp_;
  std::unique_ptr<ftp::FtpServer> ftp_;
  uv_signal_t sigterm_{}, sigint_{}, sighup_{};
  uv_timer_t flush_timer_{}, grace_timer_{}, devices_timer_{}, history_timer_{}, watchdog_timer_{};
  uv_timer_t log_timer_{};
  bool watchdog_started_ = false;
  admin::TrafficHistory history_;
  bool grace_started_ = false;
  bool stopping_ = false;
  bool finished_ = false;
  int pending_drains_ = 0;
};

}  // namespace

int Serve(const std::string& config_path) {
  TuneAllocator();
  auto config = LoadConfig(config_path);
  if (!config.ok()) {
    std::cerr << "siterelay: " << config.status().message() << "\n";
    return 2;
  }
  Relay relay(config_path, std::move(config).value());
  return relay.Run();
}

}  // namespace siterelay
