// phone_fleet: a load generator that boots N simulated Poly desk phones against a relay, the way
// /work/shared/PHONES.md says phones boot, and reports what each class of phone saw
// (docs/phone-fleet.md is the user's page; this comment is the design).
//
// One process, one libuv loop, three parts:
//   - OriginEmulator (origin.h): the relay's origin, serving a generated tree (master config,
//     firmware images, site files) through one token bucket (the branch's WAN link) with a
//     latency before every answer, counting what it served per path;
//   - RelayProcess (relay_process.h): with --relay-binary, the relay under test, started on a
//     scratch directory with a config written for the run (every listener the protocol mix needs
//     on 127.0.0.1 port 0, read back from its log), sampled from /proc (VmRSS, VmHWM, CPU) and
//     stopped with SIGTERM at the end; or a relay someone else runs (--relay PROTO=HOST:PORT,
//     --relay-pid to sample it);
//   - Fleet (fleet.h): the phones, one curl easy handle each on one curl multi handle, each
//     running its boot's steps in order, all started at once (--storm, the clock starts when
//     every phone is ready) or at uniform offsets over --spread seconds.
// Bodies are never stored: the fleet counts (and with --verify hashes) what arrives in the
// write callback, the origin sends firmware from one shared pattern block without copying.
//
// The run ends when every phone is done or at --duration (phones not done then are incomplete).
// Exit status: 0 every boot completed with no error (a 404 a phone expects is not one) and the
// relay behaved (did not die, stopped cleanly on SIGTERM); 1 otherwise; 2 usage or setup errors.
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "relay/base/sha256.h"
#include "tools/phone-fleet/fleet.h"
#include "tools/phone-fleet/model.h"
#include "tools/phone-fleet/origin.h"
#include "tools/phone-fleet/relay_process.h"
#include "tools/phone-fleet/report.h"

namespace siterelay::fleet {
namespace {

constexpr std::string_view kUsage = R"(usage: phone_fleet [options]

Boots N simulated Poly phones against a relay, as PHONES.md describes (PUT <mac>-boot.log,
<mac>.cfg with its 404 fallback to 000000000000.cfg, <part>.sip.ld, site.cfg, -phone.cfg,
-web.cfg, license and directory files, HEAD + PUT of <mac>-app.log), and reports per phone class
(model x protocol): boots, errors, p50/p95/p99 per step and to boot complete, bytes; the origin's
per-path counts; the relay's RSS and CPU.

The phones
  --phones N              phones (default 100)
  --mix SPEC              protocol mix (default http=100), e.g. http=70,https=10,tftp=10,ftp=5,ftps=5
  --models SPEC           model mix (default VVX_500=30,VVX_410=25,VVX_311=15,VVX_600=10,
                          Edge_E450=15,SPIP_550=5)
  --seed N                phones (MACs, models, protocols, start times) follow from it (default 1)
  --storm                 all phones start at once, after all are ready (default)
  --spread SECONDS        start times uniform over SECONDS (a polling window)
  --duration SECONDS      hard bound; phones not done by then are incomplete (default 600)
  --concurrency N         at most N phones booting at once (default 0: no cap)
  --own-config-percent P  phones whose <mac>.cfg exists at the origin (default 25; the rest get
                          404 and fall back to 000000000000.cfg)
  --tftp-blksize N        TFTP blksize option (default 1428)
  --http-auth             phones send Basic PlcmSpIp:PlcmSpIp over HTTP/HTTPS
  --one-source            all phones from one source address (default: 127.1.x.y per phone when
                          the relay is on loopback)
  --cacert FILE           verify the relay's HTTPS/FTPS certificate against FILE (default: no
                          verification, as against a self-signed relay)
  --verify                sha256 every body the origin emulator knows and compare (costs CPU)

The origin (emulated WAN)
  --origin-listen ADDR    where the origin emulator listens (default 127.0.0.1:0); "none" = no
                          emulator (an external relay with its own origin)
  --firmware-mb MIB       size of each firmware image (default 8; fractions allowed)
  --wan-rate-mbit R       one token bucket for everything the origin sends (default 0: no cap)
  --wan-latency-ms L      before each answer's first byte, twice on a new connection (default 0)
  --origin-faults SPEC    misbehave on a share of GETs of existing files (200/206 answers), e.g.
                          reset=10,error=10,stall=3,short=5 (percent each, sum at most 100):
                          reset = TCP RST part way through the body, short = FIN part way
                          through, error = 503 with Retry-After: 1, stall = part of the body then
                          silence for --origin-stall-ms, then FIN, garble = the whole body with
                          one byte wrong (phones that check count it corrupt). Drawn from
                          --seed; counted per kind in the report (origin.faults)
  --origin-stall-ms MS    how long a stall lasts (default 40000: beyond the relay's cut of a
                          transfer below 1 byte/s for 30 s, 30-36 s after its last byte)

The relay under test (one of)
  --relay-binary PATH     start PATH serve on a scratch directory (cold cache), configured for the
                          run; stop it with SIGTERM at the end
  --relay-account         with --relay-binary: configure the PlcmSpIp/PlcmSpIp account (HTTP and
                          FTP then need it; implies --http-auth)
  --relay PROTO=HOST:PORT a running relay's listener for PROTO (repeat per protocol)
  --relay-pid PID         sample that relay's RSS and CPU from /proc

Output
  --json FILE             the full report as JSON
  --work DIR              scratch directory (default: a new one under $TMPDIR, removed after a
                          passing run)
  --keep-work             keep the scratch directory (relay log, config, data)
  --progress SECONDS      a progress line on stderr every SECONDS (default 5; 0 = none)
  -h, --help              this text

Exit: 0 every boot completed without an error and the relay behaved; 1 otherwise; 2 usage or
setup error.
)";

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr, "phone_fleet: %s (try --help)\n", why.c_str());
  std::exit(2);
}

[[noreturn]] void SetupError(const std::string& why) {
  std::fprintf(stderr, "phone_fleet: %s\n", why.c_str());
  std::exit(2);
}

struct Options {
  size_t phones = 100;
  std::string mix = "http=100";
  std::string models = "VVX_500=30,VVX_410=25,VVX_311=15,VVX_600=10,Edge_E450=15,SPIP_550=5";
  uint64_t seed = 1;
  double spread_s = 0;
  double duration_s = 600;
  size_t concurrency = 0;
  uint32_t own_config_percent = 25;
  long tftp_blksize = 1428;
  bool http_auth = false;
  bool one_source = false;
  std::string cacert;
  bool verify = false;
  std::string origin_listen = "127.0.0.1:0";
  double firmware_mb = 8;
  double wan_rate_mbit = 0;
  double wan_latency_ms = 0;
  OriginFaultSpec origin_faults;
  std::string origin_faults_text;
  uint64_t origin_stall_ms = 40000;
  std::string relay_binary;
  bool relay_account = false;
  std::array<std::optional<Target>, kProtoCount> relay;
  int relay_pid = 0;
  std::string json_path;
  std::string work;
  bool keep_work = false;
  double progress_s = 5;
};

double Number(const std::string& flag, const std::string& v, double max) {
  double d = 0;
  if (!ParseNumber(v, &d) || d > max) {
    Usage(flag + " wants a number from 0 to " + std::to_string(static_cast<uint64_t>(max)));
  }
  return d;
}

uint64_t Integer(const std::string& flag, const std::string& v, uint64_t max) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || v.empty() || n > max) {
    Usage(flag + " wants an integer from 0 to " + std::to_string(max));
  }
  return n;
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool has_value = false;
    if (size_t eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    auto next = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= argc) Usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fwrite(kUsage.data(), 1, kUsage.size(), stdout);
      std::exit(0);
    } else if (a == "--phones") {
      o.phones = Integer(a, next(), 62500);
    } else if (a == "--mix") {
      o.mix = next();
    } else if (a == "--models") {
      o.models = next();
    } else if (a == "--seed") {
      o.seed = Integer(a, next(), UINT64_MAX);
    } else if (a == "--storm") {
      o.spread_s = 0;
    } else if (a == "--spread") {
      o.spread_s = Number(a, next(), 86400);
    } else if (a == "--duration") {
      o.duration_s = Number(a, next(), 86400);
      if (o.duration_s <= 0) Usage("--duration must be above 0");
    } else if (a == "--concurrency") {
      o.concurrency = Integer(a, next(), 1000000);
    } else if (a == "--own-config-percent") {
      o.own_config_percent = static_cast<uint32_t>(Integer(a, next(), 100));
    } else if (a == "--tftp-blksize") {
      o.tftp_blksize = static_cast<long>(Integer(a, next(), 65464));
      if (o.tftp_blksize < 8) Usage("--tftp-blksize is 8-65464 (RFC 2348)");
    } else if (a == "--http-auth") {
      o.http_auth = true;
    } else if (a == "--one-source") {
      o.one_source = true;
    } else if (a == "--cacert") {
      o.cacert = next();
    } else if (a == "--verify") {
      o.verify = true;
    } else if (a == "--origin-listen") {
      o.origin_listen = next();
    } else if (a == "--firmware-mb") {
      o.firmware_mb = Number(a, next(), 4096);
    } else if (a == "--wan-rate-mbit") {
      o.wan_rate_mbit = Number(a, next(), 1e6);
    } else if (a == "--wan-latency-ms") {
      o.wan_latency_ms = Number(a, next(), 60000);
    } else if (a == "--origin-faults") {
      o.origin_faults_text = next();
      auto spec = ParseOriginFaults(o.origin_faults_text);
      if (!spec.ok()) {
        Usage("--origin-faults " + o.origin_faults_text + ": " + spec.status().message());
      }
      o.origin_faults = *spec;
    } else if (a == "--origin-stall-ms") {
      o.origin_stall_ms = Integer(a, next(), 3600000);
    } else if (a == "--relay-binary") {
      o.relay_binary = next();
    } else if (a == "--relay-account") {
      o.relay_account = true;
    } else if (a == "--relay") {
      std::string v = next();
      size_t eq = v.find('=');
      Proto p;
      if (eq == std::string::npos || !ParseProto(v.substr(0, eq), &p)) {
        Usage("--relay wants PROTO=HOST:PORT, PROTO one of http https tftp ftp ftps");
      }
      auto hp = ParseHostPort(v.substr(eq + 1));
      if (!hp.ok() || hp->second == 0) Usage("--relay " + v + ": need IPv4:PORT with a port");
      o.relay[static_cast<size_t>(p)] = Target{hp->first, hp->second};
    } else if (a == "--relay-pid") {
      o.relay_pid = static_cast<int>(Integer(a, next(), 4194304));
    } else if (a == "--json") {
      o.json_path = next();
    } else if (a == "--work") {
      o.work = next();
    } else if (a == "--keep-work") {
      o.keep_work = true;
    } else if (a == "--progress") {
      o.progress_s = Number(a, next(), 3600);
    } else {
      Usage("unknown option " + a);
    }
  }
  bool external = false;
  for (const auto& t : o.relay) external |= t.has_value();
  if (o.relay_binary.empty() == !external) {
    Usage("give either --relay-binary PATH or --relay PROTO=HOST:PORT");
  }
  if (!o.relay_binary.empty() && o.origin_listen == "none") {
    Usage("--relay-binary needs the origin emulator (--origin-listen)");
  }
  if (o.relay_pid != 0 && !o.relay_binary.empty()) Usage("--relay-pid is for --relay");
  if (o.origin_faults.any() && o.origin_listen == "none") {
    Usage("--origin-faults needs the origin emulator (--origin-listen)");
  }
  if (o.relay_account) o.http_auth = true;
  return o;
}

// Runs the loop until `done()` or `timeout_ms`; a 20 ms tick re-checks conditions that no
// callback announces (a log line appearing in a file).
bool RunUntil(uv_loop_t* loop, const std::function<bool()>& done, uint64_t timeout_ms) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, [](uv_timer_t*) noexcept {}, 20, 20);
  uint64_t deadline = uv_hrtime() + timeout_ms * 1000000;
  bool ok = done();
  while (!ok && uv_hrtime() < deadline) {
    uv_run(loop, UV_RUN_ONCE);
    ok = done();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

uint64_t SelfMaxRssKib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<uint64_t>(u.ru_maxrss);
}

std::vector<uint32_t> Weights(const std::string& flag, const std::string& spec, size_t n,
                              const std::function<int(std::string_view)>& index) {
  auto mix = ParseMix(spec);
  if (!mix.ok()) Usage(flag + " " + spec + ": " + mix.status().message());
  std::vector<uint32_t> w(n, 0);
  for (const auto& [name, weight] : *mix) {
    int i = index(name);
    if (i < 0) Usage(flag + ": unknown name " + name);
    w[static_cast<size_t>(i)] = weight;
  }
  return w;
}

int Main(int argc, char** argv) {
  Options o = ParseOptions(argc, argv);
  FleetShape shape;
  shape.phones = o.phones;
  shape.seed = o.seed;
  shape.spread_s = o.spread_s;
  shape.own_config_percent = o.own_config_percent;
  shape.proto_weights = Weights("--mix", o.mix, kProtoCount, [](std::string_view n) {
    Proto p;
    return ParseProto(n, &p) ? static_cast<int>(p) : -1;
  });
  shape.model_weights = Weights("--models", o.models, Models().size(),
                                [](std::string_view n) { return FindModel(n); });
  std::array<bool, kProtoCount> used{};
  for (int i = 0; i < kProtoCount; ++i) used[static_cast<size_t>(i)] = shape.proto_weights[static_cast<size_t>(i)] > 0;
  for (int i = 0; i < kProtoCount; ++i) {
    if (used[static_cast<size_t>(i)] && o.relay_binary.empty() && !o.relay[static_cast<size_t>(i)]) {
      Usage("the mix has " + std::string(ProtoName(static_cast<Proto>(i))) +
            " but no --relay " + std::string(ProtoName(static_cast<Proto>(i))) + "=HOST:PORT");
    }
  }
  std::vector<PhoneSpec> phones = MakePhones(shape);
  uint64_t firmware_bytes = static_cast<uint64_t>(std::llround(o.firmware_mb * (1 << 20)));

  uv_loop_t* loop = uv_default_loop();
  // Scratch directory: relay config, data and log.
  bool own_work = o.work.empty();
  if (own_work) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                       "/phone-fleet.XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) SetupError("mkdtemp " + tmpl + ": " + std::strerror(errno));
    o.work = tmpl;
  } else {
    std::error_code ec;
    std::filesystem::create_directories(o.work, ec);
    if (ec) SetupError("--work " + o.work + ": " + ec.message());
  }

  // The origin.
  std::unique_ptr<OriginEmulator> origin;
  FleetOptions fo;
  if (o.origin_listen != "none") {
    auto hp = ParseHostPort(o.origin_listen);
    if (!hp.ok()) Usage("--origin-listen: " + hp.status().message());
    OriginEmulator::Options oo;
    oo.host = hp->first;
    oo.port = hp->second;
    oo.rate_bytes_per_s = o.wan_rate_mbit * 1e6 / 8;
    oo.latency_ms = static_cast<uint64_t>(std::llround(o.wan_latency_ms));
    oo.faults = o.origin_faults;
    oo.fault_seed = o.seed;
    oo.stall_ms = o.origin_stall_ms;
    origin = std::make_unique<OriginEmulator>(loop, OriginTree(phones, firmware_bytes), oo);
    Status s = origin->Start();
    if (!s.ok()) SetupError(s.ToString());
    for (const OriginFile& f : origin->tree()) {
      std::optional<Digest> digest;
      uint64_t size = f.firmware ? f.pattern_size : f.small_body.size();
      if (o.verify) {
        Sha256 h;
        if (f.firmware) {
          for (uint64_t off = 0; off < f.pattern_size;) {
            auto span = PatternSpan(f.pattern_id, off, f.pattern_size - off);
            h.Update(std::span(span.first, span.second));
            off += span.second;
          }
        } else {
          h.Update(f.small_body);
        }
        digest = h.Finish();
      }
      fo.expect[f.path] = {size, digest};
    }
    std::fprintf(stderr, "phone_fleet: origin emulator on http://%s:%u/ (%zu files, WAN %s)\n",
                 oo.host.c_str(), origin->port(), origin->tree().size(),
                 o.wan_rate_mbit > 0 ? (std::to_string(o.wan_rate_mbit) + " Mbit/s").c_str()
                                     : "uncapped");
  }

  // The relay.
  RelayProcess relay(loop);
  int relay_pid = o.relay_pid;
  std::string relay_log = o.work + "/relay.log";
  bool loopback = true;
  if (!o.relay_binary.empty()) {
    std::string config = o.work + "/relay.toml";
    std::error_code ec;
    std::filesystem::remove_all(o.work + "/data", ec);
    uint16_t passive_lo = static_cast<uint16_t>(10000 + (static_cast<unsigned>(getpid()) * 7919u) % 20000u);
    std::ofstream(config) << RelayConfig(o.work + "/data",
                                         "http://127.0.0.1:" + std::to_string(origin->port()) + "/",
                                         used, passive_lo, o.relay_account);
    Status s = relay.Spawn(o.relay_binary, config, relay_log);
    if (!s.ok()) SetupError(s.ToString());
    std::optional<std::array<uint16_t, kProtoCount>> ports;
    RunUntil(
        loop,
        [&] {
          ports = ParseAnnouncedPorts(ReadFile(relay_log));
          return ports.has_value() || relay.exited();
        },
        30000);
    if (!ports) {
      relay.Kill(SIGKILL);
      RunUntil(loop, [&] { return relay.exited(); }, 5000);
      SetupError("the relay did not start; its log (" + relay_log + "):\n" + ReadFile(relay_log));
    }
    for (int i = 0; i < kProtoCount; ++i) {
      if (!used[static_cast<size_t>(i)]) continue;
      uint16_t port = (*ports)[static_cast<size_t>(i)];
      if (port == 0) {
        relay.Kill(SIGKILL);
        SetupError("the relay announced no " + std::string(ProtoName(static_cast<Proto>(i))) +
                   " listener; its log: " + relay_log);
      }
      fo.targets[static_cast<size_t>(i)] = Target{"127.0.0.1", port};
    }
    relay_pid = relay.pid();
    std::fprintf(stderr, "phone_fleet: relay pid %d ready (config %s, log %s)\n", relay_pid,
                 config.c_str(), relay_log.c_str());
  } else {
    fo.targets = o.relay;
    for (const auto& t : o.relay) {
      if (t && t->host.rfind("127.", 0) != 0) loopback = false;
    }
  }
  fo.source_per_phone = loopback && !o.one_source;
  fo.tftp_blksize = o.tftp_blksize;
  fo.cacert = o.cacert;
  fo.http_auth = o.http_auth;
  fo.concurrency = o.concurrency;
  fo.verify = o.verify;

  RunFacts facts;
  facts.origin_emulated = origin != nullptr;
  facts.options = {{"phones", o.phones},
                   {"mix", o.mix},
                   {"models", o.models},
                   {"seed", o.seed},
                   {"mode", o.spread_s > 0 ? "spread" : "storm"},
                   {"spread_s", o.spread_s},
                   {"duration_s", o.duration_s},
                   {"concurrency", o.concurrency},
                   {"own_config_percent", o.own_config_percent},
                   {"firmware_bytes", firmware_bytes},
                   {"wan_rate_mbit", o.wan_rate_mbit},
                   {"wan_latency_ms", o.wan_latency_ms},
                   {"origin_faults", o.origin_faults_text},
                   {"origin_stall_ms", o.origin_stall_ms},
                   {"tftp_blksize", o.tftp_blksize},
                   {"verify", o.verify},
                   {"relay", o.relay_binary.empty() ? "external" : o.relay_binary},
                   {"source_per_phone", fo.source_per_phone}};

  // The run.
  Fleet fleet(loop, phones, fo);
  bool done = false;
  if (relay_pid != 0) {
    facts.relay_idle = SampleProc(relay_pid);
    facts.relay_sampled = facts.relay_idle.ok;
    facts.relay_pid = relay_pid;
  }
  double cpu0 = SelfCpuSeconds();
  uv_timer_t sampler, deadline;
  uv_timer_init(loop, &sampler);
  uv_timer_init(loop, &deadline);
  uint64_t tick = 0;
  uint64_t progress_every = o.progress_s > 0 ? static_cast<uint64_t>(std::llround(o.progress_s * 4)) : 0;
  std::function<void()> on_sample = [&] {
    ++tick;
    if (facts.relay_sampled) {
      ProcSample s = SampleProc(relay_pid);
      facts.relay_max_rss_kib = std::max(facts.relay_max_rss_kib, s.rss_kib);
    }
    if (!o.relay_binary.empty() && relay.exited() && facts.relay_failure.empty()) {
      facts.relay_failure = "the relay exited during the run (status " +
                            std::to_string(relay.exit_status()) + ", signal " +
                            std::to_string(relay.term_signal()) + ")";
      fleet.Abort();
    }
    if (progress_every != 0 && tick % progress_every == 0) {
      size_t started = 0, completed = 0, errors = 0;
      for (const PhoneResult& r : fleet.results()) {
        started += r.started;
        completed += r.completed;
        errors += r.errors.size();
      }
      std::fprintf(stderr, "phone_fleet: %6.1f s: %zu started, %zu done, %zu errors\n",
                   fleet.elapsed_ms() / 1000, started, completed, errors);
    }
  };
  sampler.data = &on_sample;
  uv_timer_start(&sampler, [](uv_timer_t* t) noexcept { (*static_cast<std::function<void()>*>(t->data))(); }, 250, 250);
  std::function<void()> on_deadline = [&] {
    facts.aborted = true;
    fleet.Abort();
  };
  deadline.data = &on_deadline;
  uv_timer_start(&deadline, [](uv_timer_t* t) noexcept { (*static_cast<std::function<void()>*>(t->data))(); },
                 static_cast<uint64_t>(std::llround(o.duration_s * 1000)), 0);
  std::fprintf(stderr, "phone_fleet: %zu phones %s\n", phones.size(),
               o.spread_s > 0 ? ("over " + std::to_string(o.spread_s) + " s").c_str() : "at once (storm)");
  fleet.Start([&] {
    done = true;
    facts.wall_s = fleet.elapsed_ms() / 1000;
  });
  while (!done) uv_run(loop, UV_RUN_ONCE);
  uv_timer_stop(&sampler);
  uv_timer_stop(&deadline);
  facts.fleet_cpu_s = SelfCpuSeconds() - cpu0;
  if (facts.relay_sampled) {
    facts.relay_end = SampleProc(relay_pid);
    if (!facts.relay_end.ok) facts.relay_end = facts.relay_idle;
  }

  // Wind down: the phones, the relay (SIGTERM; CONTRACT.md: exit 0 within 10 s), the origin.
  fleet.Close();
  if (!o.relay_binary.empty()) {
    relay.Kill(SIGTERM);
    if (!RunUntil(loop, [&] { return relay.exited(); }, 15000)) {
      if (facts.relay_failure.empty()) facts.relay_failure = "the relay did not stop within 15 s of SIGTERM";
      relay.Kill(SIGKILL);
      RunUntil(loop, [&] { return relay.exited(); }, 5000);
    } else if ((relay.exit_status() != 0 || relay.term_signal() != 0) && facts.relay_failure.empty()) {
      facts.relay_failure = "the relay exited with status " + std::to_string(relay.exit_status()) +
                            ", signal " + std::to_string(relay.term_signal()) + " after SIGTERM";
    }
    relay.Close();
    std::istringstream log(ReadFile(relay_log));
    std::string line;
    while (std::getline(log, line)) {
      // "2026-11-25T23:51:33.482Z warn sync: ...": the level is the second field.
      size_t sp = line.find(' ');
      if (sp == std::string::npos) continue;
      std::string_view rest = std::string_view(line).substr(sp + 1);
      if (rest.rfind("warn ", 0) != 0 && rest.rfind("error ", 0) != 0) continue;
      ++facts.relay_log_warning_count;
      std::string text(rest);
      for (const PhoneSpec& p : phones) {
        for (size_t at; (at = text.find(p.mac)) != std::string::npos;) text.replace(at, 12, "<mac>");
      }
      if (facts.relay_log_warnings.size() < 5 &&
          std::find(facts.relay_log_warnings.begin(), facts.relay_log_warnings.end(), text) ==
              facts.relay_log_warnings.end()) {
        facts.relay_log_warnings.push_back(text);
      }
    }
  }
  facts.fleet_max_rss_kib = SelfMaxRssKib();
  nlohmann::json report = BuildReport(phones, fleet.results(), origin.get(), facts);
  if (origin) origin->Close();
  uv_close(reinterpret_cast<uv_handle_t*>(&sampler), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&deadline), nullptr);
  uv_run(loop, UV_RUN_DEFAULT);

  std::string table = FormatTable(report);
  std::fwrite(table.data(), 1, table.size(), stdout);
  if (!o.json_path.empty()) {
    std::ofstream out(o.json_path);
    out << report.dump(2) << "\n";
    if (!out) SetupError("cannot write " + o.json_path);
  }
  bool passed = RunPassed(report);
  if (own_work && passed && !o.keep_work) {
    std::error_code ec;
    std::filesystem::remove_all(o.work, ec);
  } else if (!o.relay_binary.empty()) {
    std::fprintf(stderr, "phone_fleet: kept %s (relay.toml, relay.log, data/)\n", o.work.c_str());
  }
  return passed ? 0 : 1;
}

}  // namespace
}  // namespace siterelay::fleet

int main(int argc, char** argv) { return siterelay::fleet::Main(argc, argv); }
