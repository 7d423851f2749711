// libFuzzer target for ParseConfig() (relay/base/config.h).
//
// The config file is operator input: no byte sequence may crash the parser. A file it accepts
// must satisfy everything the rest of the relay takes for granted of a Config, and a file it
// rejects must give the single line naming the file that CONTRACT.md promises ("A bad config
// file exits non-zero with one line naming the file, the key and what is wrong").
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "relay/base/config.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using siterelay::Cidr;
using siterelay::Config;
using siterelay::ListenAddress;
using siterelay::ListenerConfig;
using siterelay::TimeWindow;

constexpr std::string_view kSource = "fuzz.toml";

// The listeners are opened from these values and printed back in status and logs; printing and
// re-reading an address must give the same address.
bool RoundTrips(const ListenAddress& a) {
  auto again = ListenAddress::Parse(a.ToString());
  return again.ok() && *again == a;
}

void CheckAddresses(const std::vector<ListenAddress>& list) {
  for (const ListenAddress& a : list) FUZZ_CHECK(RoundTrips(a));
}

void CheckListener(const ListenerConfig& l) {
  CheckAddresses(l.listen);
  for (const Cidr& c : l.allow_from) FUZZ_CHECK(c.prefix >= 0 && c.prefix <= (c.ipv6 ? 128 : 32));
}

void CheckWindow(const TimeWindow& w) {
  if (w.any) return;
  FUZZ_CHECK(w.start_minute >= 0 && w.start_minute < 1440);
  FUZZ_CHECK(w.end_minute >= 0 && w.end_minute < 1440);
  FUZZ_CHECK(w.start_minute != w.end_minute);
}

// Mirrors the "root" rule of ParseConfig: absolute, no '\', no NUL, no "." or ".." segment.
bool RootIsConfined(const std::string& root) {
  if (root.empty() || root.front() != '/') return false;
  if (root.find('\\') != std::string::npos || root.find('\0') != std::string::npos) return false;
  size_t begin = 0;
  while (begin <= root.size()) {
    size_t end = root.find('/', begin);
    if (end == std::string::npos) end = root.size();
    std::string_view seg(root.data() + begin, end - begin);
    if (seg == "." || seg == "..") return false;
    begin = end + 1;
  }
  return true;
}

bool IsHttpUrl(const std::string& url) {
  return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
}

bool IsOriginUrl(const std::string& url) { return IsHttpUrl(url) || url.rfind("file:///", 0) == 0; }

void CheckConfig(const Config& c) {
  FUZZ_CHECK(c.source == kSource);
  FUZZ_CHECK(!c.data_dir.empty());
  FUZZ_CHECK(!c.relay_id.empty());

  // request /a/b.cfg maps to url + "a/b.cfg", so a set URL always ends in '/'.
  const auto& o = c.origin;
  FUZZ_CHECK(o.url.empty() || (o.url.back() == '/' && IsOriginUrl(o.url)));
  FUZZ_CHECK(!o.url.empty() || (o.manifest.empty() && o.prefetch.empty()));
  FUZZ_CHECK(o.fresh_for >= 0 && o.negative_for >= 0 && o.sync_interval >= 0 && o.max_rate >= 0);
  CheckWindow(o.window);
  for (const auto& r : o.routes) {
    FUZZ_CHECK(!r.match.empty());
    FUZZ_CHECK(!r.url.empty() && r.url.back() == '/' && IsOriginUrl(r.url));
  }

  std::set<std::string> users;
  for (const auto& a : c.accounts) {
    FUZZ_CHECK(!a.user.empty());
    FUZZ_CHECK(users.insert(a.user).second);
    FUZZ_CHECK(RootIsConfined(a.root));
  }

  CheckListener(c.http);
  CheckListener(c.https);
  CheckListener(c.tftp);
  CheckListener(c.ftp);
  CheckListener(c.admin);
  CheckAddresses(c.ftp.implicit_tls_listen);
  FUZZ_CHECK(c.ftp.passive_port_min >= 1);
  FUZZ_CHECK(c.ftp.passive_port_min <= c.ftp.passive_port_max);

  const std::string& v = c.tls.min_version;
  FUZZ_CHECK(v == "1.0" || v == "1.1" || v == "1.2" || v == "1.3");
  FUZZ_CHECK(c.tls.cert.empty() == c.tls.key.empty());

  FUZZ_CHECK(c.upload_max_bytes >= 1);
  FUZZ_CHECK(c.logs.upstream.empty() || IsHttpUrl(c.logs.upstream));
  FUZZ_CHECK(c.logs.batch_bytes >= 1024 && c.logs.batch_bytes <= (uint64_t{1} << 32));
  FUZZ_CHECK(c.logs.batch_age >= 1);
  FUZZ_CHECK(c.logs.spool_bytes >= c.logs.batch_bytes);
  FUZZ_CHECK(!c.admin.user.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = siterelay::ParseConfig(text, kSource);
  if (config.ok()) {
    CheckConfig(*config);
    return 0;
  }
  // One line that starts with the file name, whatever bytes the file held.
  const std::string& m = config.status().message();
  FUZZ_CHECK(m.size() > kSource.size() && m.compare(0, kSource.size(), kSource) == 0);
  FUZZ_CHECK(m.find('\n') == std::string::npos && m.find('\r') == std::string::npos);
  return 0;
}
