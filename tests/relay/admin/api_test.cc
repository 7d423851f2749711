#include "relay/admin/api.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

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
  in.sync_configured = true;
  in.sync.files_total = 10;
  in.sync.files_done = 4;
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
  EXPECT_EQ(j["log_spool"]["shipping"], false);
}

TEST(ApiTest, DevicesAndFilesAreListsOfObjects) {
  std::map<std::string, files::Device> devices;
  files::Device d;
  d.mac = "0004f282e824";
  d.model = "VVX_500";
  d.protocol = files::Protocol::kTftp;
  d.first_seen = 5;
  devices[d.mac] = d;
  auto dj = DevicesJson(devices);
  ASSERT_EQ(dj.size(), 1u);
  EXPECT_EQ(dj[0]["mac"], "0004f282e824");
  EXPECT_EQ(dj[0]["protocol"], "tftp");
  EXPECT_EQ(dj[0]["first_seen"], 5);
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
