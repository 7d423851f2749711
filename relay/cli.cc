#include "relay/cli.h"

#include <unistd.h>

#include <chrono>
#include <iterator>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cache.h"
#include "cache/importer.h"
#include "relay/admin/api.h"
#include "relay/base/clock.h"
#include "relay/base/config.h"
#include "relay/base/log.h"
#include "relay/base/url.h"
#include "relay/base/uv.h"
#include "relay/serve.h"
#include "siterelay_version.h"
#include "sync/curl_loop.h"
#include "sync/fetcher.h"
#include "sync/prefetch.h"

namespace siterelay {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitProblem = 1;
constexpr int kExitUsage = 2;

constexpr std::string_view kUsage = R"(usage: siterelay [--log-level LEVEL] <command> [options]

A site-local caching relay and provisioning server for desk phones.

commands:
  serve [--config FILE]          run the relay in the foreground: every listener, sync, console
  sync [--config FILE]           one prefetch pass: fetch the manifest / prefetch list, verify
  import DIR [--config FILE]     seed the cache from a local folder, as if from the origin
  cache ls [--config FILE]       list cached entries: path, size, sha256, state
  cache verify [--config FILE]   re-hash every object; exit 1 and quarantine on a mismatch
  cache gc [--config FILE]       drop unreferenced objects and enforce cache.max_bytes
  status [--config FILE]         summary of a running relay, from its admin API
  dhcp-option URL                print URL with credentials encoded for DHCP option 160/66

options:
  --config FILE      TOML configuration (CONTRACT.md); without it, built-in defaults
  --log-level LEVEL  debug, info, warning or error (default info)
  --version          print the version
  --help             this text; `siterelay <command> --help` for one command
)";

struct CommandHelp {
  std::string_view name;
  std::string_view text;
};

constexpr CommandHelp kHelp[] = {
    {"import", R"(usage: siterelay import DIR [--config FILE]

Copies every file below DIR into the cache as if the origin had served it at the same relative
path (DIR/sip/3111.ld is served as /sip/3111.ld). Files are hashed while copied; identical files
are stored once. Hidden files and folders (.name) are skipped. Imported entries are pinned: cache
eviction never drops them. A progress bar is shown on a terminal.
Exit 0 when every file was imported, 1 when some could not be read, 2 on a usage or config error.
)"},
    {"cache", R"(usage: siterelay cache ls|verify|gc [--config FILE]

  ls      one entry a line, tab-separated: path, size, sha256, state
          (state: fresh, stale, pinned, imported, uploaded, upload-pending)
  verify  re-hash every object; a mismatch is moved to data_dir/quarantine/, the entries that
          named it are dropped, and the exit code is 1
  gc      delete objects no entry names, then evict least recently used objects until the cache
          is under cache.max_bytes (pinned entries and uploads not yet forwarded are kept)
)"},
    {"dhcp-option", R"(usage: siterelay dhcp-option URL

Prints URL with its user and password percent-encoded, ready for DHCP option 160 (Poly) or 66.
The last '@' before the host separates the credentials, so
  siterelay dhcp-option 'ftp://PlcmSpIp:@123$@10.0.0.5'  prints  ftp://PlcmSpIp:%40123$@10.0.0.5
A backslash (DOMAIN\user) becomes %5C.
)"},
    {"serve", R"(usage: siterelay serve [--config FILE]

Runs the relay in the foreground, logging to stderr: phones over HTTP ([http] listen) and HTTPS
([https] listen; without [tls] cert/key a self-signed certificate is made in data_dir/tls and its
SHA-256 fingerprint logged), including their uploads, and over TFTP ([tftp] listen; reads); files
not cached are pulled through from [origin], and sync passes run every sync_interval; the
operator's /healthz ([admin] listen). SIGTERM or SIGINT stops accepting, lets transfers finish for
up to 10 s and exits 0; SIGHUP re-reads the config file (accounts, allow_from, certificates,
HTTP/HTTPS/TFTP/admin listeners). FTP comes with the next version.
)"},
    {"sync", R"(usage: siterelay sync [--config FILE]

One prefetch pass from the origin, in the foreground: fetches [origin] manifest, downloads every
listed file the cache lacks, checks each against its sha256 (a mismatch is discarded and retried,
never kept), and publishes the whole set in one transaction once every file is here; then pulls
and pins the [origin] prefetch paths. A progress bar (bytes, rate, ETA) on a terminal, one line
per file otherwise. Exit status 0 only when everything listed is cached and verified, 1 when
something is missing (nothing of a manifest is published then), 2 for a usage or config error.
Run it while the relay is stopped; a running relay syncs by itself every sync_interval.
)"},
    {"status", R"(usage: siterelay status [--config FILE]

A summary of the running relay, read from its admin API (GET /api/v1/status on the first
[admin] listen address) with the admin credentials: [admin] password, or the one the relay made
in data_dir/admin-password. Exit 0 when the relay answered, 1 when it did not.
)"},
};

struct Args {
  std::string command;
  std::vector<std::string> positional;
  std::string config_path;
  bool help = false;
};

int UsageError(const std::string& message) {
  std::cerr << "siterelay: " << message << "\n(see siterelay --help)\n";
  return kExitUsage;
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(kUnits)) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, kUnits[u]);
  return buf;
}

// A progress display: a redrawn bar on a terminal, a line every few seconds otherwise.
class Progress {
 public:
  Progress(std::string_view verb, std::string_view unit)
      : verb_(verb),
        unit_(unit),
        tty_(::isatty(STDERR_FILENO) == 1),
        start_(Clock::now()),
        last_draw_(start_) {}

  bool tty() const { return tty_; }

  void Update(uint64_t done_bytes, uint64_t total_bytes, size_t done_items, size_t total_items) {
    auto now = Clock::now();
    bool last = done_items == total_items;
    auto interval = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(5000);
    if (!last && now - last_draw_ < interval) return;
    last_draw_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? static_cast<double>(done_bytes) / secs : 0;
    int pct = total_bytes == 0 ? 100 : static_cast<int>(done_bytes * 100 / total_bytes);
    char eta[32] = "";
    if (rate > 0 && total_bytes > done_bytes) {
      auto left = static_cast<uint64_t>(static_cast<double>(total_bytes - done_bytes) / rate);
      std::snprintf(eta, sizeof eta, "  ETA %llu:%02llu",
                    static_cast<unsigned long long>(left / 60),
                    static_cast<unsigned long long>(left % 60));
    }
    char line[288];
    if (tty_) {
      int filled = pct * 30 / 100;
      std::string bar(static_cast<size_t>(filled), '#');
      bar.append(static_cast<size_t>(30 - filled), ' ');
      std::snprintf(line, sizeof line, "\r%s [%s] %3d%%  %zu/%zu %s  %s/%s  %s/s%s ",
                    verb_.c_str(), bar.c_str(), pct, done_items, total_items, unit_.c_str(),
                    HumanBytes(done_bytes).c_str(), HumanBytes(total_bytes).c_str(),
                    HumanBytes(static_cast<uint64_t>(rate)).c_str(), eta);
      std::fputs(line, stderr);
      if (last) std::fputs("\n", stderr);
    } else {
      std::snprintf(line, sizeof line, "%s: %d%% (%zu/%zu %s, %s of %s)\n", verb_.c_str(), pct,
                    done_items, total_items, unit_.c_str(), HumanBytes(done_bytes).c_str(),
                    HumanBytes(total_bytes).c_str());
      std::fputs(line, stderr);
    }
    std::fflush(stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::string verb_;
  std::string unit_;
  bool tty_;
  Clock::time_point start_;
  Clock::time_point last_draw_;
};

Result<Config> LoadConfigFor(const Args& args) { return LoadConfig(args.config_path); }

Result<std::unique_ptr<cache::Cache>> OpenCache(const Config& config, bool read_only) {
  cache::CacheOptions o;
  o.data_dir = config.data_dir;
  o.max_bytes = config.cache_max_bytes;
  o.read_only = read_only;
  return cache::Cache::Open(o);
}

int Fail(const Status& s) {
  std::cerr << "siterelay: " << s.message() << "\n";
  return s.Is(StatusCode::kInvalidArgument) ? kExitUsage : kExitProblem;
}

int CmdImport(const Args& args) {
  if (args.positional.size() != 1) return UsageError("import takes one folder: import DIR");
  auto config = LoadConfigFor(args);
  if (!config.ok()) return Fail(config.status());
  auto cache = OpenCache(*config, false);
  if (!cache.ok()) return Fail(cache.status());
  Loop loop;
  Progress progress("importing", "files");
  auto report = cache::ImportTree(**cache, loop.get(), args.positional[0],
                                  [&](const cache::ImportProgress& p) {
                                    progress.Update(p.bytes_done, p.bytes_total, p.files_done,
                                                    p.files_total);
                                  });
  if (!report.ok()) return Fail(report.status());
  for (const std::string& s : report->skipped) std::cerr << "siterelay: skipped " << s << "\n";
  std::cout << "imported " << report->files << " file(s), " << HumanBytes(report->bytes) << " ("
            << report->new_objects << " new object(s), " << report->unchanged << " unchanged)";
  if (!report->skipped.empty()) std::cout << "; " << report->skipped.size() << " skipped";
  std::cout << "\n";
  return report->skipped.empty() ? kExitOk : kExitProblem;
}

int CmdCache(const Args& args) {
  if (args.positional.size() != 1) return UsageError("cache needs one of: ls, verify, gc");
  const std::string& sub = args.positional[0];
  auto config = LoadConfigFor(args);
  if (!config.ok()) return Fail(config.status());

  if (sub == "ls") {
    auto cache = OpenCache(*config, true);
    if (!cache.ok()) {
      if (cache.status().Is(StatusCode::kNotFound)) return kExitOk;  // nothing cached yet
      return Fail(cache.status());
    }
    int64_t now = Clock::System()->NowSeconds();
    std::string out;
    for (const cache::Entry& e : (*cache)->List()) {
      out += e.path;
      out += '\t';
      out += std::to_string(e.size);
      out += '\t';
      out += e.sha256.Hex();
      out += '\t';
      out += e.State(now);
      out += '\n';
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return kExitOk;
  }
  if (sub == "verify") {
    auto cache = OpenCache(*config, false);
    if (!cache.ok()) return Fail(cache.status());
    Progress progress("verifying", "objects");
    size_t total = (*cache)->object_count();
    size_t done = 0;
    auto report = (*cache)->Verify([&](uint64_t bytes, uint64_t total_bytes) {
      progress.Update(bytes, total_bytes, ++done, total);
    });
    if (!report.ok()) return Fail(report.status());
    std::cout << "verified " << report->objects_checked << " object(s), "
              << HumanBytes(report->bytes_checked) << ": " << report->corrupt.size()
              << " corrupt, " << report->missing << " missing\n";
    for (const Digest& d : report->corrupt) {
      std::cout << "quarantined " << d.Hex() << " -> " << config->data_dir << "/quarantine/"
                << d.Hex() << "\n";
    }
    for (const std::string& p : report->entries_dropped) std::cout << "dropped " << p << "\n";
    return report->corrupt.empty() && report->missing == 0 ? kExitOk : kExitProblem;
  }
  if (sub == "gc") {
    auto cache = OpenCache(*config, false);
    if (!cache.ok()) return Fail(cache.status());
    auto report = (*cache)->Gc();
    if (!report.ok()) return Fail(report.status());
    std::cout << "removed " << report->orphans_removed << " unreferenced object(s) ("
              << HumanBytes(report->orphan_bytes) << "), evicted " << report->evicted
              << " object(s) (" << HumanBytes(report->evicted_bytes) << "); cache holds "
              << HumanBytes((*cache)->object_bytes()) << " of "
              << HumanBytes((*cache)->max_bytes()) << "\n";
    for (const std::string& p : report->entries_dropped) std::cout << "dropped " << p << "\n";
    return kExitOk;
  }
  return UsageError("unknown cache command '" + sub + "' (ls, verify, gc)");
}

int CmdDhcpOption(const Args& args) {
  if (args.positional.size() != 1) return UsageError("dhcp-option takes one URL");
  auto value = DhcpOptionValue(args.positional[0]);
  if (!value.ok()) {
    std::cerr << "siterelay: dhcp-option: " << value.status().message() << "\n";
    return kExitUsage;
  }
  std::cout << *value << "\n";
  return kExitOk;
}

int CmdSync(const Args& args) {
  if (!args.positional.empty()) return UsageError("sync takes no arguments");
  auto config = LoadConfigFor(args);
  if (!config.ok()) return Fail(config.status());
  if (config->origin.url.empty()) {
    return Fail(Status::InvalidArgument(config->source + ": sync needs [origin] url"));
  }
  if (config->origin.manifest.empty() && config->origin.prefetch.empty()) {
    return Fail(Status::InvalidArgument(config->source +
                                        ": nothing to sync: set [origin] manifest or prefetch"));
  }
  auto cache = OpenCache(*config, false);
  if (!cache.ok()) return Fail(cache.status());
  Loop loop;
  Status result = Status::Internal("sync did not finish");
  Progress progress("syncing", "files");
  {
    sync::Fetcher fetcher(loop.get(), config->origin, cache->get(), Clock::System());
    sync::Prefetcher pass(loop.get(), config->origin, cache->get(), &fetcher, Clock::System());
    pass.OnEvent([&](const std::string& line) {
      // On a terminal the bar says it all, except what went wrong.
      if (!progress.tty() || line.starts_with("failed")) {
        std::cerr << (progress.tty() ? "\r\033[K" : "") << line << "\n";
      }
    });
    Timer tick(loop.get());
    std::function<void()> draw = [&] {
      sync::SyncProgress p = pass.progress();
      progress.Update(p.bytes_done, p.bytes_total, p.files_done + p.files_failed, p.files_total);
      if (p.running) tick.Start(100, draw);
    };
    pass.Run([&](Status s) {
      result = s;
      tick.Stop();
      draw();
      uv_stop(loop.get());  // the fetcher's idle connections would keep the loop alive
    });
    tick.Start(100, draw);
    (void)loop.Run();
    sync::SyncProgress p = pass.progress();
    if (result.ok()) {
      std::cout << "synced " << p.files_done << " file(s); " << HumanBytes(p.bytes_done)
                << " from the origin\n";
    }
  }
  if (!result.ok()) return Fail(result.Is(StatusCode::kInvalidArgument)
                                    ? Status::IoError(result.message())  // the origin's fault
                                    : result);
  return kExitOk;
}

// GET of one admin API document, with the admin credentials.
Result<std::string> AdminGet(const std::string& url, const std::string& user,
                             const std::string& password) {
  CURL* h = curl_easy_init();
  if (h == nullptr) return Status::Internal("out of memory for a curl handle");
  std::string body;
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(h, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
  curl_easy_setopt(h, CURLOPT_USERNAME, user.c_str());
  curl_easy_setopt(h, CURLOPT_PASSWORD, password.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION,
                   +[](char* data, size_t size, size_t n, void* userp) noexcept -> size_t {
                     static_cast<std::string*>(userp)->append(data, size * n);
                     return size * n;
                   });
  CURLcode code = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(h);
  if (code != CURLE_OK) return sync::CurlError("no relay answering at " + url, code, error);
  if (status == 401) return Status::PermissionDenied(url + ": the admin credentials were refused");
  if (status != 200) return Status::Unavailable(url + ": answered " + std::to_string(status));
  return body;
}

std::string Bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

int CmdStatus(const Args& args) {
  auto config = LoadConfigFor(args);
  if (!config.ok()) return Fail(config.status());
  if (config->admin.listen.empty()) {
    return Fail(Status::InvalidArgument("[admin] listen is empty: the relay has no admin API"));
  }
  auto password = admin::AdminPassword(config->admin.password, config->data_dir, false);
  if (!password.ok()) return Fail(password.status());
  ListenAddress a = config->admin.listen.front();
  std::string host = a.host == "0.0.0.0" ? "127.0.0.1" : a.host == "::" ? "::1" : a.host;
  if (a.ipv6) host = "[" + host + "]";
  std::string base = "http://" + host + ":" + std::to_string(a.port) + "/";
  if (a.port == 0) {
    // The kernel picked the port at start: serve wrote where it is.
    std::ifstream in(config->data_dir + "/admin-url");
    if (!std::getline(in, base) || base.empty()) {
      return Fail(Status::Unavailable("no relay answering: [admin] listen has port 0 and " +
                                      config->data_dir + "/admin-url is missing"));
    }
  }
  std::string url = base + "api/v1/status";
  auto body = AdminGet(url, config->admin.user, *password);
  if (!body.ok()) return Fail(body.status());
  nlohmann::json j = nlohmann::json::parse(*body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Fail(Status::IoError(url + ": not a status document"));
  }
  auto num = [&](const nlohmann::json& v) { return v.is_number() ? v.get<uint64_t>() : 0; };
  int64_t up = j.value("uptime_seconds", int64_t{0});
  std::cout << "siterelay " << j.value("version", std::string("?")) << ", up "
            << up / 86400 << "d " << (up % 86400) / 3600 << "h " << (up % 3600) / 60 << "m\n";
  std::cout << "listeners:";
  for (const auto& l : j["listeners"]) {
    std::cout << " " << l.value("protocol", std::string()) << "="
              << l.value("address", std::string());
  }
  std::cout << "\n";
  const auto& c = j["cache"];
  std::cout << "cache:     " << num(c["entries"]) << " paths, " << num(c["objects"])
            << " objects, " << Bytes(num(c["bytes"])) << "; " << num(c["stale_serves"])
            << " stale serves\n";
  const auto& w = j["wan"];
  std::cout << "wan:       " << Bytes(num(w["served_bytes"])) << " served to phones, "
            << Bytes(num(w["origin_bytes"])) << " from the origin, "
            << Bytes(num(w["saved_bytes"])) << " saved\n";
  const auto& o = j["origin"];
  if (o.value("configured", false)) {
    std::cout << "origin:    " << o.value("url", std::string()) << ": " << num(o["requests"])
              << " requests, " << num(o["failures"]) << " failed, " << num(o["in_flight"])
              << " in flight\n";
  } else {
    std::cout << "origin:    none (only imported and uploaded files)\n";
  }
  const auto& s = j["sync"];
  if (s.value("configured", false)) {
    std::cout << "sync:      " << (s.value("running", false) ? "running" : "idle") << ", "
              << num(s["files_done"]) << "/" << num(s["files_total"]) << " files, "
              << Bytes(num(s["bytes_done"])) << "/" << Bytes(num(s["bytes_total"]))
              << ", generation " << num(s["generation"]) << ", last result "
              << s.value("result", std::string()) << "\n";
  }
  const auto& ob = j["outbox"];
  std::cout << "outbox:    " << num(ob["pending"]) << " settings file(s) to send, "
            << num(ob["sent"]) << " sent\n";
  const auto& l = j["log_spool"];
  if (l.value("shipping", false)) {
    std::cout << "log spool: " << Bytes(num(l["unbatched_bytes"])) << " to batch, "
              << num(l["pending_batches"]) << " batch(es) to send ("
              << Bytes(num(l["pending_bytes"])) << "), " << num(l["dead_batches"])
              << " refused, " << num(l["shipped_lines"]) << " lines shipped, "
              << num(l["dropped_lines"]) << " dropped\n";
  } else {
    std::cout << "log spool: kept locally (no logs.upstream)\n";
  }
  const nlohmann::json& dv = j["devices"];
  std::cout << "devices:   " << num(dv["total"]) << " known, " << num(dv["seen_24h"])
            << " seen in 24 h, " << num(dv["firmware_mismatch"])
            << " not on the firmware their config names\n";
  const nlohmann::json& tl = j["tls"];
  std::cout << "tls:       " << num(tl["handshakes"]) << " handshakes, " << num(tl["failures"])
            << " failed\n";
  std::cout << "memory:    " << Bytes(num(j["resident_bytes"])) << " resident\n";
  return kExitOk;
}

}  // namespace

int RunCli(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view flag) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)flag;
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      args.help = true;
    } else if (a == "--version" || a == "-V") {
      std::cout << "siterelay " << SITERELAY_VERSION << "\n";
      return kExitOk;
    } else if (a == "--config" || a.starts_with("--config=")) {
      const char* v = a == "--config" ? value(a) : argv[i] + 9;
      if (v == nullptr || *v == '\0') return UsageError("--config needs a file");
      args.config_path = v;
    } else if (a == "--log-level" || a.starts_with("--log-level=")) {
      const char* v = a == "--log-level" ? value(a) : argv[i] + 12;
      LogLevel level;
      if (v == nullptr || !ParseLogLevel(v, &level)) {
        return UsageError("--log-level needs debug, info, warning or error");
      }
      SetLogLevel(level);
    } else if (a.size() > 1 && a.front() == '-' && args.command != "dhcp-option") {
      return UsageError("unknown option " + std::string(a));
    } else if (args.command.empty()) {
      args.command = a;
    } else {
      args.positional.emplace_back(a);
    }
  }
  if (args.command.empty()) {
    std::cout << kUsage;
    return args.help ? kExitOk : kExitUsage;
  }
  if (args.help) {
    for (const CommandHelp& h : kHelp) {
      if (h.name == args.command) {
        std::cout << h.text;
        return kExitOk;
      }
    }
    std::cout << kUsage;
    return kExitOk;
  }
  if (args.command == "import") return CmdImport(args);
  if (args.command == "cache") return CmdCache(args);
  if (args.command == "dhcp-option") return CmdDhcpOption(args);
  if (args.command == "serve") {
    if (!args.positional.empty()) return UsageError("serve takes no arguments");
    return Serve(args.config_path);
  }
  if (args.command == "sync") return CmdSync(args);
  if (args.command == "status") return CmdStatus(args);
  return UsageError("unknown command '" + args.command + "'");
}

}  // namespace siterelay
