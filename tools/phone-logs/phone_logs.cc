// phone_logs: a fast, deterministic generator of Poly desk phone logs, and the zstd measurement
// that tools/bench/logs.sh runs on them.
//
// The relay ships the phones' log lines upstream as zstd-compressed NDJSON batches (CONTRACT.md,
// "Upstream formats", "Log batches"). How well that compresses, and whether a dictionary pays,
// depends on what the lines look like, so this tool writes lines the way PHONES.md ("Phone log
// format") shows them: `MMDDhhmmss|module|level|00|message` in the app log, `hhmmss.mmm|...` in
// the boot log, module names padded to five characters, levels 0-5, continuation lines without a
// `|` prefix (SIP message dumps), `****` for passwords in URLs. What they say follows one
// simulated site: a relay that phones provision from over one protocol, a PBX, NTP and DNS
// servers, a voice VLAN, a few phone models with their part numbers and firmware, extensions
// with names. Each phone runs its own timers (registration refresh, provisioning poll, calls in
// business hours, BLF notifications, DHCP renewal, SNTP, log upload, chronic errors such as a
// DNS failure or an untrusted certificate that repeat every few minutes, reboots, and one
// site-wide power cut), so messages repeat the way they do on real phones and vary in their
// counters, addresses, Call-IDs and nonces. A few phones log at debug level (SIP dumps, curl
// headers, LLDP): as on a real site, they produce a large share of the bytes.
//
// Everything follows from --seed (the event stream) and --site (names, addresses, models;
// default: the seed): the same arguments give the same bytes on every machine.
//
// Modes (all write complete lines; --help for the details):
//   --out DIR      DIR/<mac>-app.log and DIR/<mac>-boot.log for --phones phones, about --bytes
//                  in all, each phone from its first boot on.
//   --ndjson       the records a relay would batch, to stdout: phones upload their new lines
//                  every period (and at boot), each upload's lines stay together, interleaved
//                  with the other phones' uploads; seq counts records from 0; received is the
//                  upload's time in RFC 3339 UTC with milliseconds, the same for all lines of one
//                  upload and never decreasing.
//   --compress-bench LEVEL  reads NDJSON on stdin, cuts batches of at most --batch-bytes on line
//                  boundaries (like the relay), compresses each as one zstd frame (content size
//                  and checksum in the frame header, as `zstd` writes them; with --dict, a
//                  prepared dictionary), checks each frame decompresses to its batch, and prints
//                  one key=value line: bytes, ratio and MB/s (10^6 bytes of input per second of
//                  this thread's CPU time spent in ZSTD_compress2, and per second of wall time).
//
// Single-threaded. Usage and I/O errors print one line and exit 2.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace siterelay::phone_logs {
namespace {

constexpr int64_t kSecond = 1000;  // all times are milliseconds
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kNever = INT64_MAX;
constexpr size_t kFlushBytes = 4 << 20;  // output is written in pieces of about this size

constexpr std::string_view kUsage = R"(usage:
  phone_logs --out DIR [--phones N] [--bytes B] [--seed S] [--site S]
  phone_logs --ndjson [--relay R] [--phones N] [--bytes B] [--seed S] [--site S]
  phone_logs --compress-bench LEVEL [--dict FILE] [--batch-bytes B] [--frames-out FILE] < NDJSON

  --out DIR           write DIR/<mac>-app.log and DIR/<mac>-boot.log (DIR is created)
  --ndjson            write CONTRACT.md log-batch records to stdout, one per line
  --phones N          phones on the site (default 300)
  --bytes B           about this many bytes in all, never more in --ndjson (default 64M);
                      B may end in K, M or G (powers of 1024)
  --seed S            seeds the events (default 1)
  --site S            seeds the site: names, addresses, models (default: the seed)
  --relay R           the records' "relay" (default branch-042)
  --compress-bench L  compress NDJSON from stdin in batches, one zstd frame each, at level L
  --dict FILE         ... with this zstd dictionary
  --batch-bytes B     ... of at most B bytes of whole lines (default 1M, as logs.batch_bytes)
  --frames-out FILE   ... and write the frames there, one after the other, for `zstd -d`
Exit: 0 done; 2 usage error or failed I/O (one line on stderr).
)";

[[noreturn]] void Die(std::string_view what) {
  std::fprintf(stderr, "phone_logs: %.*s\n", static_cast<int>(what.size()), what.data());
  std::exit(2);
}

// ---- random numbers -----------------------------------------------------------------------------

// ln(x) for x > 0 from frexp, +, -, * and / only: every step is exact or correctly rounded by
// IEEE 754, so the generated bytes do not depend on the C library's log (which may differ in the
// last bit between libm versions and CPUs). ln(m * 2^e) = e ln 2 + 2 atanh((m - 1) / (m + 1)),
// with m in [sqrt(1/2), sqrt(2)), where the atanh series has converged after 20 terms.
double Ln(double x) {
  int e = 0;
  double m = std::frexp(x, &e);
  if (m < 0.70710678118654752) {
    m *= 2;
    --e;
  }
  const double t = (m - 1) / (m + 1);
  const double t2 = t * t;
  double sum = 0, term = t;
  for (int k = 1; k < 40; k += 2) {
    sum += term / k;
    term *= t2;
  }
  return 2 * sum + e * 0.69314718055994531;
}

// xoshiro256** seeded through splitmix64: fast, and the same sequence on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& word : s_) word = SplitMix(seed);
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n), n < 2^32 (Lemire's multiply-shift, without the rejection step: the bias
  // is below 2^-32 for the small n used here).
  uint32_t Below(uint64_t n) { return static_cast<uint32_t>(((Next() >> 32) * n) >> 32); }
  int64_t Range(int64_t lo, int64_t hi) {  // inclusive
    return lo + static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  bool Chance(double p) { return Unit() < p; }
  // Exponentially distributed, mean `mean`: the gaps between independent events.
  int64_t Exp(int64_t mean) {
    return static_cast<int64_t>(-static_cast<double>(mean) * Ln(1 - Unit()));
  }
  template <typename T, size_t N>
  const T& Pick(const T (&items)[N]) {
    return items[Below(N)];
  }
  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[Below(items.size())];
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t SplitMix(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }
  uint64_t s_[4];
};

// A stable 64-bit hash of a name and a seed (FNV-1a, then mixed): sizes and tags that must be
// the same every time a phone asks for the same file.
uint64_t Hash(std::string_view s, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325 ^ seed;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccd;
  return h ^ (h >> 33);
}

// ---- text ---------------------------------------------------------------------------------------

// Pieces appended by Cat(): numbers are formatted here, without printf, for speed.
struct Dec {
  uint64_t v;
};
struct Dec0 {  // zero-padded to width
  uint64_t v;
  int width;
};
struct Hex {  // lower-case, zero-padded to digits
  uint64_t v;
  int digits;
};
struct HexUp {  // upper-case, zero-padded to digits
  uint64_t v;
  int digits;
};
struct Ip {
  uint32_t v;
};
struct Signed {
  int64_t v;
};

void Put(std::string& s, std::string_view v) { s.append(v); }
void Put(std::string& s, char c) { s.push_back(c); }
void Put(std::string& s, Dec d) {
  char buf[20];
  auto r = std::to_chars(buf, buf + sizeof buf, d.v);
  s.append(buf, r.ptr);
}
void Put(std::string& s, Signed d) {
  if (d.v >= 0) s.push_back('+');
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, d.v);
  s.append(buf, r.ptr);
}
void Put(std::string& s, Dec0 d) {
  char buf[20];
  auto r = std::to_chars(buf, buf + sizeof buf, d.v);
  for (auto n = r.ptr - buf; n < d.width; ++n) s.push_back('0');
  s.append(buf, r.ptr);
}
void PutHex(std::string& s, uint64_t v, int digits, const char* alphabet) {
  char buf[16];
  for (int i = digits - 1; i >= 0; --i) {
    buf[i] = alphabet[v & 15];
    v >>= 4;
  }
  s.append(buf, static_cast<size_t>(digits));
}
void Put(std::string& s, Hex h) { PutHex(s, h.v, h.digits, "0123456789abcdef"); }
void Put(std::string& s, HexUp h) { PutHex(s, h.v, h.digits, "0123456789ABCDEF"); }
void Put(std::string& s, Ip ip) {
  Put(s, Dec{ip.v >> 24});
  s.push_back('.');
  Put(s, Dec{(ip.v >> 16) & 255});
  s.push_back('.');
  Put(s, Dec{(ip.v >> 8) & 255});
  s.push_back('.');
  Put(s, Dec{ip.v & 255});
}

template <typename... Parts>
void Cat(std::string& s, const Parts&... parts) {
  (Put(s, parts), ...);
}
template <typename... Parts>
std::string Str(const Parts&... parts) {
  std::string s;
  Cat(s, parts...);
  return s;
}

// ---- calendar -----------------------------------------------------------------------------------

// Days since 1970-01-01 to year, month, day (H. Hinnant's civil_from_days), and back.
struct Civil {
  int64_t year;
  unsigned month, day;
};
Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0), m, d};
}
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

// "2025-03-03T06:00:00.123Z" for a UTC time in ms.
void PutRfc3339(std::string& s, int64_t utc_ms) {
  const int64_t days = FloorDiv(utc_ms, kDay);
  const int64_t ms = utc_ms - days * kDay;
  const Civil c = CivilFromDays(days);
  Cat(s, Dec0{static_cast<uint64_t>(c.year), 4}, '-', Dec0{c.month, 2}, '-', Dec0{c.day, 2}, 'T',
      Dec0{static_cast<uint64_t>(ms / kHour), 2}, ':',
      Dec0{static_cast<uint64_t>(ms / kMinute % 60), 2}, ':',
      Dec0{static_cast<uint64_t>(ms / kSecond % 60), 2}, '.',
      Dec0{static_cast<uint64_t>(ms % kSecond), 3}, 'Z');
}

// ---- the site -----------------------------------------------------------------------------------

// A phone model: how it names itself in the User-Agent (PHONES.md "User-Agent"), its part number
// (the firmware image is <part>.sip.ld), the MAC prefix its maker used, its firmware.
struct Model {
  std::string_view ua;  // "PolycomVVX-VVX_500": Polycom<Family>-<Family>_<Model>
  std::string_view name;
  std::string_view part;
  uint32_t mac_prefix;
  std::string_view firmware;
  bool conference;
};
constexpr Model kModels[] = {
    {"PolycomVVX-VVX_300", "VVX 300", "3111-46135-002", 0x0004f2, "5.9.7.3480", false},
    {"PolycomVVX-VVX_310", "VVX 310", "3111-46161-001", 0x0004f2, "5.9.7.3480", false},
    {"PolycomVVX-VVX_400", "VVX 400", "3111-46157-002", 0x0004f2, "5.9.7.3480", false},
    {"PolycomVVX-VVX_410", "VVX 410", "3111-46162-001", 0x0004f2, "5.9.7.3480", false},
    {"PolycomVVX-VVX_411", "VVX 411", "3111-48450-001", 0x64167f, "6.4.3.4067", false},
    {"PolycomVVX-VVX_500", "VVX 500", "3111-44500-001", 0x0004f2, "5.9.7.3480", false},
    {"PolycomVVX-VVX_501", "VVX 501", "3111-48500-001", 0x64167f, "6.4.3.4067", false},
    {"PolycomVVX-VVX_600", "VVX 600", "3111-44600-001", 0x0004f2, "5.9.7.3480", false},
    {"PolycomVVX-VVX_601", "VVX 601", "3111-48600-001", 0x64167f, "6.4.3.4067", false},
    {"PolycomVVX-VVX_250", "VVX 250", "3111-48820-001", 0x64167f, "6.4.5.1007", false},
    {"PolycomVVX-VVX_350", "VVX 350", "3111-48830-001", 0x64167f, "6.4.5.1007", false},
    {"PolycomVVX-VVX_450", "VVX 450", "3111-48840-001", 0x64167f, "6.4.5.1007", false},
    {"PolycomSoundPointIP-SPIP_331", "SoundPoint IP 331", "2345-12365-001", 0x0004f2, "4.0.15.1047",
     false},
    {"PolycomSoundPointIP-SPIP_550", "SoundPoint IP 550", "2345-12500-001", 0x0004f2, "4.0.15.1047",
     false},
    {"PolycomSoundPointIP-SPIP_650", "SoundPoint IP 650", "2345-12600-001", 0x0004f2, "4.0.15.1047",
     false},
    {"PolycomRealPresenceTrio-Trio_8800", "RealPresence Trio 8800", "3111-65290-001", 0x64167f,
     "7.2.4.0123", true},
    {"PolyEdge-Edge_E350", "Edge E350", "2200-87815-001", 0x482567, "8.0.2.3412", false},
    {"PolyEdge-Edge_E450", "Edge E450", "2200-87820-001", 0x482567, "8.0.2.3412", false},
    {"PolyCCX-CCX_500", "CCX 500", "2200-49720-001", 0x482567, "8.1.3.2145", false},
};

constexpr std::string_view kCompanies[] = {
    "acme",      "northwind",  "fabrikam",  "globex",   "initech",   "tailspin", "wingtip",
    "litware",   "adatum",     "woodgrove", "lakeside", "riverbend", "summit",   "harbor",
    "pinecrest", "sbaierhome", "meridian",  "bluefin",  "stonegate", "redwood"};
constexpr std::string_view kTlds[] = {".local",    ".lan",      ".corp", ".lab",
                                      ".internal", "-corp.com", ".net",  ".org"};
constexpr std::string_view kFirstNames[] = {
    "Alice", "Bob",   "Carol", "David",  "Emma",  "Frank",  "Grace",  "Henry", "Irene",
    "Jack",  "Karen", "Liam",  "Maria",  "Noah",  "Olivia", "Paul",   "Quinn", "Rosa",
    "Sam",   "Tina",  "Uma",   "Victor", "Wendy", "Xavier", "Yara",   "Zoe",   "Ahmed",
    "Priya", "Chen",  "Sofia", "Lukas",  "Mei",   "Jürgen", "Siobhán"};
constexpr std::string_view kLastNames[] = {
    "Smith",  "Jones",    "Garcia", "Miller",  "Davis", "Brown",  "Wilson",  "Moore",
    "Taylor", "Anderson", "Thomas", "Jackson", "White", "Harris", "Martin",  "Thompson",
    "Lopez",  "Lee",      "Walker", "Hall",    "Young", "King",   "Wright",  "Scott",
    "Green",  "Baker",    "Adams",  "Nelson",  "Hill",  "Müller", "O'Brien", "Nguyen"};
constexpr std::string_view kSwitches[] = {"sw-acc-01", "sw-acc-02", "sw-acc-03", "sw-acc-04",
                                          "sw-flr2-a", "sw-flr2-b", "sw-flr3-a", "sw-core-01"};

struct Site {
  uint64_t seed;
  std::string domain;       // acme.local
  std::string realm;        // SIP digest realm
  std::string prov_scheme;  // https, http, ftp or tftp
  std::string prov_host;    // how the phones name the relay: a host name or an address
  uint32_t prov_ip = 0;
  std::string prov_url;   // the provisioning URL as the phone logs it: password as ****
  std::string prov_dhcp;  // the same as DHCP hands it out (the phone logs it as it is)
  std::string prov_user;  // for Basic auth; "PlcmSpIp" or DOMAIN\user
  std::string pbx_host;
  uint32_t pbx_ip = 0;
  uint16_t sip_port = 5060;
  std::string sip_transport;  // UDP, TCP or TLS
  std::string ntp_host;
  uint32_t ntp_ip = 0;
  uint32_t dns1 = 0, dns2 = 0, gateway = 0, subnet = 0, prefix_len = 22;
  int vlan = 0;
  std::string ldap_host;
  uint32_t ldap_ip = 0;
  std::string intranet_host;  // the microbrowser's idle page
  std::string stale_host;     // a name that no longer resolves, still in some phones' config
  std::string ftps_host;      // an FTPS server with a certificate the phones do not trust
  std::string ews_host;       // Exchange autodiscover
  std::vector<std::string> site_cfgs;   // CONFIG_FILES of the master file
  std::vector<std::string> bad_params;  // parameters every phone warns about at each load
  int64_t tz_ms = 0;                    // local time - UTC
  int64_t reg_expires = 3600 * kSecond;
  int64_t poll_period = kDay;
  int64_t upload_period = kHour;
  int64_t lease = kDay;
  uint32_t ext_base = 2000;
  std::vector<const Model*> models;
  std::vector<uint32_t> model_weights;
  int64_t start = 0;      // UTC ms of the first event
  int64_t power_cut = 0;  // UTC ms: every phone reboots within seconds

  std::string NameOf(uint32_t ext) const {
    const uint64_t h = Hash(std::to_string(ext), seed);
    return Str(kFirstNames[h % std::size(kFirstNames)], ' ',
               kLastNames[(h >> 20) % std::size(kLastNames)]);
  }
};

Site MakeSite(uint64_t seed, uint32_t phones) {
  Rng rng(seed ^ 0x517e517e517e517eULL);
  Site s;
  s.seed = seed;
  const std::string_view company = rng.Pick(kCompanies);
  s.domain = Str(company, rng.Pick(kTlds));
  s.realm = rng.Chance(0.5) ? s.domain : std::string("BroadWorks");
  const uint32_t net = (10u << 24) | (static_cast<uint32_t>(rng.Range(1, 250)) << 16);
  s.subnet = net | (static_cast<uint32_t>(rng.Range(1, 60) * 4) << 8);
  s.prefix_len = phones > 900 ? 21 : 22;
  s.gateway = s.subnet | 1;
  s.vlan = static_cast<int>(rng.Range(2, 40) * 10);
  s.dns1 = net | 2;
  s.dns2 = net | 3;
  s.prov_ip = net | 10;
  s.pbx_ip = net | static_cast<uint32_t>(rng.Range(20, 40));
  s.ntp_ip = net | 2;
  s.ldap_ip = net | 5;
  const double p = rng.Unit();
  s.prov_scheme = p < 0.45 ? "https" : p < 0.7 ? "http" : p < 0.92 ? "ftp" : "tftp";
  const bool by_name = s.prov_scheme != "tftp" && rng.Chance(0.7);
  s.prov_host =
      by_name ? Str(rng.Chance(0.5) ? "relay" : "prov", '.', s.domain) : Str(Ip{s.prov_ip});
  if (rng.Chance(0.2)) {
    // PHONES.md: DOMAIN\user Basic credentials occur, written %5C in the URL.
    s.prov_user = Str(s.domain.substr(0, s.domain.find_first_of(".-")), "\\ftpuser");
  } else {
    s.prov_user = "PlcmSpIp";
  }
  std::string url_user = s.prov_user;
  if (auto slash = url_user.find('\\'); slash != std::string::npos) {
    url_user.replace(slash, 1, "%5C");
  }
  std::string port;
  if (s.prov_scheme == "https") port = rng.Chance(0.7) ? ":8443" : "";
  if (s.prov_scheme == "tftp") {
    s.prov_url = Str("tftp://", s.prov_host, '/');
    s.prov_dhcp = s.prov_url;
  } else {
    s.prov_url = Str(s.prov_scheme, "://", url_user, ":****@", s.prov_host, port, '/');
    s.prov_dhcp =
        Str(s.prov_scheme, "://", url_user, ':', s.prov_user == "PlcmSpIp" ? "PlcmSpIp" : "Ph0nes!",
            '@', s.prov_host, port, '/');
  }
  s.pbx_host = Str(
      rng.Pick({std::string_view("pbx01"), std::string_view("sip"), std::string_view("cucm-pub"),
                std::string_view("asterisk"), std::string_view("bw-as1")}),
      '.', s.domain);
  const double t = rng.Unit();
  s.sip_transport = t < 0.6 ? "UDP" : t < 0.8 ? "TCP" : "TLS";
  s.sip_port = s.sip_transport == "TLS" ? 5061 : 5060;
  s.ntp_host = rng.Chance(0.6) ? Str("ntp.", s.domain) : std::string("pool.ntp.org");
  s.ldap_host = Str("ldap.", s.domain);
  s.intranet_host = Str("intranet.", s.domain);
  s.stale_host = Str(rng.Chance(0.5) ? "oldprov." : "pbx-legacy.", s.domain);
  s.ftps_host = Str("ftps.", s.domain);
  s.ews_host = Str("autodiscover.", s.domain.substr(0, s.domain.find_first_of(".-")), ".com");
  s.site_cfgs = {"site.cfg", "features.cfg"};
  if (rng.Chance(0.5)) s.site_cfgs.emplace_back("sip-interop.cfg");
  if (rng.Chance(0.3)) s.site_cfgs.emplace_back("directory.cfg");
  constexpr std::string_view kBadParams[] = {"feature.enhancedFeatureKeys.enabled",
                                             "voIpProt.SIP.specialEvent.checkSync.alwaysReboot",
                                             "up.oneTouchVoiceMail",
                                             "reg.1.lineKeys",
                                             "tcpIpApp.sntp.gmtOffset",
                                             "device.sntp.serverName",
                                             "call.callWaiting.ring",
                                             "feature.presence.enabled",
                                             "softkey.feature.doNotDisturb",
                                             "lcl.ml.lang"};
  for (int i = 0; i < 3; ++i) s.bad_params.emplace_back(rng.Pick(kBadParams));
  constexpr int64_t kTzHours[] = {-8, -7, -6, -5, -5, -5, 0, 1, 1, 2, 10};
  s.tz_ms = rng.Pick(kTzHours) * kHour;
  constexpr int64_t kExpires[] = {300, 600, 1800, 3600, 3600};
  s.reg_expires = rng.Pick(kExpires) * kSecond;
  s.poll_period = rng.Chance(0.4) ? kHour * 6 : kDay;
  s.upload_period = rng.Chance(0.6) ? kHour : 30 * kMinute;
  s.lease = rng.Chance(0.5) ? kDay : 8 * kHour;
  s.ext_base = static_cast<uint32_t>(rng.Range(2, 7) * 1000);
  // A site runs a handful of models, one of them mostly.
  const size_t n_models = static_cast<size_t>(rng.Range(3, 6));
  while (s.models.size() < n_models) {
    const Model* m = &rng.Pick(kModels);
    if (std::find(s.models.begin(), s.models.end(), m) != s.models.end()) continue;
    s.models.push_back(m);
    s.model_weights.push_back(s.models.size() == 1 ? 10u : m->conference ? 1u : 3u);
  }
  // Monday 2025-03-03, 05:00 local time, plus a whole number of weeks from the seed.
  s.start = DaysFromCivil(2025, 3, 3) * kDay + 5 * kHour - s.tz_ms +
            static_cast<int64_t>(seed % 40) * 7 * kDay;
  // The first night at 01:00-03:59 local: the lights go out and every phone boots at once.
  s.power_cut = s.start + 20 * kHour + rng.Range(0, 3 * kHour);
  return s;
}

// ---- a phone ------------------------------------------------------------------------------------

constexpr std::string_view kSo = "so   ", kSip = "sip  ", kCopy = "copy ", kCurl = "curl ",
                           kDhcpc = "dhcpc", kCfg = "cfg  ", kApp1 = "app1 ", kSntp = "sntp ",
                           kDns = "dns  ", kLldp = "lldp ", kEthf = "ethf ", kEc = "ec   ",
                           kPgui = "pgui ", kKey = "key  ", kUsb = "usb  ", kLdap = "ldap ",
                           kCert = "cert ", kRes = "res  ", kWmgr = "wmgr ", kNet = "net  ",
                           kLic = "lic  ", kPres = "pres ", kBs = "bs   ";

enum class Role { kDesk, kBusy, kReception, kLobby, kConference };
enum class File { kApp, kBoot };

// Why a phone restarts; the first is the site-wide power cut.
constexpr std::string_view kRebootReasons[] = {"Power-on", "Reboot by user", "Configuration change",
                                               "Watchdog", "Provisioning server request"};

class Phone {
 public:
  enum Timer {
    kRegisterTimer,
    kBlfTimer,
    kCallTimer,
    kCallEndTimer,
    kPollTimer,
    kUploadTimer,
    kDhcpTimer,
    kSntpTimer,
    kMiscTimer,
    kChronicTimer,
    kLldpTimer,
    kRebootTimer,
    kPowerCutTimer,
    kTimerCount
  };

  Phone(const Site& site, uint32_t index, uint64_t seed, std::unordered_set<uint32_t>& macs)
      : site_(site), rng_(seed * 0x2545f4914f6cdd1dULL + index) {
    Rng srng(site.seed * 0x9e3779b97f4a7c15ULL + index);  // who the phone is: from the site
    uint32_t total = 0;
    for (uint32_t w : site.model_weights) total += w;
    uint32_t pick = srng.Below(total);
    size_t m = 0;
    while (pick >= site.model_weights[m]) pick -= site.model_weights[m++];
    model_ = site.models[m];
    uint32_t low;
    do {
      low = srng.Below(1u << 24);
    } while (!macs.insert(((model_->mac_prefix & 0xffu) << 24) | low).second);
    mac_ = Str(Hex{(static_cast<uint64_t>(model_->mac_prefix) << 24) | low, 12});
    ip_ = site.subnet + 20 + index;
    ext_ = site.ext_base + 100 + index;
    user_ = std::to_string(ext_);
    name_ = site.NameOf(ext_);
    const double r = srng.Unit();
    role_ = model_->conference ? Role::kConference
            : r < 0.06         ? Role::kReception
            : r < 0.25         ? Role::kBusy
            : r < 0.33         ? Role::kLobby
                               : Role::kDesk;
    lines_ = role_ == Role::kReception ? 2 : srng.Chance(0.15) ? 2 : 1;
    if (role_ == Role::kReception) {
      const auto n = srng.Range(12, 40);
      for (int64_t i = 0; i < n; ++i) blf_.push_back(site.ext_base + 100 + srng.Below(400));
    }
    // An admin chasing a problem turned up some modules' levels on a few phones.
    debug_sip_ = srng.Chance(0.04);
    debug_curl_ = srng.Chance(0.12);
    debug_net_ = srng.Chance(0.02);
    debug_ui_ = srng.Chance(0.05);
    // Chronic problems: configuration that points somewhere broken, logged again and again.
    if (srng.Chance(0.45)) chronic_ = static_cast<int>(srng.Below(6));
    chronic_period_ = srng.Range(1, 15) * kMinute;
    headset_ = srng.Chance(0.3);
  }

  const std::string& mac() const { return mac_; }
  int64_t now() const { return now_; }
  double Weight() const {  // share of the site's log bytes, roughly
    double w = role_ == Role::kBusy         ? 2.5
               : role_ == Role::kReception  ? 3.0
               : role_ == Role::kLobby      ? 0.4
               : role_ == Role::kConference ? 0.8
                                            : 1.0;
    if (debug_sip_) w *= 6;
    if (debug_curl_) w *= 1.5;
    if (debug_net_) w *= 1.5;
    return w;
  }

  // The phone boots at `t` (file mode: its log starts with its first boot).
  void StartWithBoot(int64_t t) {
    now_ = t;
    next_.fill(kNever);
    next_[kPowerCutTimer] = site_.power_cut;
    Reboot(rng_.Pick(kRebootReasons));
  }
  // The phone has been up for a while at `t` (NDJSON mode: the relay starts mid-stream).
  void StartRunning(int64_t t) {
    now_ = t;
    boot_at_ = t - rng_.Range(kHour, 20 * kDay);
    clock_valid_ = true;
    next_.fill(kNever);
    next_[kPowerCutTimer] = site_.power_cut;
    ScheduleRunning(true);
  }

  int64_t NextTime() const { return *std::min_element(next_.begin(), next_.end()); }

  // Runs the earliest timer. Returns true when it was an upload: the caller takes app_ and
  // boot_ (what the phone PUTs now) and then calls Uploaded().
  bool Step() {
    const auto timer =
        static_cast<Timer>(std::min_element(next_.begin(), next_.end()) - next_.begin());
    now_ = std::max(now_, next_[timer]);
    switch (timer) {
      case kRegisterTimer:
        Register();
        break;
      case kBlfTimer:
        BlfNotify();
        break;
      case kCallTimer:
        CallStart();
        break;
      case kCallEndTimer:
        CallEnd();
        break;
      case kPollTimer:
        Poll();
        break;
      case kUploadTimer:
        next_[kUploadTimer] = kNever;
        return true;
      case kDhcpTimer:
        DhcpRenew();
        break;
      case kSntpTimer:
        Sntp();
        break;
      case kMiscTimer:
        Misc();
        break;
      case kChronicTimer:
        Chronic();
        break;
      case kLldpTimer:
        Lldp();
        break;
      case kRebootTimer:  // any reason but the power cut's
        Reboot(kRebootReasons[1 + rng_.Below(std::size(kRebootReasons) - 1)]);
        break;
      case kPowerCutTimer:
        next_[kPowerCutTimer] = kNever;
        now_ += rng_.Range(0, 5 * kSecond);  // power comes back; the phones boot within seconds
        Reboot(kRebootReasons[0]);
        break;
      case kTimerCount:
        break;
    }
    return false;
  }

  // After the caller took the pending lines: the phone logs the upload's outcome.
  void Uploaded(uint64_t app_bytes) {
    uploaded_ += app_bytes;
    Tick(80, 900);
    if (rng_.Chance(0.01)) {
      Log(File::kApp, kCopy, 4, "Upload of '", mac_, "-app.log' to '", site_.prov_url,
          "' failed: timeout after 30 s, will retry");
    } else {
      Log(File::kApp, kCopy, 3, "Upload of '", mac_, "-app.log' to '", site_.prov_url,
          "' succeeded, ", Dec{app_bytes}, " bytes (", Dec{uploaded_}, " since boot)");
    }
    next_[kUploadTimer] = now_ + site_.upload_period + rng_.Range(-kMinute, kMinute);
  }

  std::string app_;   // app log lines not yet uploaded
  std::string boot_;  // boot log lines not yet uploaded

 private:
  // ---- lines ----

  void Tick(int64_t lo_ms, int64_t hi_ms) { now_ += rng_.Range(lo_ms, hi_ms); }

  // `MMDDhhmmss|` in local time; before the first SNTP answer after a boot the phone counts from
  // January 1st, 00:00:00 (the uptime), as real phones do.
  void StampApp() {
    // The cache is reset whenever clock_valid_ changes, so the two kinds of seconds never meet.
    const int64_t sec =
        clock_valid_ ? FloorDiv(now_ + site_.tz_ms, kSecond) : (now_ - boot_at_) / kSecond;
    if (sec != stamp_sec_) {
      stamp_sec_ = sec;
      int64_t days;
      unsigned month, day;
      int64_t sod;
      if (clock_valid_) {
        days = FloorDiv(sec, 86400);
        const Civil c = CivilFromDays(days);
        month = c.month;
        day = c.day;
        sod = sec - days * 86400;
      } else {
        days = sec / 86400;
        month = 1;
        day = static_cast<unsigned>(1 + std::min<int64_t>(days, 30));
        sod = sec - days * 86400;
      }
      stamp_.clear();
      Cat(stamp_, Dec0{month, 2}, Dec0{day, 2}, Dec0{static_cast<uint64_t>(sod / 3600), 2},
          Dec0{static_cast<uint64_t>(sod / 60 % 60), 2}, Dec0{static_cast<uint64_t>(sod % 60), 2});
    }
    app_.append(stamp_);
  }
  // `hhmmss.mmm|`: uptime until the boot has an address (and time), local time after.
  void StampBoot() {
    const int64_t ms = boot_clock_
                           ? (now_ + site_.tz_ms) - FloorDiv(now_ + site_.tz_ms, kDay) * kDay
                           : now_ - boot_at_;
    Cat(boot_, Dec0{static_cast<uint64_t>(ms / kHour % 24), 2},
        Dec0{static_cast<uint64_t>(ms / kMinute % 60), 2},
        Dec0{static_cast<uint64_t>(ms / kSecond % 60), 2}, '.',
        Dec0{static_cast<uint64_t>(ms % kSecond), 3});
  }

  template <typename... Parts>
  void Log(File f, std::string_view module, int level, const Parts&... parts) {
    std::string& s = f == File::kApp ? app_ : boot_;
    if (f == File::kApp) {
      StampApp();
    } else {
      StampBoot();
    }
    s.push_back('|');
    s.append(module);
    s.push_back('|');
    s.push_back(static_cast<char>('0' + level));
    s.append("|00|");
    Cat(s, parts...);
    s.push_back('\n');
  }
  // A continuation line: no prefix (PHONES.md: "a continuation line has no `|` prefix").
  template <typename... Parts>
  void Cont(const Parts&... parts) {
    Cat(app_, parts...);
    app_.push_back('\n');
  }

  // ---- provisioning ----

  uint64_t FileSize(std::string_view file) const { return 400 + Hash(file, site_.seed) % 24000; }

  // One file fetched from the relay, logged the way the copy and curl modules do (PHONES.md
  // excerpt). status: 200, 304 or 404.
  void Fetch(File f, std::string_view file, int status) {
    Log(f, kCopy, 3, '\'', site_.prov_url, file, "' from '", site_.prov_host, '(',
        Ip{site_.prov_ip}, ")'");
    Tick(2, 30);
    const bool debug = debug_curl_;
    if (debug) {
      Log(f, kCopy, 1, "performCurl : ipAddress = ", Ip{site_.prov_ip},
          ", connTimeout = 16, respCode =0, numAddress = 1");
    }
    const std::string_view scheme = site_.prov_scheme;
    if (scheme == "tftp") {
      if (debug) Log(f, kCurl, 1, "Connected for receive");
      Tick(20, 400);
      if (status == 404) {
        Log(f, kCurl, 3, "TFTP response: File not found");
        Log(f, kCopy, 4, "Unable to get file '", file, "' (TFTP file not found)");
      } else if (debug) {
        Log(f, kCurl, 1, "Received ", Dec{FileSize(file)}, " bytes in ",
            Dec{FileSize(file) / 512 + 1}, " blocks");
      }
      return;
    }
    const uint16_t port = scheme == "ftp"                                      ? 21
                          : scheme == "http"                                   ? 80
                          : site_.prov_url.find(":8443/") != std::string::npos ? 8443
                                                                               : 443;
    Log(f, kCurl, 3, "Connected to ", site_.prov_host, " (", Ip{site_.prov_ip}, ") port ",
        Dec{port}, " (#0)");
    if (scheme == "https") {
      Log(f, kCurl, 3, "SSL connection using ",
          model_->firmware[0] == '4' ? "AES256-SHA" : "ECDHE-RSA-AES256-GCM-SHA384");
    }
    if (scheme == "ftp") {
      if (debug) {
        Log(f, kCurl, 1, "< 220 siterelay FTP ready");
        Log(f, kCurl, 1, "> USER ", site_.prov_user);
        Log(f, kCurl, 1, "< 331 Password required");
        Log(f, kCurl, 1, "> PASS ****");
        Log(f, kCurl, 1, "< 230 Logged in");
        Log(f, kCurl, 1, "> EPSV");
        Log(f, kCurl, 1, "< 229 Entering Extended Passive Mode (|||", Dec{50000 + rng_.Below(101)},
            "|)");
        Log(f, kCurl, 1, "> RETR ", file);
      }
      Tick(5, 80);
      if (status == 404) {
        Log(f, kCurl, 1, "< 550 No such file");
        Log(f, kCopy, 4, "Unable to get file '", file, "' (FTP response code 550)");
      } else if (debug) {
        Log(f, kCurl, 1, "< 150 Opening BINARY mode data connection (", Dec{FileSize(file)},
            " bytes)");
        Log(f, kCurl, 1, "< 226 Transfer complete");
      }
      return;
    }
    Log(f, kCurl, 3, "Server auth using Basic with user '", site_.prov_user, '\'');
    if (debug) {
      Log(f, kCurl, 1, "HEADER_OUT: GET /", file, " HTTP/1.1");
      Log(f, kCurl, 1, "HEADER_OUT: User-Agent: FileTransport ", model_->ua, "-UA/",
          model_->firmware, " Type/", f == File::kBoot ? "Updater" : "Application");
      if (status == 304) {
        Log(f, kCurl, 1, "HEADER_OUT: If-Modified-Since: Mon, 24 Feb 2025 ",
            Dec0{Hash(file, site_.seed) % 24, 2}, ":12:07 GMT");
      }
    }
    Tick(3, 60);
    if (debug || status != 200) {
      Log(f, kCurl, 1, "HEADER_IN : HTTP/1.1 ",
          status == 200   ? "200 OK"
          : status == 304 ? "304 Not Modified"
                          : "404 Not Found");
    }
    if (debug && status == 200) {
      Log(f, kCurl, 1, "HEADER_IN : Content-Length: ", Dec{FileSize(file)});
      Log(f, kCurl, 1, "HEADER_IN : ETag: \"", Hex{Hash(file, site_.seed), 16}, '"');
    }
    if (status == 404) {
      Log(f, kCopy, 4, "Unable to get file '", file, "' (HTTP response code 404)");
    }
    if (debug) Log(f, kCurl, 3, "Connection #0 to host ", site_.prov_host, " left intact");
  }

  void LoadConfig(File f, bool at_boot) {
    const std::string master = Str(mac_, ".cfg");
    const bool own_master = Hash(mac_, site_.seed) % 10 == 0;
    Fetch(f, master, own_master ? 200 : 404);
    if (!own_master) Fetch(f, "000000000000.cfg", at_boot ? 200 : 304);
    for (const auto& cfg : site_.site_cfgs) Fetch(f, cfg, at_boot ? 200 : 304);
    if (at_boot) {
      Fetch(f, Str(mac_, "-phone.cfg"), Hash(mac_, 7) % 3 == 0 ? 200 : 404);
      Fetch(f, Str(mac_, "-web.cfg"), Hash(mac_, 8) % 4 == 0 ? 200 : 404);
    }
  }

  void ParamWarnings() {
    for (const auto& p : site_.bad_params) {
      Log(File::kApp, kCfg, 4, "Prm|Unknown parameter '", p, "' in '", site_.site_cfgs[0],
          "' ignored");
    }
  }

  void Poll() {
    LoadConfig(File::kApp, false);
    Tick(50, 400);
    if (rng_.Chance(0.03)) {
      const auto n = rng_.Range(1, 12);
      Log(File::kApp, kCfg, 4, "Prm|Configuration changed: ", Dec{static_cast<uint64_t>(n)},
          " parameter(s) updated, no restart needed");
      ParamWarnings();
    } else {
      Log(File::kApp, kApp1, 4, "Configuration unchanged");
    }
    Log(File::kApp, kSo, 4, "Updater: ", model_->part, ".sip.ld: server ", model_->firmware,
        ", running ", model_->firmware, ": no update");
    next_[kPollTimer] = now_ + site_.poll_period + rng_.Range(-5 * kMinute, 5 * kMinute);
  }

  // ---- boot ----

  void Reboot(std::string_view reason) {
    if (in_call_) CallEnd();
    if (!app_.empty() || clock_valid_) {
      if (reason == "Watchdog") {
        Log(File::kApp, kSo, 5, "Watchdog: task 'tSip' did not check in for 30 s, restarting");
      }
      Log(File::kApp, kSo, 4, "Restart requested: ", reason);
    }
    Tick(2 * kSecond, 40 * kSecond);  // the phone is down
    boot_at_ = now_;
    clock_valid_ = false;
    boot_clock_ = false;
    stamp_sec_ = INT64_MIN;
    uploaded_ = 0;
    Tick(400, 900);
    // The updater: its own log, uploaded when it is done (PHONES.md "One boot").
    const File b = File::kBoot;
    Log(b, kSo, 4, "Initial log entry. Current logging level 4");
    Log(b, kSo, 4, "Updater ", model_->firmware, " (", model_->name, ", ", model_->part,
        ") starting, reason: ", reason);
    Log(b, kSo, 3, "Hardware ID: ", model_->part, " Rev A, MAC ", mac_, ", serial ",
        HexUp{Hash(mac_, 1) & 0xffffffffffULL, 10});
    Tick(600, 1600);
    Log(b, kEthf, 4, "'LAN' link up, ", model_->firmware[0] == '4' ? "100" : "1000",
        " Mbps full duplex");
    Tick(200, 2200);
    Log(b, kLldp, 3, "LLDP-MED network policy from '", kSwitches[Hash(mac_, 2) % 8], '.',
        site_.domain, "': voice VLAN ", Dec{static_cast<uint64_t>(site_.vlan)},
        " priority 5 DSCP 46");
    Tick(300, 1500);
    Log(b, kDhcpc, 3, "dhcListener: Read succeeds: eth0 option: o-160 ", site_.prov_dhcp);
    Log(b, kDhcpc, 4, "DHCP bound: ", Ip{ip_}, '/', Dec{site_.prefix_len}, " router ",
        Ip{site_.gateway}, " lease ", Dec{static_cast<uint64_t>(site_.lease / kSecond)}, " s from ",
        Ip{site_.gateway});
    Log(b, kDhcpc, 3, "DNS servers ", Ip{site_.dns1}, ' ', Ip{site_.dns2}, ", domain '",
        site_.domain, '\'');
    boot_clock_ = true;  // the updater sets its clock from DHCP option 2/42 here
    Tick(100, 900);
    LoadConfig(b, true);
    const bool update = rng_.Chance(0.02);
    Log(b, kSo, 4, "Updater: ", model_->part, ".sip.ld: server ", model_->firmware, ", running ",
        model_->firmware, update ? ": reflashing (image check failed)" : ": no update");
    if (update) {
      Fetch(b, Str(model_->part, ".sip.ld"), 200);
      for (int pct = 10; pct <= 100; pct += 10) {
        Tick(1500, 4000);
        Log(b, kSo, 3, "Writing application to flash: ", Dec{static_cast<uint64_t>(pct)}, '%');
      }
      Log(b, kSo, 4, "Flash write done, image verified");
    }
    Tick(200, 800);
    Log(b, kCopy, 3, "Upload of '", mac_, "-boot.log' to '", site_.prov_url, '\'');
    Log(b, kSo, 4, "Starting application ", model_->firmware);
    Tick(3 * kSecond, 9 * kSecond);

    // The application: its startup lines, before it knows the time.
    const File a = File::kApp;
    Log(a, kSo, 4, "Initial log entry. Current logging level 4");
    Log(a, kSo, 4, "Initial log entry. Log Bundle Version 1");
    Log(a, kSo, 4, "Application ", model_->firmware, ", model ", model_->name, ", part ",
        model_->part, ", MAC ", mac_);
    Log(a, kSo, 3, "Boot reason: ", reason, ", uptime of the last run unknown");
    Tick(200, 900);
    Log(a, kEthf, 4, "'LAN' link up, ", model_->firmware[0] == '4' ? "100" : "1000",
        " Mbps full duplex");
    Log(a, kNet, 4, "Network up: ", Ip{ip_}, '/', Dec{site_.prefix_len}, " gateway ",
        Ip{site_.gateway}, " VLAN ", Dec{static_cast<uint64_t>(site_.vlan)});
    LoadConfig(a, true);
    ParamWarnings();
    Log(a, kCfg, 4, "Prm|Parameter 'reg.1.address' = '", user_, '@', site_.pbx_host, '\'');
    Fetch(a, "000000000000-license.cfg", 404);
    Fetch(a, Str(mac_, "-license.cfg"), 404);
    Log(a, kLic, 4, "No feature license installed");
    Fetch(a, Str(mac_, "-calls.xml"), 200);
    Fetch(a, Str(mac_, "-directory.xml"), Hash(mac_, 3) % 2 == 0 ? 200 : 404);
    Fetch(a, "000000000000-directory.xml", 200);
    Tick(300, 3000);
    SntpSet();
    Log(a, kRes, 4, "Ring tone 'Ringer", Dec{2 + Hash(mac_, 4) % 10}, "' loaded for line 1");
    if (headset_) {
      Log(a, kUsb, 4, "USB device attached: 'Plantronics Blackwire 5220 Series' (047f:c053)");
    }
    ScheduleRunning(false);
    next_[kUploadTimer] = now_ + rng_.Range(5 * kSecond, 20 * kSecond);  // boot and app log
  }

  void ScheduleRunning(bool mid_stream) {
    next_[kRegisterTimer] =
        now_ + (mid_stream ? rng_.Range(0, site_.reg_expires) : rng_.Range(200, 3000));
    next_[kBlfTimer] = blf_.empty() ? kNever : now_ + rng_.Range(kSecond, 2 * kMinute);
    next_[kCallTimer] = now_ + CallGap();
    next_[kCallEndTimer] = kNever;
    in_call_ = false;
    next_[kPollTimer] = mid_stream ? now_ + rng_.Range(0, site_.poll_period)
                                   : now_ + site_.poll_period + rng_.Range(0, kHour);
    next_[kUploadTimer] = now_ + rng_.Range(0, site_.upload_period);
    next_[kDhcpTimer] = now_ + (mid_stream ? rng_.Range(0, site_.lease / 2) : site_.lease / 2);
    next_[kSntpTimer] = now_ + (mid_stream ? rng_.Range(0, kDay) : kDay);
    next_[kMiscTimer] = now_ + rng_.Exp(MiscMean());
    next_[kChronicTimer] = chronic_ < 0 ? kNever : now_ + rng_.Range(kSecond, chronic_period_);
    next_[kLldpTimer] = debug_net_ ? now_ + rng_.Range(0, 30 * kSecond) : kNever;
    next_[kRebootTimer] = now_ + rng_.Exp(6 * kDay);
  }

  // ---- time of day ----

  bool BusinessHours() const {
    const int64_t local = now_ + site_.tz_ms;
    const int64_t days = FloorDiv(local, kDay);
    const int64_t hour = (local - days * kDay) / kHour;
    const int64_t weekday = ((days + 4) % 7 + 7) % 7;  // 0 = Sunday; 1970-01-01 was a Thursday
    return weekday >= 1 && weekday <= 5 && hour >= 8 && hour < 18;
  }
  int64_t CallGap() {
    // Calls per business hour by role; a twentieth of that out of hours.
    const double per_hour = role_ == Role::kBusy         ? 8
                            : role_ == Role::kReception  ? 6
                            : role_ == Role::kLobby      ? 0.2
                            : role_ == Role::kConference ? 0.6
                                                         : 1.5;
    const double rate = BusinessHours() ? per_hour : per_hour / 20;
    return std::max<int64_t>(10 * kSecond, rng_.Exp(static_cast<int64_t>(kHour / rate)));
  }
  int64_t MiscMean() const { return debug_ui_ ? 2 * kMinute : 9 * kMinute; }

  // ---- SIP ----

  // Random pieces are drawn one statement at a time: the order in which a call's arguments are
  // evaluated is unspecified (GCC and Clang differ), and the bytes must not depend on it.
  std::string CallId() {
    const uint64_t a = rng_.Next(), b = rng_.Next(), c = rng_.Next();
    return Str(Hex{a & 0xffffffff, 8}, '-', Hex{b & 0xffffffff, 8}, '-', Hex{c & 0xffffffff, 8},
               '@', Ip{ip_});
  }
  std::string Tag() {
    const uint64_t a = rng_.Next(), b = rng_.Next();
    return Str(HexUp{a & 0xffffffff, 8}, '-', HexUp{b & 0xffffffff, 8});
  }
  std::string Hex128() {
    const uint64_t a = rng_.Next(), b = rng_.Next();
    return Str(Hex{a, 16}, Hex{b, 16});
  }

  // A SIP message as the sip module dumps it at level 1: a header line, then the message, one
  // continuation line per line of it.
  void DumpHead(bool out) {
    Log(File::kApp, kSip, 1, out ? "Outgoing SIP msg to " : "Incoming SIP msg from ",
        Ip{site_.pbx_ip}, ':', Dec{site_.sip_port}, " (", site_.sip_transport, "):");
  }
  void DumpVia(std::string_view branch) {
    Cont("Via: SIP/2.0/", site_.sip_transport, ' ', Ip{ip_}, ":5060;branch=", branch, ";rport");
  }
  void DumpRegister(bool with_auth, std::string_view call_id, std::string_view tag, uint32_t cseq,
                    std::string_view nonce) {
    DumpHead(true);
    const std::string branch = Str("z9hG4bK", Hex{rng_.Next() & 0xffffffffff, 10});
    Cont("REGISTER sip:", site_.pbx_host, " SIP/2.0");
    DumpVia(branch);
    Cont("From: \"", name_, "\" <sip:", user_, '@', site_.pbx_host, ">;tag=", tag);
    Cont("To: <sip:", user_, '@', site_.pbx_host, '>');
    Cont("CSeq: ", Dec{cseq}, " REGISTER");
    Cont("Call-ID: ", call_id);
    Cont("Contact: <sip:", user_, '@', Ip{ip_}, ";transport=", site_.sip_transport,
         ">;methods=\"INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, MESSAGE, SUBSCRIBE, NOTIFY, PRACK, "
         "UPDATE, REFER\"");
    Cont("User-Agent: ", model_->ua, "-UA/", model_->firmware);
    Cont("Accept-Language: en");
    Cont("Max-Forwards: 70");
    Cont("Expires: ", Dec{static_cast<uint64_t>(site_.reg_expires / kSecond)});
    if (with_auth) {
      Cont("Authorization: Digest username=\"", user_, "\", realm=\"", site_.realm, "\", nonce=\"",
           nonce, "\", uri=\"sip:", site_.pbx_host, "\", response=\"", Hex128(),
           "\", algorithm=MD5");
    }
    Cont("Content-Length: 0");
    Cont("");
  }
  void DumpResponse(std::string_view status, std::string_view method, uint32_t cseq,
                    std::string_view call_id, std::string_view from_user, std::string_view tag,
                    std::string_view extra) {
    DumpHead(false);
    Cont("SIP/2.0 ", status);
    DumpVia(Str("z9hG4bK", Hex{rng_.Next() & 0xffffffffff, 10}));
    Cont("From: <sip:", from_user, '@', site_.pbx_host, ">;tag=", tag);
    Cont("To: <sip:", from_user, '@', site_.pbx_host, ">;tag=", Hex{rng_.Next() & 0xffffffff, 8});
    Cont("CSeq: ", Dec{cseq}, ' ', method);
    Cont("Call-ID: ", call_id);
    if (!extra.empty()) Cont(extra);
    Cont("Content-Length: 0");
    Cont("");
  }
  void DumpSdp(uint16_t rtp_port) {
    Cont("Content-Type: application/sdp");
    Cont("Content-Length: ", Dec{280u + rng_.Below(40)});
    Cont("");
    Cont("v=0");
    const uint64_t session = rng_.Next() % 4000000000u;
    Cont("o=- ", Dec{session}, ' ', Dec{session}, " IN IP4 ", Ip{ip_});
    Cont("s=Polycom IP Phone");
    Cont("c=IN IP4 ", Ip{ip_});
    Cont("t=0 0");
    Cont("a=sendrecv");
    Cont("m=audio ", Dec{rtp_port}, " RTP/AVP 9 102 0 8 18 127");
    Cont("a=rtpmap:9 G722/8000");
    Cont("a=rtpmap:102 G7221/16000");
    Cont("a=fmtp:102 bitrate=32000");
    Cont("a=rtpmap:0 PCMU/8000");
    Cont("a=rtpmap:8 PCMA/8000");
    Cont("a=rtpmap:18 G729/8000");
    Cont("a=fmtp:18 annexb=no");
    Cont("a=rtpmap:127 telephone-event/8000");
  }

  void Register() {
    for (int line = 1; line <= lines_; ++line) {
      const std::string& user = user_;
      const std::string call_id = reg_call_id_.empty() ? (reg_call_id_ = CallId()) : reg_call_id_;
      const std::string tag = Tag();
      if (debug_sip_) {
        const std::string nonce = Hex128();
        DumpRegister(false, call_id, tag, ++cseq_, nonce);
        Tick(5, 40);
        DumpResponse("401 Unauthorized", "REGISTER", cseq_, call_id, user, tag,
                     Str("WWW-Authenticate: Digest realm=\"", site_.realm, "\", nonce=\"", nonce,
                         "\", algorithm=MD5, qop=\"auth\""));
        Tick(5, 40);
        DumpRegister(true, call_id, tag, ++cseq_, nonce);
        Tick(5, 60);
        DumpResponse("200 OK", "REGISTER", cseq_, call_id, user, tag,
                     Str("Contact: <sip:", user, '@', Ip{ip_},
                         ">;expires=", Dec{static_cast<uint64_t>(site_.reg_expires / kSecond)}));
      } else {
        cseq_ += 2;
        Tick(10, 120);
      }
      const double p = rng_.Unit();
      if (p < 0.006) {
        Log(File::kApp, kSip, 4, "Registration failed User: ", user,
            ", Error Code:408 Request Timeout");
        Log(File::kApp, kSip, 3, "Line ", Dec{static_cast<uint64_t>(line)},
            ": retrying registration in 60 s");
        next_[kRegisterTimer] = now_ + kMinute;
        return;
      }
      if (p < 0.009) {
        Log(File::kApp, kSip, 4, "Registration failed User: ", user,
            ", Error Code:503 Service Unavailable");
        next_[kRegisterTimer] = now_ + 2 * kMinute;
        return;
      }
      Log(File::kApp, kSip, 3, "Registration of line ", Dec{static_cast<uint64_t>(line)}, " '",
          user, '@', site_.pbx_host, "' to ", Ip{site_.pbx_ip}, ':', Dec{site_.sip_port}, " (",
          site_.sip_transport, ") succeeded, expires ",
          Dec{static_cast<uint64_t>(site_.reg_expires / kSecond)});
      Tick(20, 200);
    }
    // Refresh before expiry, as the phone does (reg.x.server.y.expires.overlap: 60 s).
    next_[kRegisterTimer] =
        now_ + site_.reg_expires - kMinute + rng_.Range(-2 * kSecond, 2 * kSecond);
    if (!blf_.empty() && rng_.Chance(0.5)) {
      for (uint32_t ext : blf_) {
        Log(File::kApp, kSip, 3, "SUBSCRIBE dialog for '", Dec{ext}, '@', site_.pbx_host,
            "' refreshed, expires 3600");
        Tick(2, 30);
      }
    }
  }

  void BlfNotify() {
    const uint32_t ext = rng_.Pick(blf_);
    constexpr std::string_view kStates[] = {"early", "confirmed", "terminated", "confirmed",
                                            "terminated"};
    Log(File::kApp, kSip, 3, "NOTIFY dialog for '", Dec{ext}, '@', site_.pbx_host, "': state ",
        rng_.Pick(kStates), " (version ", Dec{++notify_version_}, ')');
    if (debug_ui_) {
      Log(File::kApp, kPgui, 2, "BLF key ", Dec{3 + ext % 12}, " '", site_.NameOf(ext),
          "' updated");
    }
    const int64_t mean = BusinessHours() ? 8 * kMinute : 2 * kHour;
    next_[kBlfTimer] =
        now_ + std::max<int64_t>(kSecond, rng_.Exp(mean / static_cast<int64_t>(blf_.size()) * 6));
  }

  void CallStart() {
    call_handle_ = static_cast<uint32_t>(0x3000 + rng_.Below(0x1000));
    peer_ = rng_.Chance(0.7) ? site_.ext_base + 100 + rng_.Below(400)
                             : static_cast<uint32_t>(rng_.Range(2000000, 9999999));
    const bool internal = peer_ < 1000000;
    const std::string peer_name = internal ? site_.NameOf(peer_) : std::string("WIRELESS CALLER");
    const std::string call_id = CallId();
    const bool outgoing = rng_.Chance(0.55);
    rtp_port_ = static_cast<uint16_t>(2222 + 2 * rng_.Below(64));
    remote_rtp_ = static_cast<uint16_t>(16384 + 2 * rng_.Below(8000));
    const File a = File::kApp;
    if (outgoing) {
      if (debug_ui_) Log(a, kKey, 2, "Key 'Dial' pressed");
      Log(a, kSip, 3, "Call 0x", Hex{call_handle_, 4}, ": outgoing to 'sip:", Dec{peer_}, '@',
          site_.pbx_host, "' on line 1 (", user_, ')');
      if (debug_sip_) {
        DumpHead(true);
        Cont("INVITE sip:", Dec{peer_}, '@', site_.pbx_host, ";user=phone SIP/2.0");
        DumpVia(Str("z9hG4bK", Hex{rng_.Next() & 0xffffffffff, 10}));
        Cont("From: \"", name_, "\" <sip:", user_, '@', site_.pbx_host, ">;tag=", Tag());
        Cont("To: <sip:", Dec{peer_}, '@', site_.pbx_host, ";user=phone>");
        Cont("CSeq: 1 INVITE");
        Cont("Call-ID: ", call_id);
        Cont("Contact: <sip:", user_, '@', Ip{ip_}, ";transport=", site_.sip_transport, '>');
        Cont(
            "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, MESSAGE, SUBSCRIBE, NOTIFY, PRACK, "
            "UPDATE, REFER");
        Cont("User-Agent: ", model_->ua, "-UA/", model_->firmware);
        Cont("Accept-Language: en");
        Cont("Supported: 100rel,replaces");
        Cont("Allow-Events: conference,talk,hold");
        Cont("Max-Forwards: 70");
        DumpSdp(rtp_port_);
      }
      Tick(10, 80);
      Log(a, kSip, 3, "Call 0x", Hex{call_handle_, 4}, ": 100 Trying");
      Tick(100, 2500);
      const double p = rng_.Unit();
      if (p < 0.08 || (!internal && p < 0.12)) {
        constexpr std::string_view kFailures[] = {"486 Busy Here", "480 Temporarily Unavailable",
                                                  "404 Not Found", "603 Decline"};
        Log(a, kSip, 3, "Call 0x", Hex{call_handle_, 4}, ": failed: ", rng_.Pick(kFailures));
        next_[kCallTimer] = now_ + CallGap();
        return;
      }
      Log(a, kSip, 3, "Call 0x", Hex{call_handle_, 4}, ": 180 Ringing");
      Tick(2 * kSecond, 20 * kSecond);
      if (rng_.Chance(0.1)) {
        Log(a, kSip, 3, "Call 0x", Hex{call_handle_, 4},
            ": cancelled by user, 487 Request Terminated");
        next_[kCallTimer] = now_ + CallGap();
        return;
      }
      Log(a, kSip, 3, "Call 0x", Hex{call_handle_, 4}, ": 200 OK, ACK sent, Call-ID ", call_id);
    } else {
      Log(a, kSip, 3, "Call 0x", Hex{call_handle_, 4}, ": incoming from '\"", peer_name,
          "\" <sip:", Dec{peer_}, '@', site_.pbx_host, ">' on line 1");
      if (debug_sip_) {
        DumpHead(false);
        Cont("INVITE sip:", user_, '@', Ip{ip_}, ";transport=", site_.sip_transport, " SIP/2.0");
        DumpVia(Str("z9hG4bK", Hex{rng_.Next() & 0xffffffffff, 10}));
        Cont("From: \"", peer_name, "\" <sip:", Dec{peer_}, '@', site_.pbx_host, ">;tag=", Tag());
        Cont("To: <sip:", user_, '@', site_.pbx_host, '>');
        Cont("CSeq: 101 INVITE");
        Cont("Call-ID: ", call_id);
        Cont("Contact: <sip:", Dec{peer_}, '@', Ip{site_.pbx_ip}, ':', Dec{site_.sip_port}, '>');
        Cont("Max-Forwards: 69");
        DumpSdp(remote_rtp_);
      }
      Log(a, kSip, 3, "Call 0x", Hex{call_handle_, 4}, ": ringing, ring type 'ringer",
          Dec{2 + Hash(mac_, 4) % 10}, '\'');
      Tick(2 * kSecond, 25 * kSecond);
      if (rng_.Chance(0.2)) {
        Log(a, kSip, 3, "Call 0x", Hex{call_handle_, 4},
            ": CANCEL received, 487 Request Terminated");
        Log(a, kApp1, 4, "Missed call from '\"", peer_name, "\" <sip:", Dec{peer_}, '@',
            site_.pbx_host, ">'");
        next_[kCallTimer] = now_ + CallGap();
        return;
      }
      if (debug_ui_) Log(a, kKey, 2, "Key '", headset_ ? "Headset" : "Handsfree", "' pressed");
      Log(a, kSip, 3, "Call 0x", Hex{call_handle_, 4}, ": answered, 200 OK sent, Call-ID ",
          call_id);
    }
    constexpr std::string_view kCodecs[] = {"G722/16000", "G722/16000", "G722/16000",
                                            "PCMU/8000",  "PCMA/8000",  "G729/8000"};
    Tick(20, 200);
    Log(a, kSo, 3, "Media: local ", Ip{ip_}, ':', Dec{rtp_port_}, " remote ", Ip{site_.pbx_ip}, ':',
        Dec{remote_rtp_}, " codec ", rng_.Pick(kCodecs), " ptime 20",
        site_.sip_transport == "TLS" ? " SRTP AES_CM_128_HMAC_SHA1_80" : "");
    Log(a, kEc, 3, "AEC: ",
        headset_           ? "headset"
        : rng_.Chance(0.5) ? "handset"
                           : "handsfree",
        " mode, NLP on");
    in_call_ = true;
    call_start_ = now_;
    const int64_t mean = role_ == Role::kConference ? 40 * kMinute : 3 * kMinute;
    next_[kCallEndTimer] = now_ + 5 * kSecond + rng_.Exp(mean);
    next_[kCallTimer] = kNever;
  }

  void CallEnd() {
    const File a = File::kApp;
    const bool we_hang_up = rng_.Chance(0.5);
    Log(a, kSip, 3, "Call 0x", Hex{call_handle_, 4}, ": BYE ", we_hang_up ? "sent" : "received",
        ", 200 OK");
    const uint64_t secs =
        static_cast<uint64_t>(std::max<int64_t>(1, (now_ - call_start_) / kSecond));
    const uint64_t pkts = secs * 50;
    const uint64_t lost = rng_.Chance(0.8) ? rng_.Below(4) : rng_.Below(pkts / 50 + 2);
    const uint64_t jitter = 1 + rng_.Below(rng_.Chance(0.9) ? 6 : 40);
    const uint64_t mos = 420 - std::min<uint64_t>(200, lost * 400 / (pkts + 1) * 10 + jitter);
    Log(a, kSo, 3, "Call 0x", Hex{call_handle_, 4}, " stats: duration ", Dec{secs}, " s, rx ",
        Dec{pkts - lost}, " pkts, lost ", Dec{lost}, " (", Dec{lost * 100 / (pkts + 1)}, '.',
        Dec0{lost * 10000 / (pkts + 1) % 100, 2}, "%), jitter avg ", Dec{jitter}, " ms max ",
        Dec{jitter + rng_.Below(30)}, " ms, MOS-LQ ", Dec{mos / 100}, '.', Dec0{mos % 100, 2});
    in_call_ = false;
    next_[kCallEndTimer] = kNever;
    next_[kCallTimer] = now_ + CallGap();
  }

  // ---- the network ----

  void DhcpRenew() {
    Log(File::kApp, kDhcpc, 3, "dhcListener: Read succeeds: eth0 option: o-160 ", site_.prov_dhcp);
    Log(File::kApp, kDhcpc, 4, "Lease renewed: ", Ip{ip_}, " from ", Ip{site_.gateway}, ", ",
        Dec{static_cast<uint64_t>(site_.lease / kSecond)}, " s");
    next_[kDhcpTimer] = now_ + site_.lease / 2;
  }

  void SntpSet() {
    clock_valid_ = true;
    stamp_sec_ = INT64_MIN;
    Log(File::kApp, kSntp, 3, "Time set from '", site_.ntp_host, "' (", Ip{site_.ntp_ip},
        "), offset ", Signed{rng_.Range(-40, 40)}, " ms");
  }
  void Sntp() {
    SntpSet();
    next_[kSntpTimer] = now_ + kDay;
  }

  void Lldp() {
    if (rng_.Chance(0.3)) Log(File::kApp, kLldp, 3, "LLDP frame sent on 'LAN', TTL 120");
    if (rng_.Chance(0.5)) {
      Log(File::kApp, kLldp, 3, "LLDP-MED from '", kSwitches[Hash(mac_, 2) % 8], '.', site_.domain,
          "' port Gi1/0/", Dec{1 + Hash(mac_, 5) % 48}, ": voice VLAN ",
          Dec{static_cast<uint64_t>(site_.vlan)}, " priority 5 DSCP 46");
    }
    if (rng_.Chance(0.1)) {
      Log(File::kApp, kNet, 2, "CDP: device 'SEP", HexUp{Hash(mac_, 6) & 0xffffffffffffULL, 12},
          "' seen on port 'PC'");
    }
    next_[kLldpTimer] = now_ + 30 * kSecond + rng_.Range(-200, 200);
  }

  // Things a phone mentions now and then.
  void Misc() {
    const File a = File::kApp;
    if (rng_.Chance(0.01)) {
      Log(a, kSo, 5, "SoMemMon: heap low (free ", Dec{1024 + rng_.Below(4096)},
          " KB), flushing caches");
    }
    switch (rng_.Below(12)) {
      case 0:
      case 1: {
        const uint64_t total = model_->firmware[0] == '4' ? 65536 : 131072;
        const uint64_t free_kb = total / 4 + rng_.Below(total / 4);
        const uint64_t largest_kb = 8192 + rng_.Below(16384);
        Log(a, kSo, 4, "SoMemMon: heap free ", Dec{free_kb}, " KB of ", Dec{total},
            " KB, largest block ", Dec{largest_kb}, " KB");
        break;
      }
      case 2:
        Log(a, kPgui, 3,
            rng_.Chance(0.5) ? "Backlight: dimmed after 600 s idle"
                             : "Backlight: on (user activity)");
        break;
      case 3: {
        const auto n = rng_.Below(60);
        const char* what = n % 3 == 0 ? "Smith" : n % 3 == 1 ? "sales" : "Gar";
        Log(a, kLdap, 3, "LDAP query '(|(sn=", what, "*)(telephoneNumber=", what, "*))' to '",
            site_.ldap_host, ":389' returned ", Dec{n}, " entries in ", Dec{20 + rng_.Below(300)},
            " ms");
        break;
      }
      case 4:
        Log(a, kApp1, 4, "Microbrowser: loading idle page 'http://", site_.intranet_host,
            "/phone/idle.htm'");
        if (debug_curl_) {
          Log(a, kCurl, 1, "HEADER_OUT: GET /phone/idle.htm HTTP/1.1");
          Log(a, kCurl, 1, "HEADER_OUT: User-Agent: Microbrowser/1.1 (", model_->ua, "-UA/",
              model_->firmware, ')');
          Log(a, kCurl, 1, "HEADER_IN : HTTP/1.1 200 OK");
        }
        break;
      case 5:
        Log(a, kEthf, 4, "'PC' port link ", rng_.Chance(0.5) ? "up, 1000" : "down, 0",
            " Mbps full duplex");
        break;
      case 6:
        Log(a, kWmgr, 3, "Screen '", rng_.Chance(0.5) ? "Home" : "Lines", "' shown");
        if (debug_ui_) {
          const uint64_t widgets = 8 + rng_.Below(20);
          Log(a, kWmgr, 0, "Redraw: ", Dec{widgets}, " widgets in ", Dec{5 + rng_.Below(60)},
              " ms");
        }
        break;
      case 7:
        Log(a, kPres, 3, "Presence of '", user_, "' set to '",
            rng_.Chance(0.5) ? "Available" : "Away", '\'');
        break;
      case 8: {
        const uint64_t entries = 3 + rng_.Below(9);
        Log(a, kDns, 3, "DNS cache: ", Dec{entries}, " entries, '", site_.pbx_host, "' -> ",
            Ip{site_.pbx_ip}, " TTL ", Dec{rng_.Below(3600)});
        break;
      }
      case 9:
        if (debug_ui_) {
          constexpr std::string_view kKeys[] = {"Line1",   "Directories", "Home",
                                                "Volume+", "Volume-",     "Messages",
                                                "Select",  "Down",        "Up"};
          Log(a, kKey, 2, "Key '", rng_.Pick(kKeys), "' pressed");
        } else {
          Log(a, kBs, 4, "Call lists saved (", Dec{rng_.Below(100)}, " entries)");
        }
        break;
      case 10:
        Log(a, kCert, 3, "Certificate check for '", site_.prov_host, "': OK, expires 2026-0",
            Dec{1 + Hash(site_.domain, 9) % 9}, "-15");
        break;
      default: {
        const uint64_t load1 = rng_.Below(35);
        Log(a, kSo, 3, "SoCpuMon: load ", Dec{load1}, "% (1 min), ", Dec{rng_.Below(25)},
            "% (5 min)");
      } break;
    }
    next_[kMiscTimer] = now_ + rng_.Exp(MiscMean());
  }

  // The same failure again: misconfigured phones repeat one error for weeks.
  void Chronic() {
    const File a = File::kApp;
    switch (chronic_) {
      case 0:
        Log(a, kCopy, 3, "'https://", site_.stale_host, "/contacts/", mac_,
            "-directory.xml' from '", site_.stale_host, "(0.0.0.0)'");
        Log(a, kDns, 4, "DNS resolver failed for '", site_.stale_host, "' (NXDOMAIN from ",
            Ip{site_.dns1}, ')');
        Log(a, kCopy, 4, "DNS lookup failed for ", site_.stale_host);
        break;
      case 1:
        Log(a, kCopy, 3, "'ftps://PlcmSpIp:****@", site_.ftps_host, "/logs/", mac_,
            "-app.log' from '", site_.ftps_host, '(', Ip{site_.prov_ip + 1}, ")'");
        Log(a, kCopy, 4,
            "SSL_connect error Peer certificate cannot be authenticated with known "
            "CA certificates.");
        Log(a, kCurl, 3, "Unknown SSL protocol error in connection to ", site_.ftps_host, ":990");
        break;
      case 2:
        Log(a, kSip, 4, "Registration failed User: ", user_, "b, Error Code:403 Forbidden");
        break;
      case 3:
        Log(a, kLdap, 4, "LDAP bind to 'ldaps://", site_.ldap_host,
            ":636' failed: Invalid credentials (49)");
        break;
      case 4:
        Log(a, kSntp, 4, "No response from '", site_.ntp_host, "' (", Ip{site_.ntp_ip},
            ") after 3 attempts");
        break;
      default:
        Log(a, kApp1, 4, "EWS: autodiscover for 'https://", site_.ews_host,
            "/autodiscover/autodiscover.xml' failed (HTTP 401)");
        break;
    }
    next_[kChronicTimer] = now_ + chronic_period_ + rng_.Range(-kSecond, kSecond);
  }

  const Site& site_;
  Rng rng_;
  const Model* model_ = nullptr;
  std::string mac_;
  uint32_t ip_ = 0;
  uint32_t ext_ = 0;
  std::string user_;
  std::string name_;
  Role role_ = Role::kDesk;
  int lines_ = 1;
  std::vector<uint32_t> blf_;  // extensions on busy-lamp-field keys
  bool debug_sip_ = false, debug_curl_ = false, debug_net_ = false, debug_ui_ = false;
  bool headset_ = false;
  int chronic_ = -1;
  int64_t chronic_period_ = kMinute;

  int64_t now_ = 0;
  int64_t boot_at_ = 0;
  bool clock_valid_ = false;  // app log: SNTP has answered since the boot
  bool boot_clock_ = false;   // boot log: local time known
  std::array<int64_t, kTimerCount> next_{};
  int64_t stamp_sec_ = INT64_MIN;
  std::string stamp_;

  uint32_t cseq_ = 0;
  uint64_t notify_version_ = 0;
  std::string reg_call_id_;
  bool in_call_ = false;
  uint32_t call_handle_ = 0;
  uint32_t peer_ = 0;
  uint16_t rtp_port_ = 0, remote_rtp_ = 0;
  int64_t call_start_ = 0;
  uint64_t uploaded_ = 0;
};

std::vector<std::unique_ptr<Phone>> MakePhones(const Site& site, uint32_t n, uint64_t seed) {
  std::unordered_set<uint32_t> macs;
  std::vector<std::unique_ptr<Phone>> phones;
  phones.reserve(n);
  for (uint32_t i = 0; i < n; ++i) phones.push_back(std::make_unique<Phone>(site, i, seed, macs));
  return phones;
}

// ---- output ---------------------------------------------------------------------------------

void WriteAll(int fd, std::string_view data, std::string_view what) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      Die(Str("write to ", what, ": ", std::strerror(errno)));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// A JSON string's contents (RFC 8259 section 7): quote, backslash and control characters
// escaped; bytes >= 0x80 pass as they are (the generator writes UTF-8).
void PutJsonString(std::string& s, std::string_view v) {
  size_t start = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const auto c = static_cast<unsigned char>(v[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    s.append(v.substr(start, i - start));
    start = i + 1;
    switch (c) {
      case '"':
        s.append("\\\"");
        break;
      case '\\':
        s.append("\\\\");
        break;
      case '\t':
        s.append("\\t");
        break;
      case '\r':
        s.append("\\r");
        break;
      default:
        Cat(s, "\\u00", Hex{c, 2});
        break;
    }
  }
  s.append(v.substr(start));
}

struct Options {
  std::string out_dir;
  bool ndjson = false;
  uint32_t phones = 300;
  uint64_t bytes = 64 << 20;
  uint64_t seed = 1;
  uint64_t site_seed = 0;
  bool site_given = false;
  std::string relay = "branch-042";
  int level = 0;
  bool compress_bench = false;
  std::string dict;
  uint64_t batch_bytes = 1 << 20;
  std::string frames_out;
};

int RunFiles(const Options& o) {
  if (::mkdir(o.out_dir.c_str(), 0777) != 0 && errno != EEXIST) {
    Die(Str("mkdir ", o.out_dir, ": ", std::strerror(errno)));
  }
  const Site site = MakeSite(o.site_seed, o.phones);
  auto phones = MakePhones(site, o.phones, o.seed);
  double total_weight = 0;
  for (const auto& p : phones) total_weight += p->Weight();
  Rng rng(o.seed);
  for (auto& p : phones) {
    const auto share =
        static_cast<uint64_t>(static_cast<double>(o.bytes) * p->Weight() / total_weight);
    const std::string app_path = Str(o.out_dir, '/', p->mac(), "-app.log");
    const std::string boot_path = Str(o.out_dir, '/', p->mac(), "-boot.log");
    const int app_fd = ::open(app_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    const int boot_fd = ::open(boot_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (app_fd < 0 || boot_fd < 0) Die(Str("open in ", o.out_dir, ": ", std::strerror(errno)));
    uint64_t written = 0;
    p->StartWithBoot(site.start + rng.Range(0, 10 * kMinute));
    auto flush = [&] {
      WriteAll(app_fd, p->app_, app_path);
      WriteAll(boot_fd, p->boot_, boot_path);
      written += p->app_.size() + p->boot_.size();
      p->app_.clear();
      p->boot_.clear();
    };
    while (written + p->app_.size() + p->boot_.size() < share) {
      if (p->Step()) {
        const uint64_t app_bytes = p->app_.size();
        flush();
        p->Uploaded(app_bytes);
      } else if (p->app_.size() + p->boot_.size() > kFlushBytes) {
        flush();
      }
    }
    flush();
    if (::close(app_fd) != 0 || ::close(boot_fd) != 0) {
      Die(Str("close in ", o.out_dir, ": ", std::strerror(errno)));
    }
  }
  return 0;
}

int RunNdjson(const Options& o) {
  const Site site = MakeSite(o.site_seed, o.phones);
  auto phones = MakePhones(site, o.phones, o.seed);
  for (auto& p : phones) p->StartRunning(site.start);
  // The site in time order: the phone whose next timer is earliest runs next.
  using Entry = std::pair<int64_t, uint32_t>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue;
  for (uint32_t i = 0; i < phones.size(); ++i) queue.emplace(phones[i]->NextTime(), i);

  std::string out;
  out.reserve(kFlushBytes + (1 << 20));
  uint64_t total = 0;
  uint64_t seq = 0;
  int64_t last_received = INT64_MIN;
  bool full = false;
  // One upload's lines: the relay receives them together and stamps them with one time.
  auto emit = [&](const Phone& p, std::string_view file, std::string_view text,
                  std::string_view received) {
    while (!text.empty() && !full) {
      const size_t nl = text.find('\n');
      const std::string_view line = text.substr(0, nl);
      text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
      const size_t before = out.size();
      Cat(out, "{\"relay\":\"");
      PutJsonString(out, o.relay);
      Cat(out, "\",\"mac\":\"", p.mac(), "\",\"file\":\"", file, "\",\"seq\":", Dec{seq},
          ",\"received\":\"", received, "\",\"line\":\"");
      PutJsonString(out, line);
      out.append("\"}\n");
      const uint64_t record = out.size() - before;
      if (total + record > o.bytes) {
        out.resize(before);
        full = true;
        return;
      }
      total += record;
      ++seq;
    }
  };
  std::string received;
  while (!full) {
    const uint32_t i = queue.top().second;
    queue.pop();
    Phone& p = *phones[i];
    if (p.Step()) {
      // What the relay stamps: when the PUT arrived, a moment after the phone started it.
      last_received =
          std::max(last_received, p.now() + 20 + static_cast<int64_t>(p.app_.size() / 2000));
      received.clear();
      PutRfc3339(received, last_received);
      const uint64_t app_bytes = p.app_.size();
      emit(p, "boot", p.boot_, received);
      emit(p, "app", p.app_, received);
      p.app_.clear();
      p.boot_.clear();
      p.Uploaded(app_bytes);
      if (out.size() > kFlushBytes) {
        WriteAll(1, out, "stdout");
        out.clear();
      }
    }
    queue.emplace(p.NextTime(), i);
  }
  WriteAll(1, out, "stdout");
  return 0;
}

// ---- the compression measurement ----------------------------------------------------------

double ThreadCpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
double WallSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string ReadFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Die(Str("open ", path, ": ", std::strerror(errno)));
  std::string data;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Die(Str("read ", path, ": ", std::strerror(errno)));
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

void CheckZstd(size_t code, std::string_view what) {
  if (ZSTD_isError(code)) Die(Str(what, ": ", ZSTD_getErrorName(code)));
}

int RunCompressBench(const Options& o) {
  struct CCtxFree {
    void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
  };
  struct DCtxFree {
    void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
  };
  struct CDictFree {
    void operator()(ZSTD_CDict* d) const { ZSTD_freeCDict(d); }
  };
  struct DDictFree {
    void operator()(ZSTD_DDict* d) const { ZSTD_freeDDict(d); }
  };
  std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx(ZSTD_createCCtx());
  std::unique_ptr<ZSTD_DCtx, DCtxFree> dctx(ZSTD_createDCtx());
  if (!cctx || !dctx) Die("out of memory for zstd contexts");
  CheckZstd(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, o.level), "level");
  CheckZstd(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1), "checksum flag");
  std::unique_ptr<ZSTD_CDict, CDictFree> cdict;
  std::unique_ptr<ZSTD_DDict, DDictFree> ddict;
  std::string dict_id = "none";
  if (!o.dict.empty()) {
    // The relay would prepare the dictionary once, at start: not part of the timed work.
    const std::string dict = ReadFile(o.dict);
    cdict.reset(ZSTD_createCDict(dict.data(), dict.size(), o.level));
    ddict.reset(ZSTD_createDDict(dict.data(), dict.size()));
    if (!cdict || !ddict) Die(Str("zstd rejects the dictionary ", o.dict));
    CheckZstd(ZSTD_CCtx_refCDict(cctx.get(), cdict.get()), "refCDict");
    dict_id = std::to_string(ZSTD_getDictID_fromDict(dict.data(), dict.size()));
  }
  int frames_fd = -1;
  if (!o.frames_out.empty()) {
    frames_fd = ::open(o.frames_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (frames_fd < 0) Die(Str("open ", o.frames_out, ": ", std::strerror(errno)));
  }

  const size_t batch_max = o.batch_bytes;
  std::vector<char> in(batch_max * 2 + (1 << 20));
  std::vector<char> dst(ZSTD_compressBound(in.size()));
  std::vector<char> check(in.size());
  size_t begin = 0, end = 0;
  bool eof = false;
  uint64_t raw = 0, compressed = 0, batches = 0, lines = 0;
  double cpu = 0, wall = 0;

  auto compress = [&](const char* src, size_t n) {
    const double c0 = ThreadCpuSeconds();
    const double w0 = WallSeconds();
    const size_t size = ZSTD_compress2(cctx.get(), dst.data(), dst.size(), src, n);
    const double w1 = WallSeconds();
    const double c1 = ThreadCpuSeconds();
    CheckZstd(size, "ZSTD_compress2");
    cpu += c1 - c0;
    wall += w1 - w0;
    // Untimed: the frame must give the batch back, whole.
    const size_t back =
        ddict ? ZSTD_decompress_usingDDict(dctx.get(), check.data(), check.size(), dst.data(), size,
                                           ddict.get())
              : ZSTD_decompressDCtx(dctx.get(), check.data(), check.size(), dst.data(), size);
    CheckZstd(back, "decompressing a batch");
    if (back != n || std::memcmp(check.data(), src, n) != 0) {
      Die(Str("batch ", Dec{batches}, " did not decompress to itself"));
    }
    if (ZSTD_getFrameContentSize(dst.data(), size) != n) {
      Die(Str("batch ", Dec{batches}, ": frame header lacks the content size"));
    }
    if (frames_fd >= 0) WriteAll(frames_fd, std::string_view(dst.data(), size), o.frames_out);
    raw += n;
    compressed += size;
    ++batches;
    lines += static_cast<uint64_t>(std::count(src, src + n, '\n'));
  };

  for (;;) {
    // Keep at least one batch and its next line in the buffer, unless the input ends first.
    while (!eof && end - begin <= batch_max) {
      if (begin > 0 && end + (1 << 20) > in.size()) {
        std::memmove(in.data(), in.data() + begin, end - begin);
        end -= begin;
        begin = 0;
      }
      const ssize_t n = ::read(0, in.data() + end, in.size() - end);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) Die(Str("read stdin: ", std::strerror(errno)));
      if (n == 0) eof = true;
      end += static_cast<size_t>(n);
    }
    if (begin == end) break;
    // The batch: whole lines, as many as fit in batch_max. A line longer than that on its own
    // would not fit any batch; this input has none, and it is an error here.
    size_t take;
    if (end - begin <= batch_max && eof) {
      take = end - begin;
    } else {
      const char* base = in.data() + begin;
      const void* last = nullptr;
      for (size_t n = batch_max; n > 0; --n) {
        if (base[n - 1] == '\n') {
          last = base + n - 1;
          break;
        }
      }
      if (last == nullptr) Die(Str("a line longer than --batch-bytes (", Dec{batch_max}, ')'));
      take = static_cast<size_t>(static_cast<const char*>(last) - base) + 1;
    }
    compress(in.data() + begin, take);
    begin += take;
  }
  if (frames_fd >= 0 && ::close(frames_fd) != 0) {
    Die(Str("close ", o.frames_out, ": ", std::strerror(errno)));
  }
  if (batches == 0) Die("no input on stdin");
  std::printf(
      "level=%d dict=%s batch_bytes=%llu batches=%llu lines=%llu raw_bytes=%llu "
      "compressed_bytes=%llu ratio=%.3f cpu_s=%.3f wall_s=%.3f mbps=%.1f mbps_wall=%.1f "
      "libzstd=%s\n",
      o.level, dict_id.c_str(), static_cast<unsigned long long>(batch_max),
      static_cast<unsigned long long>(batches), static_cast<unsigned long long>(lines),
      static_cast<unsigned long long>(raw), static_cast<unsigned long long>(compressed),
      static_cast<double>(raw) / static_cast<double>(compressed), cpu, wall,
      static_cast<double>(raw) / 1e6 / cpu, static_cast<double>(raw) / 1e6 / wall,
      ZSTD_versionString());
  return 0;
}

// ---- the command line ---------------------------------------------------------------------

uint64_t ParseBytes(std::string_view flag, std::string_view v) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  const std::string_view rest(p, static_cast<size_t>(v.data() + v.size() - p));
  int shift = 0;
  if (rest == "K" || rest == "k") shift = 10;
  if (rest == "M" || rest == "m") shift = 20;
  if (rest == "G" || rest == "g") shift = 30;
  if (ec != std::errc() || p == v.data() || (shift == 0 && !rest.empty()) || n == 0 ||
      n > (UINT64_MAX >> shift)) {
    Die(Str(flag, " needs a positive number of bytes (K, M, G allowed), not '", v, '\''));
  }
  return n << shift;
}
uint64_t ParseNumber(std::string_view flag, std::string_view v, uint64_t min, uint64_t max) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < min || n > max) {
    Die(Str(flag, " needs a number from ", Dec{min}, " to ", Dec{max}, ", not '", v, '\''));
  }
  return n;
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      std::fwrite(kUsage.data(), 1, kUsage.size(), stdout);
      return 0;
    }
    if (flag == "--ndjson") {
      o.ndjson = true;
      continue;
    }
    if (i + 1 >= argc) Die(Str("unknown option or missing value: ", flag, " (--help)"));
    const std::string_view v = argv[++i];
    if (flag == "--out") {
      o.out_dir = v;
    } else if (flag == "--phones") {
      o.phones = static_cast<uint32_t>(ParseNumber(flag, v, 1, 100000));
    } else if (flag == "--bytes") {
      o.bytes = ParseBytes(flag, v);
    } else if (flag == "--seed") {
      o.seed = ParseNumber(flag, v, 0, UINT64_MAX);
    } else if (flag == "--site") {
      o.site_seed = ParseNumber(flag, v, 0, UINT64_MAX);
      o.site_given = true;
    } else if (flag == "--relay") {
      if (v.empty()) Die("--relay needs a name");
      o.relay = v;
    } else if (flag == "--compress-bench") {
      o.compress_bench = true;
      o.level = static_cast<int>(ParseNumber(flag, v, 1, static_cast<uint64_t>(ZSTD_maxCLevel())));
    } else if (flag == "--dict") {
      o.dict = v;
    } else if (flag == "--batch-bytes") {
      o.batch_bytes = ParseBytes(flag, v);
      if (o.batch_bytes > (uint64_t{1} << 30)) Die("--batch-bytes: at most 1G here");
    } else if (flag == "--frames-out") {
      o.frames_out = v;
    } else {
      Die(Str("unknown option: ", flag, " (--help)"));
    }
  }
  if (!o.site_given) o.site_seed = o.seed;
  const int modes = (o.ndjson ? 1 : 0) + (o.out_dir.empty() ? 0 : 1) + (o.compress_bench ? 1 : 0);
  if (modes != 1) Die("give exactly one of --out DIR, --ndjson, --compress-bench LEVEL (--help)");
  if (o.compress_bench) return RunCompressBench(o);
  if (!o.dict.empty() || !o.frames_out.empty())
    Die("--dict and --frames-out go with --compress-bench");
  if (o.ndjson) return RunNdjson(o);
  return RunFiles(o);
}

}  // namespace
}  // namespace siterelay::phone_logs

int main(int argc, char** argv) { return siterelay::phone_logs::Main(argc, argv); }
