#include "tools/phone-fleet/model.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>

#include "relay/base/config.h"
#include "tools/phone-fleet/relay_process.h"

namespace siterelay::fleet {
namespace {

TEST(MixTest, ParsesNamesAndWeightsInOrder) {
  auto mix = ParseMix("http=70,https=10,tftp=10,ftp=5,ftps=5");
  ASSERT_TRUE(mix.ok()) << mix.status().ToString();
  ASSERT_EQ(mix->size(), 5u);
  EXPECT_EQ((*mix)[0], std::make_pair(std::string("http"), 70u));
  EXPECT_EQ((*mix)[4], std::make_pair(std::string("ftps"), 5u));
}

TEST(MixTest, RefusesMalformedMixes) {
  for (const char* bad : {"", "http", "http=", "=5", "http=x", "http=-1", "http=1,", "http=0",
                          "http=1,http=2", "http=1000001", "http=1.5"}) {
    EXPECT_FALSE(ParseMix(bad).ok()) << bad;
  }
  EXPECT_TRUE(ParseMix("http=1000000").ok());
  EXPECT_TRUE(ParseMix("http=0,ftp=1").ok());
}

TEST(ApportionTest, CountsSumToNWithLargestRemaindersFirst) {
  // 24 x (70, 10, 10, 5, 5)% = 16.8, 2.4, 2.4, 1.2, 1.2: the two extra phones go to the largest
  // remainders, the tie to the earlier entry.
  EXPECT_EQ(Apportion(24, {70, 10, 10, 5, 5}), (std::vector<size_t>{17, 3, 2, 1, 1}));
  EXPECT_EQ(Apportion(1000, {70, 10, 10, 5, 5}), (std::vector<size_t>{700, 100, 100, 50, 50}));
  EXPECT_EQ(Apportion(3, {0, 1, 0}), (std::vector<size_t>{0, 3, 0}));
  EXPECT_EQ(Apportion(0, {1, 1}), (std::vector<size_t>{0, 0}));
  for (size_t n : {1u, 2u, 7u, 99u, 1001u}) {
    std::vector<size_t> c = Apportion(n, {3, 1, 1, 0, 2});
    size_t sum = 0;
    for (size_t v : c) sum += v;
    EXPECT_EQ(sum, n);
    EXPECT_EQ(c[3], 0u) << "a zero weight never gets a phone";
  }
}

TEST(PercentileTest, IsTheNearestRank) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(Percentile(v, 50), 50);
  EXPECT_EQ(Percentile(v, 95), 95);
  EXPECT_EQ(Percentile(v, 99), 99);
  EXPECT_EQ(Percentile(v, 100), 100);
  EXPECT_EQ(Percentile({7}, 50), 7);
  EXPECT_EQ(Percentile({7}, 99), 7);
  EXPECT_EQ(Percentile({1, 2}, 50), 1);
  EXPECT_EQ(Percentile({1, 2}, 51), 2);
  EXPECT_EQ(Percentile({}, 50), 0);
}

FleetShape Shape(size_t n, uint64_t seed) {
  FleetShape s;
  s.phones = n;
  s.seed = seed;
  s.proto_weights = {70, 10, 10, 5, 5};
  s.model_weights = {30, 25, 15, 10, 15, 5};
  return s;
}

TEST(PhonesTest, SameSeedSamePhonesOtherSeedOthers) {
  auto a = MakePhones(Shape(50, 7));
  auto b = MakePhones(Shape(50, 7));
  auto c = MakePhones(Shape(50, 8));
  ASSERT_EQ(a.size(), 50u);
  size_t same_as_c = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].mac, b[i].mac);
    EXPECT_EQ(a[i].model, b[i].model);
    EXPECT_EQ(a[i].proto, b[i].proto);
    EXPECT_EQ(a[i].boot_log_bytes, b[i].boot_log_bytes);
    same_as_c += a[i].mac == c[i].mac;
  }
  EXPECT_EQ(same_as_c, 0u);
}

TEST(PhonesTest, MacsAreUniquePolyAndClassCountsExact) {
  auto phones = MakePhones(Shape(5000, 1));
  std::set<std::string> macs;
  std::map<Proto, size_t> protos;
  std::map<int, size_t> models;
  for (const PhoneSpec& p : phones) {
    ASSERT_EQ(p.mac.size(), 12u);
    EXPECT_EQ(p.mac.find_first_not_of("0123456789abcdef"), std::string::npos) << p.mac;
    std::string prefix = p.mac.substr(0, 6);
    EXPECT_TRUE(prefix == "0004f2" || prefix == "482567" || prefix == "64167f") << p.mac;
    macs.insert(p.mac);
    ++protos[p.proto];
    ++models[p.model];
    EXPECT_EQ(p.start_s, 0) << "storm: everyone at 0";
  }
  EXPECT_EQ(macs.size(), phones.size());
  EXPECT_EQ(protos[Proto::kHttp], 3500u);
  EXPECT_EQ(protos[Proto::kFtps], 250u);
  EXPECT_EQ(models[FindModel("VVX_500")], 1500u);
  EXPECT_EQ(models[FindModel("SPIP_550")], 250u);
}

TEST(PhonesTest, SpreadStartsAreInsideTheWindow) {
  FleetShape s = Shape(1000, 3);
  s.spread_s = 60;
  double lo = 60, hi = 0;
  for (const PhoneSpec& p : MakePhones(s)) {
    EXPECT_GE(p.start_s, 0);
    EXPECT_LT(p.start_s, 60);
    lo = std::min(lo, p.start_s);
    hi = std::max(hi, p.start_s);
  }
  EXPECT_LT(lo, 1);  // uniform: 1,000 phones cover the window
  EXPECT_GT(hi, 59);
}

TEST(PhonesTest, UserAgentsHaveThePhonesShape) {
  PhoneSpec p;
  p.mac = "0004f282e824";
  p.model = FindModel("VVX_500");
  EXPECT_EQ(UserAgent(p, false), "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application");
  EXPECT_EQ(UserAgent(p, true), "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Updater");
  p.model = FindModel("SPIP_550");
  EXPECT_EQ(UserAgent(p, false),
            "FileTransport PolycomSoundPointIP-SPIP_550-UA/4.0.15.1047 (SN:0004f282e824) "
            "Type/Application");
  p.model = FindModel("Edge_E450");
  EXPECT_EQ(UserAgent(p, false), "FileTransport PolyEdge-Edge_E450-UA/8.0.2 Type/Application");
}

TEST(PhonesTest, LogsAreWholeLinesOfTheRequestedLength) {
  PhoneSpec p;
  p.mac = "0004f282e824";
  std::string log = PhoneLog(p, true, 5000);
  EXPECT_EQ(log.size(), 5000u);
  EXPECT_EQ(log.back(), '\n');
  EXPECT_EQ(log.substr(10, 1), "|");  // MMDDhhmmss|module|...
  EXPECT_EQ(PhoneLog(p, true, 5000), log);
  EXPECT_NE(PhoneLog(p, false, 5000), log);
}

std::vector<std::string> Paths(const std::vector<Step>& plan) {
  std::vector<std::string> out;
  for (const Step& s : plan) {
    out.push_back(std::string(s.op == Op::kGet ? "GET " : s.op == Op::kHead ? "HEAD " : "PUT ") +
                  s.path);
  }
  return out;
}

TEST(BootPlanTest, FollowsTheCapturedBoot) {
  PhoneSpec p;
  p.mac = "0004f282e824";
  p.model = FindModel("VVX_500");
  p.proto = Proto::kHttp;
  std::vector<Step> plan = BootPlan(p);
  EXPECT_EQ(Paths(plan), (std::vector<std::string>{
                             "PUT 0004f282e824-boot.log", "GET 0004f282e824.cfg",
                             "GET 000000000000.cfg", "GET 3111-44500-001.sip.ld", "GET site.cfg",
                             "GET 0004f282e824-phone.cfg", "GET 0004f282e824-web.cfg",
                             "GET 000000000000-license.cfg", "GET 0004f282e824-license.cfg",
                             "GET 0004f282e824-calls.xml", "GET 0004f282e824-directory.xml",
                             "GET 000000000000-directory.xml", "HEAD 0004f282e824-app.log",
                             "PUT 0004f282e824-app.log"}));
  EXPECT_TRUE(plan[0].updater);
  EXPECT_FALSE(plan[1].updater);
  EXPECT_TRUE(plan[1].missing_ok);
  EXPECT_TRUE(plan[2].fallback);
  EXPECT_FALSE(plan[2].missing_ok);
  EXPECT_FALSE(plan[3].missing_ok) << "the firmware must be there";
  EXPECT_FALSE(plan[0].append);
}

TEST(BootPlanTest, TftpHasNoHeadAndFtpAppendsLogs) {
  PhoneSpec p;
  p.mac = "0004f282e824";
  p.proto = Proto::kTftp;
  for (const Step& s : BootPlan(p)) EXPECT_NE(s.op, Op::kHead) << s.path;
  p.proto = Proto::kFtps;
  for (const Step& s : BootPlan(p)) EXPECT_EQ(s.append, s.op == Op::kPut) << s.path;
}

TEST(OriginTreeTest, HasEveryImageTheMasterConfigAndOwnConfigs) {
  PhoneSpec own, other;
  own.mac = "0004f2000001";
  own.own_config = true;
  other.mac = "0004f2000002";
  auto tree = OriginTree({own, other}, 1000);
  std::map<std::string, const OriginFile*> by;
  for (const OriginFile& f : tree) by[f.path] = &f;
  ASSERT_TRUE(by.count("000000000000.cfg"));
  EXPECT_NE(by["000000000000.cfg"]->small_body.find("APP_FILE_PATH=\"sip.ld\""), std::string::npos);
  EXPECT_TRUE(by.count("0004f2000001.cfg"));
  EXPECT_FALSE(by.count("0004f2000002.cfg"));
  std::set<uint32_t> ids;
  for (const Model& m : Models()) {
    const OriginFile* f = by[std::string(m.part) + ".sip.ld"];
    ASSERT_NE(f, nullptr) << m.part;
    EXPECT_TRUE(f->firmware);
    EXPECT_EQ(f->pattern_size, 1000u);
    ids.insert(f->pattern_id);
  }
  ASSERT_TRUE(by.count("sip.ld"));
  ids.insert(by["sip.ld"]->pattern_id);
  EXPECT_EQ(ids.size(), Models().size() + 1) << "every image has its own bytes";
}

TEST(PatternTest, SpansAreContiguousAndImagesDiffer) {
  auto [p, n] = PatternSpan(1, 0, 100);
  EXPECT_EQ(n, 100u);
  // A span never runs past the block's end: the rest comes from its start.
  uint64_t off = 0;
  size_t total = 0;
  while (total < kPatternBlock + 10) {
    auto [q, m] = PatternSpan(2, off, 4096);
    ASSERT_GT(m, 0u);
    EXPECT_LE(q + m, PatternBlock() + kPatternBlock);
    off += m;
    total += m;
  }
  EXPECT_NE(std::memcmp(PatternSpan(1, 0, 64).first, PatternSpan(2, 0, 64).first, 64), 0);
}

TEST(TokenBucketTest, LetsAChunkThroughWhileNotEmptyAndChargesTheDebt) {
  const uint64_t s = 1000000000;  // ns
  TokenBucket b(1000, 100, 0);    // 1000 B/s, 100 B burst
  EXPECT_TRUE(b.TryTake(0, 300));  // 100 saved: goes through, 200 in debt
  EXPECT_FALSE(b.TryTake(0, 1));
  EXPECT_EQ(b.WaitNs(0), s / 5 + 1);  // 200 B at 1000 B/s, then just past empty
  EXPECT_FALSE(b.TryTake(s / 5, 1));   // exactly empty is still empty
  EXPECT_TRUE(b.TryTake(s / 5 + s / 1000, 1));
  // Idle time saves up no more than the burst.
  EXPECT_TRUE(b.TryTake(100 * s, 100));
  EXPECT_FALSE(b.TryTake(100 * s, 1));
}

TEST(TokenBucketTest, HoldsTheRateOverTime) {
  const uint64_t s = 1000000000;
  TokenBucket b(6.25e6, 125000, 0);  // 50 Mbit/s
  uint64_t now = 0, sent = 0;
  while (now < 10 * s) {
    if (b.TryTake(now, 65536)) {
      sent += 65536;
    } else {
      now += b.WaitNs(now);
    }
  }
  EXPECT_NEAR(static_cast<double>(sent), 62.5e6, 125000 + 65536 + 1);
  TokenBucket unlimited(0, 0, 0);
  EXPECT_TRUE(unlimited.TryTake(0, 1ull << 40));
  EXPECT_EQ(unlimited.WaitNs(0), 0u);
}

TEST(OptionsTest, ParsesHostPortsAndNumbers) {
  auto hp = ParseHostPort("127.0.0.1:0");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->first, "127.0.0.1");
  EXPECT_EQ(hp->second, 0);
  EXPECT_EQ(ParseHostPort("10.1.2.3:65535")->second, 65535);
  for (const char* bad : {"127.0.0.1", "127.0.0.1:65536", ":80", "host:80", "1.2.3:4", "[::1]:80"}) {
    EXPECT_FALSE(ParseHostPort(bad).ok()) << bad;
  }
  double d = 0;
  EXPECT_TRUE(ParseNumber("0.5", &d));
  EXPECT_EQ(d, 0.5);
  EXPECT_TRUE(ParseNumber("30", &d));
  EXPECT_EQ(d, 30);
  for (const char* bad : {"", "-1", "1e3", "x", "1.2.3"}) EXPECT_FALSE(ParseNumber(bad, &d)) << bad;
}

TEST(RelayProcessTest, ReadsTheAnnouncedPortsOnceTheAdminLineIsThere) {
  std::string log =
      "2026-11-25T23:51:28.938Z info phones: http://127.0.0.1:40887/  (try: curl ...)\n"
      "2026-11-25T23:51:28.938Z info phones: tftp://127.0.0.1:42197/  (try: ...)\n"
      "2026-11-25T23:51:28.938Z info phones: ftps://127.0.0.1:40613/  (implicit TLS; ...)\n";
  EXPECT_FALSE(ParseAnnouncedPorts(log).has_value());
  log += "2026-11-25T23:51:28.938Z info admin: http://127.0.0.1:36413/healthz  (API user)\n";
  auto ports = ParseAnnouncedPorts(log);
  ASSERT_TRUE(ports.has_value());
  EXPECT_EQ((*ports)[static_cast<size_t>(Proto::kHttp)], 40887);
  EXPECT_EQ((*ports)[static_cast<size_t>(Proto::kHttps)], 0);
  EXPECT_EQ((*ports)[static_cast<size_t>(Proto::kTftp)], 42197);
  EXPECT_EQ((*ports)[static_cast<size_t>(Proto::kFtps)], 40613);
}

TEST(RelayProcessTest, WritesAConfigTheRelayAccepts) {
  std::array<bool, kProtoCount> protos{};
  protos[static_cast<size_t>(Proto::kHttp)] = true;
  protos[static_cast<size_t>(Proto::kTftp)] = true;
  auto c = ParseConfig(RelayConfig("/tmp/x/data", "http://127.0.0.1:9/", protos, 20000, true),
                       "fleet.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->data_dir, "/tmp/x/data");
  EXPECT_EQ(c->http.listen.size(), 1u);
  EXPECT_TRUE(c->https.listen.empty());
  EXPECT_TRUE(c->ftp.implicit_tls_listen.empty());
  EXPECT_TRUE(c->tftp.allow_uploads);
  EXPECT_EQ(c->ftp.passive_port_min, 20000);
  EXPECT_EQ(c->ftp.passive_port_max, 20999);
  ASSERT_EQ(c->accounts.size(), 1u);
  EXPECT_EQ(c->accounts[0].user, "PlcmSpIp");
}

}  // namespace
}  // namespace siterelay::fleet
