#include "relay/admin/api.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>

#include "relay/base/sha256.h"
#include "tests/testing/temp_dir.h"

namespace siterelay::admin {
namespace {

TEST(ApiTest, StatusHasTheContractsSections) {
  StatusInputs in;
  in.metrics.version = "0.1.0";
  in.metrics.started = 1000;
  in.metrics.cache_objects = 3;
  in.metrics.served_bytes[0] = 500;
  in.metrics.origin_bytes[0] = 200;
  ProtocolMetrics http;
  http.protocol = "http";
  http.results = {{"200", 4}};
  in.metrics.protocols.push_back(http);
  in.now = 1090;
  in.listeners = {{"http", "127.0.0.1:8080"}};
  in.origin_url = "https://prov.example.com/";
  in.metrics.sync_configured = true;
  in.metrics.sync.files_total = 10;
  in.metrics.sync.files_done = 4;
  in.metrics.tls_handshakes = 7;
  in.metrics.tls_handshake_failures = 2;
  in.metrics.devices = 12;
  in.metrics.devices_firmware_mismatch = 1;
  in.devices_seen_24h = 9;
  auto j = StatusJson(in);
  EXPECT_EQ(j["version"], "0.1.0");
  EXPECT_EQ(j["uptime_seconds"], 90);
  EXPECT_EQ(j["listeners"][0]["address"], "127.0.0.1:8080");
  EXPECT_EQ(j["requests"]["http"]["results"]["200"], 4);
  EXPECT_EQ(j["cache"]["objects"], 3);
  EXPECT_EQ(j["wan"]["saved_bytes"], 300);
  EXPECT_EQ(j["origin"]["configured"], true);
  EXPECT_EQ(j["sync"]["files_done"], 4);
  EXPECT_EQ(j["sync"]["result"], "ok");
  EXPECT_EQ(j["sync"]["configured"], true);
  EXPECT_EQ(j["tls"]["handshakes"], 7);
  EXPECT_EQ(j["tls"]["failures"], 2);
  EXPECT_EQ(j["devices"]["total"], 12);
  EXPECT_EQ(j["devices"]["seen_24h"], 9);
  EXPECT_EQ(j["devices"]["firmware_mismatch"], 1);
  EXPECT_EQ(j["log_spool"]["shipping"], false);
}

TEST(ApiTest, DevicesAndFilesAreListsOfObjects) {
  files::Device d;
  d.mac = "0004f282e824";
  d.model = "VVX_500";
  d.firmware = "5.9.7.47435";
  d.serial = "0004f282e824";
  d.protocol = files::Protocol::kTftp;
  d.first_seen = 5;
  d.last_boot = 7;
  d.files_fetched = 3;
  d.files_failed = 1;
  d.upload_bytes = 100;
  auto dj = DevicesJson({DeviceView{&d, "6.4.0"}, DeviceView{&d, ""}});
  ASSERT_EQ(dj.size(), 2u);
  EXPECT_EQ(dj[0]["mac"], "0004f282e824");
  EXPECT_EQ(dj[0]["protocol"], "tftp");
  EXPECT_EQ(dj[0]["first_seen"], 5);
  EXPECT_EQ(dj[0]["serial"], "0004f282e824");
  EXPECT_EQ(dj[0]["last_boot"], 7);
  EXPECT_EQ(dj[0]["files_fetched"], 3);
  EXPECT_EQ(dj[0]["files_failed"], 1);
  EXPECT_EQ(dj[0]["upload_bytes"], 100);
  EXPECT_EQ(dj[0]["expected_firmware"], "6.4.0");
  EXPECT_EQ(dj[0]["firmware_mismatch"], true);
  EXPECT_EQ(dj[1]["firmware_mismatch"], false) << "nothing expected: nothing to flag";
  cache::Entry e;
  e.path = "fw/sip.ld";
  e.size = 42;
  e.source = cache::Source::kImport;
  auto fj = FilesJson({e}, 0);
  ASSERT_EQ(fj.size(), 1u);
  EXPECT_EQ(fj[0]["path"], "fw/sip.ld");
  EXPECT_EQ(fj[0]["size"], 42);
  EXPECT_EQ(fj[0]["sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(fj[0]["state"], "imported");
  EXPECT_EQ(fj[0]["source"], "import");
}

TEST(ApiTest, FirmwareMismatchComparesTheVersionTheConfigGives) {
  EXPECT_FALSE(FirmwareMismatch("5.9.7.47435", "5.9.7.47435"));
  EXPECT_FALSE(FirmwareMismatch("5.9.7.47435", "5.9.7"));
  EXPECT_TRUE(FirmwareMismatch("5.9.7.47435", "5.9.8"));
  EXPECT_TRUE(FirmwareMismatch("5.9.71", "5.9.7"));
  EXPECT_TRUE(FirmwareMismatch("5.9.7", "5.9.7.47435"));
  EXPECT_FALSE(FirmwareMismatch("", "5.9.7"));
  EXPECT_FALSE(FirmwareMismatch("5.9.7", ""));
}

// A held 000000000000.cfg waiting for two files: one here, one the origin does not have.
std::vector<files::HeldConfig> HeldExample() {
  files::HeldConfig c;
  c.path = "000000000000.cfg";
  c.sha256 = Sha256::Of("new master config");
  c.size = 812;
  c.since = 1795636800;
  c.reason = "fw/6.4.0/sip.ld: not on the origin (tried again later)";
  files::HeldFile here;
  here.path = "site.cfg";
  here.state = files::HeldFile::State::kHere;
  here.bytes_done = 400;
  here.bytes_total = 400;
  files::HeldFile missing;
  missing.path = "fw/6.4.0/sip.ld";
  missing.state = files::HeldFile::State::kFailed;
  missing.error = "not on the origin";
  c.files = {here, missing};
  return {c};
}

TEST(ApiTest, ConfigsListWhatEachHeldConfigWaitsFor) {
  std::vector<files::HeldConfig> held = HeldExample();
  auto j = ConfigsJson(true, held, 3, 1234.6);
  EXPECT_EQ(j["enabled"], true);
  EXPECT_EQ(j["released"], 3);
  EXPECT_EQ(j["wan_rate"], 1235) << "whole bytes/s";
  ASSERT_EQ(j["held"].size(), 1u);
  nlohmann::json c = j["held"][0];
  EXPECT_EQ(c["path"], "000000000000.cfg");
  EXPECT_EQ(c["sha256"], Sha256::Of("new master config").Hex());
  EXPECT_EQ(c["size"], 812);
  EXPECT_EQ(c["since"], 1795636800);
  EXPECT_EQ(c["reason"], "fw/6.4.0/sip.ld: not on the origin (tried again later)");
  EXPECT_TRUE(c["eta_seconds"].is_null()) << "a failed file: no estimate";
  ASSERT_EQ(c["files"].size(), 2u);
  EXPECT_EQ(c["files"][0], nlohmann::json({{"path", "site.cfg"},
                                           {"state", "here"},
                                           {"bytes_done", 400},
                                           {"bytes_total", 400},
                                           {"error", ""}}));
  EXPECT_EQ(c["files"][1]["state"], "failed");
  EXPECT_TRUE(c["files"][1]["bytes_total"].is_null()) << "the origin never said";
  EXPECT_EQ(c["files"][1]["error"], "not on the origin");

  // Fetching, with a size and a rate: an estimate.
  held[0].files[1].state = files::HeldFile::State::kFetching;
  held[0].files[1].error.clear();
  held[0].files[1].bytes_done = 1000;
  held[0].files[1].bytes_total = 31457280;
  held[0].eta_seconds = 25;
  c = ConfigsJson(true, held, 3, 1e6)["held"][0];
  EXPECT_EQ(c["eta_seconds"], 25);
  EXPECT_EQ(c["files"][1]["state"], "fetching");
  EXPECT_EQ(c["files"][1]["bytes_done"], 1000);
  EXPECT_EQ(c["files"][1]["bytes_total"], 31457280);
}

TEST(ApiTest, ConfigsWithTheGateOffOrNothingHeld) {
  EXPECT_EQ(ConfigsJson(false, {}, 0, 0), nlohmann::json({{"enabled", false},
                                                          {"held", nlohmann::json::array()},
                                                          {"released", 0},
                                                          {"wan_rate", 0}}));
  EXPECT_EQ(ConfigsJson(true, {}, 0, std::nan(""))["wan_rate"], 0);
  EXPECT_EQ(ConfigsJson(true, {}, 0, -5)["wan_rate"], 0);
}

TEST(ApiTest, HeldFilesWaitingCountsEveryFileNotHere) {
  std::vector<files::HeldConfig> held = HeldExample();
  EXPECT_EQ(HeldFilesWaiting(held), 1u);
  held.push_back(held[0]);
  held[1].path = "0004f2aabbcc.cfg";
  held[1].files[0].state = files::HeldFile::State::kWaiting;
  EXPECT_EQ(HeldFilesWaiting(held), 3u);
  EXPECT_EQ(HeldFilesWaiting({}), 0u);
}

TEST(ApiTest, ReleaseRequestNamesOnePath) {
  Result<std::string> p = ParseReleaseRequest(R"({"path": "000000000000.cfg"})");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(*p, "000000000000.cfg");
  p = ParseReleaseRequest(R"( {"why": "vendor said so", "path": "sub/0004f2aabbcc.cfg"} )");
  ASSERT_TRUE(p.ok()) << "other members are ignored";
  EXPECT_EQ(*p, "sub/0004f2aabbcc.cfg");
  for (const char* bad :
       {"", "path=000000000000.cfg", "{", R"(["000000000000.cfg"])", "{}", R"({"path": 7})",
        R"({"path": null})", R"({"path": ""})", R"({"path": "a.cfg"} trailing)"}) {
    p = ParseReleaseRequest(bad);
    EXPECT_FALSE(p.ok()) << bad;
    EXPECT_TRUE(p.status().Is(StatusCode::kInvalidArgument)) << bad;
    EXPECT_FALSE(p.status().message().empty()) << bad;
  }
}

TEST(ApiTest, HistoryListsTheBuckets) {
  cache::TrafficRecord b;
  b.t = 600;
  b.served_bytes = 10;
  b.origin_bytes = 2;
  b.requests[1] = 4;
  auto j = HistoryJson({b}, 300, 700);
  EXPECT_EQ(j["bucket_seconds"], 300);
  EXPECT_EQ(j["now"], 700);
  ASSERT_EQ(j["points"].size(), 1u);
  EXPECT_EQ(j["points"][0]["t"], 600);
  EXPECT_EQ(j["points"][0]["served_bytes"], 10);
  EXPECT_EQ(j["points"][0]["origin_bytes"], 2);
  EXPECT_EQ(j["points"][0]["requests"]["https"], 4);
  EXPECT_EQ(j["points"][0]["requests"]["ftp"], 0);
}

TEST(ApiTest, ToolsGivePhonesEachListenersUrlAndTheCertificate) {
  ToolsInputs in;
  in.host = "10.1.2.3";
  in.listeners = {{"http", "0.0.0.0:80"},    {"https", "0.0.0.0:8443"},
                  {"tftp", "0.0.0.0:69"},    {"ftp", "192.168.7.1:2121"},
                  {"ftps", "127.0.0.1:990"}, {"admin", "127.0.0.1:5050"}};
  in.user = "DOM\\phone";
  in.password = "p@ss";
  in.certificate_pem = "-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----\n"
                       "-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n";
  auto j = ToolsJson(in);
  ASSERT_EQ(j["urls"].size(), 5u) << j.dump();
  EXPECT_EQ(j["urls"][0]["url"], "http://DOM\\phone:p@ss@10.1.2.3/");
  EXPECT_EQ(j["urls"][0]["dhcp_option"], "http://DOM%5Cphone:p%40ss@10.1.2.3/");
  EXPECT_EQ(j["urls"][1]["url"], "https://DOM\\phone:p@ss@10.1.2.3:8443/");
  EXPECT_EQ(j["urls"][2]["url"], "tftp://10.1.2.3/") << "TFTP has no login";
  EXPECT_EQ(j["urls"][3]["url"], "ftp://DOM\\phone:p@ss@192.168.7.1:2121/")
      << "a listener on one address is reached there";
  EXPECT_EQ(j["urls"][4]["protocol"], "ftps");
  EXPECT_EQ(j["urls"][4]["url"], "ftps://DOM\\phone:p@ss@127.0.0.1/")
      << "a loopback listener is not made to look reachable";
  EXPECT_EQ(j["ca_certificate"], "-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n");
  EXPECT_EQ(j["ca_snippet"],
            "device.sec.TLS.customCaCert1=\"-----BEGIN CERTIFICATE-----\nroot\n"
            "-----END CERTIFICATE-----\"");

  ToolsInputs v6;
  v6.host = "fd00::5";
  v6.listeners = {{"http", "[::]:8080"}};
  auto k = ToolsJson(v6);
  EXPECT_EQ(k["urls"][0]["url"], "http://[fd00::5]:8080/") << "no account: no credentials";
  EXPECT_EQ(k["ca_certificate"], "");
  EXPECT_EQ(k["ca_snippet"], "");
}

TEST(ApiTest, AdminPasswordIsMadeOnceKeptPrivateAndReused) {
  siterelay::testing::TempDir dir;
  EXPECT_TRUE(AdminPassword("", dir.path(), false).status().Is(StatusCode::kNotFound));
  auto first = AdminPassword("", dir.path(), true);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->size(), 20u);
  struct stat st;
  ASSERT_EQ(::stat((dir.path() + "/admin-password").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = AdminPassword("", dir.path(), true);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first) << "made once, then read back";
  EXPECT_EQ(*AdminPassword("", dir.path(), false), *first);
  EXPECT_EQ(*AdminPassword("configured", dir.path(), true), "configured");
}

}  // namespace
}  // namespace siterelay::admin
