#include "tools/phone-fleet/model.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <unordered_set>

namespace siterelay::fleet {

std::string_view ProtoName(Proto p) {
  switch (p) {
    case Proto::kHttp: return "http";
    case Proto::kHttps: return "https";
    case Proto::kTftp: return "tftp";
    case Proto::kFtp: return "ftp";
    case Proto::kFtps: return "ftps";
  }
  return "?";
}

bool ParseProto(std::string_view name, Proto* out) {
  for (int i = 0; i < kProtoCount; ++i) {
    if (ProtoName(static_cast<Proto>(i)) == name) {
      *out = static_cast<Proto>(i);
      return true;
    }
  }
  return false;
}

const std::vector<Model>& Models() {
  // Illustrative part numbers and versions (docs/phone-fleet.md); the UA shapes are PHONES.md's.
  static const std::vector<Model> kModels = {
      {"VVX_500", "PolycomVVX", "3111-44500-001", "5.9.7.47435", false},
      {"VVX_410", "PolycomVVX", "3111-46162-001", "5.9.5.0614", false},
      {"VVX_311", "PolycomVVX", "3111-48350-001", "6.4.3.5018", false},
      {"VVX_600", "PolycomVVX", "3111-44600-001", "5.9.7.47435", false},
      {"Edge_E450", "PolyEdge", "3111-49500-001", "8.0.2", false},
      {"SPIP_550", "PolycomSoundPointIP", "3111-12550-001", "4.0.15.1047", true},
  };
  return kModels;
}

int FindModel(std::string_view name) {
  const auto& m = Models();
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

Result<std::vector<std::pair<std::string, uint32_t>>> ParseMix(std::string_view text) {
  std::vector<std::pair<std::string, uint32_t>> out;
  uint64_t total = 0;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (comma != std::string_view::npos && text.empty()) {
      return Status::InvalidArgument("trailing ','");
    }
    size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return Status::InvalidArgument("\"" + std::string(item) + "\" is not NAME=WEIGHT");
    }
    std::string name(item.substr(0, eq));
    std::string_view w = item.substr(eq + 1);
    uint32_t weight = 0;
    auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), weight);
    if (ec != std::errc() || end != w.data() + w.size() || w.empty() || weight > 1000000) {
      return Status::InvalidArgument("weight of " + name + " must be an integer 0-1000000");
    }
    for (const auto& [n, unused] : out) {
      if (n == name) return Status::InvalidArgument(name + " given twice");
    }
    total += weight;
    out.emplace_back(std::move(name), weight);
  }
  if (out.empty()) return Status::InvalidArgument("empty");
  if (total == 0) return Status::InvalidArgument("every weight is 0");
  return out;
}

std::vector<size_t> Apportion(size_t n, const std::vector<uint32_t>& weights) {
  std::vector<size_t> counts(weights.size(), 0);
  uint64_t total = 0;
  for (uint32_t w : weights) total += w;
  if (total == 0 || n == 0) return counts;
  std::vector<std::pair<uint64_t, size_t>> remainders;  // (remainder, index)
  size_t given = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    // Exact in integers: n * w fits easily (n < 2^32, w <= 10^6).
    uint64_t share = static_cast<uint64_t>(n) * weights[i];
    counts[i] = static_cast<size_t>(share / total);
    given += counts[i];
    if (weights[i] > 0) remainders.emplace_back(share % total, i);
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < n; ++k, ++given) ++counts[remainders[k % remainders.size()].second];
  return counts;
}

uint64_t Rng::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

namespace {

// Deals out `counts[i]` copies of i in a seeded Fisher-Yates shuffle.
std::vector<size_t> Deal(const std::vector<size_t>& counts, Rng& rng) {
  std::vector<size_t> out;
  for (size_t i = 0; i < counts.size(); ++i) out.insert(out.end(), counts[i], i);
  for (size_t i = out.size(); i > 1; --i) std::swap(out[i - 1], out[rng.Below(i)]);
  return out;
}

}  // namespace

std::vector<PhoneSpec> MakePhones(const FleetShape& shape) {
  static constexpr std::array<uint32_t, 3> kPrefixes = {0x0004f2, 0x482567, 0x64167f};
  Rng rng(shape.seed);
  std::vector<size_t> protos = Deal(Apportion(shape.phones, shape.proto_weights), rng);
  std::vector<size_t> models = Deal(Apportion(shape.phones, shape.model_weights), rng);
  std::unordered_set<uint64_t> macs;
  std::vector<PhoneSpec> out(shape.phones);
  for (size_t i = 0; i < shape.phones; ++i) {
    PhoneSpec& p = out[i];
    p.index = i;
    uint64_t mac = 0;
    do {
      mac = static_cast<uint64_t>(kPrefixes[rng.Below(kPrefixes.size())]) << 24 |
            (rng.Next() & 0xffffff);
    } while (!macs.insert(mac).second);
    char hex[17];
    std::snprintf(hex, sizeof hex, "%012llx", static_cast<unsigned long long>(mac));
    p.mac = hex;
    p.proto = static_cast<Proto>(protos[i]);
    p.model = static_cast<int>(models[i]);
    p.own_config = rng.Below(100) < shape.own_config_percent;
    p.start_s = shape.spread_s > 0 ? rng.Unit() * shape.spread_s : 0;
    p.boot_log_bytes = 4096 + rng.Below(8192);
    p.app_log_bytes = 16384 + rng.Below(49152);
  }
  return out;
}

std::string UserAgent(const PhoneSpec& p, bool updater) {
  const Model& m = Models()[static_cast<size_t>(p.model)];
  std::string ua = "FileTransport ";
  ua += m.family;
  ua += '-';
  ua += m.name;
  ua += "-UA/";
  ua += m.version;
  if (m.serial_in_agent) ua += " (SN:" + p.mac + ")";
  ua += updater ? " Type/Updater" : " Type/Application";
  return ua;
}

std::string PhoneLog(const PhoneSpec& p, bool boot, size_t bytes) {
  static constexpr std::array<std::string_view, 6> kLines = {
      "copy |3|00|'http://relay/%s.cfg' from 'relay(10.1.2.3)'",
      "curl |1|00|HEADER_OUT: GET /%s-phone.cfg HTTP/1.1",
      "curl |1|00|HEADER_IN : HTTP/1.1 200 OK",
      "sip  |2|00|Registration of line 1 for %s succeeded",
      "cfg  |4|00|Param 'prov.polling.period' for %s is 86400",
      "dhcpc|3|00|dhcListener: Read succeeds: eth0 option: o-160 http://10.1.2.3/",
  };
  Rng rng(p.index * 7919 + (boot ? 1 : 2));
  std::string out;
  out.reserve(bytes + 160);
  uint32_t t = static_cast<uint32_t>(rng.Below(86400));
  char line[192];
  while (out.size() < bytes) {
    std::string_view fmt = kLines[rng.Below(kLines.size())];
    t += static_cast<uint32_t>(rng.Below(3));
    int n = std::snprintf(line, sizeof line, "05%02u%02u%02u%02u|", 1 + t / 86400 % 28,
                          t / 3600 % 24, t / 60 % 60, t % 60);
    std::string msg(fmt);
    if (size_t at = msg.find("%s"); at != std::string::npos) msg.replace(at, 2, p.mac);
    out.append(line, static_cast<size_t>(n));
    out += msg;
    out += '\n';
  }
  out.resize(bytes);
  if (!out.empty()) out.back() = '\n';
  return out;
}

std::string_view StepName(StepKind k) {
  switch (k) {
    case StepKind::kBootLogPut: return "boot_log_put";
    case StepKind::kMacConfig: return "mac_cfg";
    case StepKind::kMasterConfig: return "master_cfg";
    case StepKind::kFirmware: return "firmware";
    case StepKind::kSiteConfig: return "site_cfg";
    case StepKind::kPhoneConfig: return "phone_cfg";
    case StepKind::kWebConfig: return "web_cfg";
    case StepKind::kLicense: return "license";
    case StepKind::kDirectory: return "directory";
    case StepKind::kAppLogHead: return "app_log_head";
    case StepKind::kAppLogPut: return "app_log_put";
  }
  return "?";
}

std::vector<Step> BootPlan(const PhoneSpec& p) {
  const Model& m = Models()[static_cast<size_t>(p.model)];
  const std::string& mac = p.mac;
  bool ftp = p.proto == Proto::kFtp || p.proto == Proto::kFtps;
  std::vector<Step> s;
  auto get = [&](StepKind k, std::string path, bool missing_ok) {
    s.push_back({k, Op::kGet, std::move(path), missing_ok, false, false, false});
  };
  s.push_back({StepKind::kBootLogPut, Op::kPut, mac + "-boot.log", false, false, true, ftp});
  get(StepKind::kMacConfig, mac + ".cfg", true);
  s.push_back({StepKind::kMasterConfig, Op::kGet, "000000000000.cfg", false, true, false, false});
  // The split image: part number + "." + APP_FILE_PATH (PHONES.md; MasterConfig() says sip.ld).
  get(StepKind::kFirmware, std::string(m.part) + ".sip.ld", false);
  get(StepKind::kSiteConfig, "site.cfg", false);
  get(StepKind::kPhoneConfig, mac + "-phone.cfg", true);
  get(StepKind::kWebConfig, mac + "-web.cfg", true);
  get(StepKind::kLicense, "000000000000-license.cfg", true);
  get(StepKind::kLicense, mac + "-license.cfg", true);
  get(StepKind::kDirectory, mac + "-calls.xml", true);
  get(StepKind::kDirectory, mac + "-directory.xml", true);
  get(StepKind::kDirectory, "000000000000-directory.xml", true);
  if (p.proto != Proto::kTftp) {
    s.push_back({StepKind::kAppLogHead, Op::kHead, mac + "-app.log", true, false, false, false});
  }
  s.push_back({StepKind::kAppLogPut, Op::kPut, mac + "-app.log", false, false, false, ftp});
  return s;
}

std::string MasterConfig() {
  return "<?xml version=\"1.0\" standalone=\"yes\"?>\n"
         "<!-- written by phone_fleet: the master config of PHONES.md -->\n"
         "<APPLICATION APP_FILE_PATH=\"sip.ld\" CONFIG_FILES=\"site.cfg\" MISC_FILES=\"\" "
         "LOG_FILE_DIRECTORY=\"\" OVERRIDES_DIRECTORY=\"\" CONTACTS_DIRECTORY=\"\" "
         "LICENSE_DIRECTORY=\"\" USER_PROFILES_DIRECTORY=\"\" CALL_LISTS_DIRECTORY=\"\"/>\n";
}

namespace {

std::string SiteConfig() {
  std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<polycomConfig>\n";
  for (int i = 1; i <= 120; ++i) {
    char line[128];
    std::snprintf(line, sizeof line, "  <feature feature.%d.enabled=\"1\" feature.%d.name=\"f%03d\"/>\n",
                  i, i, i);
    s += line;
  }
  s += "  <prov prov.polling.enabled=\"1\" prov.polling.period=\"86400\"/>\n</polycomConfig>\n";
  return s;
}

std::string SiteDirectory() {
  std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<directory>\n<item_list>\n";
  for (int i = 0; i < 40; ++i) {
    char line[160];
    std::snprintf(line, sizeof line,
                  "<item><fn>User</fn><ln>%03d</ln><ct>%d</ct><sd>%d</sd></item>\n", i, 2000 + i,
                  i + 1);
    s += line;
  }
  return s + "</item_list>\n</directory>\n";
}

}  // namespace

std::vector<OriginFile> OriginTree(const std::vector<PhoneSpec>& phones, uint64_t firmware_bytes) {
  std::vector<OriginFile> t;
  auto small = [&](std::string path, std::string body) {
    OriginFile f;
    f.path = std::move(path);
    f.small_body = std::move(body);
    t.push_back(std::move(f));
  };
  small("000000000000.cfg", MasterConfig());
  small("sip.ver", "5.9.7.47435\n");
  small("site.cfg", SiteConfig());
  small("000000000000-directory.xml", SiteDirectory());
  uint32_t id = 1;
  auto image = [&](std::string path) {
    OriginFile f;
    f.path = std::move(path);
    f.pattern_size = firmware_bytes;
    f.pattern_id = id++;
    f.firmware = true;
    t.push_back(std::move(f));
  };
  image("sip.ld");
  for (const Model& m : Models()) image(std::string(m.part) + ".sip.ld");
  for (const PhoneSpec& p : phones) {
    if (p.own_config) small(p.mac + ".cfg", MasterConfig());
  }
  return t;
}

const uint8_t* PatternBlock() {
  static const std::vector<uint8_t> kBlock = [] {
    std::vector<uint8_t> b(kPatternBlock);
    Rng rng(0x5eed5eed);
    for (size_t i = 0; i < b.size(); i += 8) {
      uint64_t v = rng.Next();
      for (size_t k = 0; k < 8; ++k) b[i + k] = static_cast<uint8_t>(v >> (8 * k));
    }
    return b;
  }();
  return kBlock.data();
}

std::pair<const uint8_t*, size_t> PatternSpan(uint32_t id, uint64_t offset, uint64_t max) {
  // 104729 is prime and odd, so different ids start at different places of the block.
  uint64_t pos = (offset + static_cast<uint64_t>(id) * 104729) % kPatternBlock;
  uint64_t n = std::min<uint64_t>(max, kPatternBlock - pos);
  return {PatternBlock() + pos, static_cast<size_t>(n)};
}

TokenBucket::TokenBucket(double bytes_per_second, double burst_bytes, uint64_t now_ns)
    : rate_(bytes_per_second), burst_(burst_bytes), tokens_(burst_bytes), last_ns_(now_ns) {}

void TokenBucket::Refill(uint64_t now_ns) {
  if (now_ns <= last_ns_) return;
  tokens_ = std::min(burst_, tokens_ + rate_ * static_cast<double>(now_ns - last_ns_) * 1e-9);
  last_ns_ = now_ns;
}

bool TokenBucket::TryTake(uint64_t now_ns, uint64_t bytes) {
  if (unlimited()) return true;
  Refill(now_ns);
  if (tokens_ <= 0) return false;
  tokens_ -= static_cast<double>(bytes);
  return true;
}

uint64_t TokenBucket::WaitNs(uint64_t now_ns) {
  if (unlimited()) return 0;
  Refill(now_ns);
  if (tokens_ > 0) return 0;
  // +1 ns: at exactly the computed time the bucket is at 0, which is still empty.
  return static_cast<uint64_t>(std::ceil(-tokens_ / rate_ * 1e9)) + 1;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
  size_t i = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(i, sorted.size() - 1)];
}

Result<std::pair<std::string, uint16_t>> ParseHostPort(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument("\"" + std::string(text) + "\" is not IPv4:PORT");
  }
  std::string host(text.substr(0, colon));
  in_addr addr{};
  if (inet_pton(AF_INET, host.c_str(), &addr) != 1) {
    return Status::InvalidArgument("\"" + host + "\" is not an IPv4 address");
  }
  std::string_view port = text.substr(colon + 1);
  uint32_t n = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  if (ec != std::errc() || end != port.data() + port.size() || port.empty() || n > 65535) {
    return Status::InvalidArgument("port \"" + std::string(port) + "\" must be 0-65535");
  }
  return std::make_pair(host, static_cast<uint16_t>(n));
}

bool ParseNumber(std::string_view text, double* out) {
  if (text.empty() || text.find_first_not_of("0123456789.") != std::string_view::npos) {
    return false;
  }
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

}  // namespace siterelay::fleet
