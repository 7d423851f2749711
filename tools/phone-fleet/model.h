// The pure parts of phone_fleet (tools/phone-fleet/phone_fleet.cc): the simulated phones, their
// boot sequence, the origin's file tree, the WAN token bucket, option parsing and percentiles.
// No I/O, no clock of their own (times are passed in), no global state: everything here is a
// plain value and may be used from any thread. Unit-tested in model_test.cc.
//
// What a phone is and does follows /work/shared/PHONES.md ("One boot, as captured"), see
// docs/phone-fleet.md. Part numbers and firmware versions below are illustrative: plausible for
// the model, not checked against Poly's catalogue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relay/base/status.h"

namespace siterelay::fleet {

// ---- protocols and models ---------------------------------------------------------------------

enum class Proto { kHttp, kHttps, kTftp, kFtp, kFtps };
constexpr int kProtoCount = 5;
std::string_view ProtoName(Proto p);  // "http", "https", "tftp", "ftp", "ftps"
bool ParseProto(std::string_view name, Proto* out);

struct Model {
  std::string_view name;        // as in the User-Agent: "VVX_500", "Edge_E450"
  std::string_view family;      // the UA's family token: "PolycomVVX", "PolyEdge"
  std::string_view part;        // part number, names the split firmware image
  std::string_view version;     // UC Software version in the UA
  bool serial_in_agent = false;  // "(SN:<mac>)" in the UA, as SoundPoint IP firmware sends it
};
// Every model the fleet knows, in a fixed order (indices are stable).
const std::vector<Model>& Models();
int FindModel(std::string_view name);  // index into Models(), or -1

// ---- weighted mixes ---------------------------------------------------------------------------

// "http=70,https=10,tftp=10" -> {{"http",70},...}. Names are checked by the caller; weights are
// integers 0..1000000, names unique, at least one weight above zero.
Result<std::vector<std::pair<std::string, uint32_t>>> ParseMix(std::string_view text);

// Splits n into counts proportional to `weights` (largest remainder, ties to the earlier entry):
// the counts sum to n exactly, so 24 phones at http=70,ftp=30 are 17 and 7, every run.
std::vector<size_t> Apportion(size_t n, const std::vector<uint32_t>& weights);

// ---- deterministic randomness -----------------------------------------------------------------

// SplitMix64 (Steele, Lea, Flood 2014): small, fast, and the same stream on every machine.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, n); n > 0.
  uint64_t Below(uint64_t n) { return Next() % n; }
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// ---- phones -----------------------------------------------------------------------------------

struct PhoneSpec {
  size_t index = 0;
  std::string mac;         // 12 lower-case hex digits, a Poly prefix (00:04:F2, 48:25:67, 64:16:7F)
  int model = 0;           // index into Models()
  Proto proto = Proto::kHttp;
  bool own_config = false;  // the origin has <mac>.cfg; else 404 and the phone falls back
  double start_s = 0;       // offset from the common start
  size_t boot_log_bytes = 0;
  size_t app_log_bytes = 0;
};

struct FleetShape {
  size_t phones = 0;
  uint64_t seed = 1;
  std::vector<uint32_t> proto_weights;  // by Proto
  std::vector<uint32_t> model_weights;  // by Models() index
  double spread_s = 0;                  // 0 = storm: everyone at once
  uint32_t own_config_percent = 25;     // phones whose <mac>.cfg exists on the origin
};

// The same shape and seed give the same phones, in the same order. MACs are unique. Protocol and
// model counts follow Apportion() exactly and are dealt out in a seeded shuffle, so every class
// has its share at any N. Start offsets are uniform in [0, spread_s).
std::vector<PhoneSpec> MakePhones(const FleetShape& shape);

// `FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application` (PHONES.md "User-Agent").
std::string UserAgent(const PhoneSpec& p, bool updater);

// The phone's log file as it would upload it: `MMDDhhmmss|module|level|00|message` lines
// (PHONES.md "Phone log format"), `bytes` long (the last line cut to fit), deterministic.
std::string PhoneLog(const PhoneSpec& p, bool boot, size_t bytes);

// ---- the boot sequence ------------------------------------------------------------------------

enum class Op { kGet, kHead, kPut };

enum class StepKind {
  kBootLogPut,     // PUT <mac>-boot.log (Type/Updater)
  kMacConfig,      // GET <mac>.cfg; 404 -> kMasterConfig
  kMasterConfig,   // GET 000000000000.cfg, only after a 404 on <mac>.cfg
  kFirmware,       // GET <part>.sip.ld
  kSiteConfig,     // GET site.cfg (the master config's CONFIG_FILES)
  kPhoneConfig,    // GET <mac>-phone.cfg (404 fine)
  kWebConfig,      // GET <mac>-web.cfg (404 fine)
  kLicense,        // GET 000000000000-license.cfg, <mac>-license.cfg (404 fine)
  kDirectory,      // GET <mac>-calls.xml, <mac>-directory.xml, 000000000000-directory.xml (404 fine)
  kAppLogHead,     // HEAD <mac>-app.log (404 fine; not over TFTP, which has no HEAD)
  kAppLogPut,      // PUT <mac>-app.log
};
constexpr int kStepKindCount = 11;
std::string_view StepName(StepKind k);  // "boot_log_put", "mac_cfg", ...

struct Step {
  StepKind kind;
  Op op;
  std::string path;        // no leading '/'
  bool missing_ok = false;  // a 404 (FTP 550, TFTP error 1) is what a phone expects here
  bool fallback = false;    // runs only when the step before it got "missing"
  bool updater = false;     // Type/Updater in the User-Agent
  bool append = false;      // FTP: APPE rather than STOR
};

// The boot of PHONES.md, over `p.proto`. Over TFTP the HEAD is left out (TFTP has no HEAD); over
// FTP a HEAD is SIZE and log uploads are APPE.
std::vector<Step> BootPlan(const PhoneSpec& p);

// ---- the origin's tree ------------------------------------------------------------------------

// The master config every phone falls back to: APP_FILE_PATH="sip.ld", CONFIG_FILES="site.cfg".
std::string MasterConfig();

struct OriginFile {
  std::string path;          // no leading '/'
  std::string small_body;    // the body, for everything but firmware images
  uint64_t pattern_size = 0;  // firmware: generated bytes (PatternBytes), this long
  uint32_t pattern_id = 0;
  bool firmware = false;
};
// The tree the origin emulator serves: the master config, sip.ld and <part>.sip.ld for every
// model (each `firmware_bytes`, each different), sip.ver, site.cfg, the site directory, and
// <mac>.cfg for the phones with own_config. Everything else is 404.
std::vector<OriginFile> OriginTree(const std::vector<PhoneSpec>& phones, uint64_t firmware_bytes);

// Firmware bodies are not stored: byte `offset` of pattern `id` is PatternBlock()[(offset +
// phase(id)) % kPatternBlock], a fixed pseudo-random block, so images differ (the relay's store
// dedups identical ones) and a server can send them without copying. PatternSpan() returns the
// longest contiguous run starting at `offset`, at most `max` bytes.
constexpr size_t kPatternBlock = 1 << 20;
const uint8_t* PatternBlock();
std::pair<const uint8_t*, size_t> PatternSpan(uint32_t id, uint64_t offset, uint64_t max);

// ---- the WAN ----------------------------------------------------------------------------------

// One token bucket for everything the origin sends (the branch's WAN link). A chunk goes through
// while the bucket is not empty and may leave it in debt (as sync/rate_limiter.h does), so the
// long-run rate is exact with chunks of any size and the sender never splits them. rate 0 = no
// limit. `burst`: the most that can be saved up while idle.
class TokenBucket {
 public:
  TokenBucket(double bytes_per_second, double burst_bytes, uint64_t now_ns);
  bool unlimited() const { return rate_ <= 0; }
  // True and charged when the bucket is not empty at `now_ns`.
  bool TryTake(uint64_t now_ns, uint64_t bytes);
  // Nanoseconds from `now_ns` until TryTake can succeed (0 if it can now).
  uint64_t WaitNs(uint64_t now_ns);

 private:
  void Refill(uint64_t now_ns);
  double rate_;
  double burst_;
  double tokens_;
  uint64_t last_ns_;
};

// ---- statistics and options ---------------------------------------------------------------------

// Nearest-rank percentile (p in (0, 100]) of `sorted` (ascending); 0 for an empty set.
double Percentile(const std::vector<double>& sorted, double p);

// "127.0.0.1:0" -> host and port; IPv4 literals only (the fleet is a loopback tool).
Result<std::pair<std::string, uint16_t>> ParseHostPort(std::string_view text);

// A non-negative decimal number ("30", "0.5"); false on anything else.
bool ParseNumber(std::string_view text, double* out);

}  // namespace siterelay::fleet
