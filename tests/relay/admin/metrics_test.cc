#include "relay/admin/metrics.h"

#include <gtest/gtest.h>

#include <sstream>

namespace siterelay::admin {
namespace {

bool Has(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (l == line) return true;
  }
  return false;
}

TEST(MetricsTest, CountersHaveHelpTypeAndLabels) {
  Metrics m;
  m.version = "0.1.0";
  ProtocolMetrics http;
  http.protocol = "http";
  http.results = {{"200", 7}, {"404", 2}};
  http.open = 3;
  m.protocols.push_back(http);
  m.served_bytes[static_cast<size_t>(ContentClass::kFirmware)] = 1000;
  m.origin_bytes[static_cast<size_t>(ContentClass::kFirmware)] = 400;
  m.stale_serves = 5;
  std::string text = RenderPrometheus(m);
  EXPECT_TRUE(Has(text, "# TYPE siterelay_requests_total counter"));
  EXPECT_TRUE(Has(text, "siterelay_requests_total{protocol=\"http\",result=\"200\"} 7"));
  EXPECT_TRUE(Has(text, "siterelay_requests_total{protocol=\"http\",result=\"404\"} 2"));
  EXPECT_TRUE(Has(text, "siterelay_open{protocol=\"http\"} 3"));
  EXPECT_TRUE(Has(text, "siterelay_served_bytes_total{class=\"firmware\"} 1000"));
  EXPECT_TRUE(Has(text, "siterelay_origin_bytes_total{class=\"firmware\"} 400"));
  EXPECT_TRUE(Has(text, "siterelay_stale_serves_total 5"));
  EXPECT_TRUE(Has(text, "siterelay_build_info{version=\"0.1.0\"} 1"));
  EXPECT_FALSE(Has(text, "# TYPE siterelay_log_batches_pending gauge"))
      << "log metrics only when logs ship";
  // Every sample line belongs to a family declared before it.
  std::istringstream in(text);
  std::string family;
  for (std::string l; std::getline(in, l);) {
    if (l.rfind("# TYPE ", 0) == 0) {
      family = l.substr(7, l.find(' ', 7) - 7);
    } else if (l[0] != '#') {
      EXPECT_EQ(l.substr(0, family.size()), family) << l;
    }
  }
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  Metrics m;
  m.version = "a\"b\\c\nd";
  EXPECT_TRUE(Has(RenderPrometheus(m), "siterelay_build_info{version=\"a\\\"b\\\\c\\nd\"} 1"));
}

TEST(MetricsTest, LogMetricsAppearWhenLogsShip) {
  Metrics m;
  m.logs_enabled = true;
  m.log_pending_batches = 4;
  m.log_dropped_lines = 12;
  std::string text = RenderPrometheus(m);
  EXPECT_TRUE(Has(text, "siterelay_log_batches_pending 4"));
  EXPECT_TRUE(Has(text, "siterelay_log_lines_dropped_total 12"));
}

TEST(MetricsTest, TlsSyncAndDevicesAreExported) {
  Metrics m;
  m.tls_handshakes = 5;
  m.tls_handshake_failures = 1;
  m.devices = 3;
  m.devices_firmware_mismatch = 1;
  std::string text = RenderPrometheus(m);
  EXPECT_NE(text.find("siterelay_tls_handshakes_total 5\n"), std::string::npos);
  EXPECT_NE(text.find("siterelay_tls_handshake_failures_total 1\n"), std::string::npos);
  EXPECT_NE(text.find("siterelay_devices 3\n"), std::string::npos);
  EXPECT_NE(text.find("siterelay_devices_firmware_mismatch 1\n"), std::string::npos);
  EXPECT_EQ(text.find("siterelay_sync_"), std::string::npos) << "no sync configured";
  m.sync_configured = true;
  m.sync.running = true;
  m.sync.files_total = 4;
  m.sync.files_done = 1;
  m.sync.bytes_total = 1000;
  m.sync.bytes_done = 250;
  text = RenderPrometheus(m);
  EXPECT_NE(text.find("siterelay_sync_running 1\n"), std::string::npos);
  EXPECT_NE(text.find("siterelay_sync_files{state=\"total\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("siterelay_sync_files{state=\"done\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("siterelay_sync_bytes{state=\"done\"} 250\n"), std::string::npos);
  EXPECT_NE(text.find("siterelay_sync_last_success 1\n"), std::string::npos);
}

TEST(MetricsTest, HeldConfigsAreExportedWhenTheGateIsOn) {
  Metrics m;
  m.configs_held = 2;
  std::string text = RenderPrometheus(m);
  EXPECT_EQ(text.find("siterelay_configs_"), std::string::npos) << "hold_configs off: none";
  m.configs_gated = true;
  m.configs_held_files_waiting = 3;
  m.configs_released = 7;
  text = RenderPrometheus(m);
  EXPECT_TRUE(Has(text, "# TYPE siterelay_configs_held gauge"));
  EXPECT_TRUE(Has(text, "siterelay_configs_held 2"));
  EXPECT_TRUE(Has(text, "# TYPE siterelay_configs_held_files_waiting gauge"));
  EXPECT_TRUE(Has(text, "siterelay_configs_held_files_waiting 3"));
  EXPECT_TRUE(Has(text, "# TYPE siterelay_configs_released_total counter"));
  EXPECT_TRUE(Has(text, "siterelay_configs_released_total 7"));
  for (const char* name : {"siterelay_configs_held", "siterelay_configs_held_files_waiting",
                           "siterelay_configs_released_total"}) {
    EXPECT_NE(text.find(std::string("# HELP ") + name + " "), std::string::npos) << name;
  }
}

TEST(MetricsTest, ResidentMemoryIsKnownOnLinux) { EXPECT_GT(ResidentBytes(), 1u << 20); }

}  // namespace
}  // namespace siterelay::admin
