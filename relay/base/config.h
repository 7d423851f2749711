// The relay's configuration: CONTRACT.md's TOML file as a typed struct with built-in defaults.
//
// ParseConfig() is a pure function over the file's text (fuzzed in tests/fuzz); LoadConfig()
// reads the file first. Every error is one line naming the file, the line where known, the key
// and what is wrong, e.g.
//   siterelay.toml:7: http.listen[0]: bad address "0.0.0.0:80800": port must be 0-65535
// Unknown keys are errors, so a typo never silently falls back to a default.
// A Config is a plain value: copy it, hand it to other threads read-only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "relay/base/status.h"

namespace siterelay {

// "0.0.0.0:8080", "[::1]:8443". Port 0 asks the kernel for a free port (tests).
struct ListenAddress {
  std::string host;  // numeric IPv4 or IPv6, without brackets
  uint16_t port = 0;
  bool ipv6 = false;

  std::string ToString() const;  // "[::1]:8443"
  static Result<ListenAddress> Parse(std::string_view text);
  friend bool operator==(const ListenAddress&, const ListenAddress&) = default;
};

// "10.1.0.0/16", "::1/128", or a bare address (a /32 or /128).
struct Cidr {
  bool ipv6 = false;
  uint8_t bytes[16] = {};
  int prefix = 0;

  static Result<Cidr> Parse(std::string_view text);
  // `addr` is 4 or 16 network-order bytes. IPv4-mapped IPv6 peers match IPv4 ranges.
  bool Contains(const uint8_t* addr, bool addr_ipv6) const;
};

// "HH:MM-HH:MM" in local time; may wrap midnight ("22:00-06:00"). Empty: any time.
struct TimeWindow {
  bool any = true;
  int start_minute = 0;  // minutes after midnight
  int end_minute = 0;

  static Result<TimeWindow> Parse(std::string_view text);
  bool Contains(int minute_of_day) const;
};

struct OriginRoute {
  std::string match;  // glob on the request path; first match wins
  std::string url;
  std::string user;
  std::string password;
};

struct OriginConfig {
  std::string url;  // "" = no origin. Always ends in '/' once parsed.
  std::string user;
  std::string password;
  std::string ca_file;
  std::string manifest;
  std::vector<std::string> prefetch;
  int64_t fresh_for = 60;
  int64_t negative_for = 30;
  int64_t sync_interval = 3600;
  int64_t max_rate = 0;
  TimeWindow window;
  // A new master config is published only once what it names is cached (files/config_gate.h).
  bool hold_configs = true;
  std::vector<OriginRoute> routes;
};

struct Account {
  std::string user;
  std::string password;
  std::string root = "/";
};

struct ListenerConfig {
  std::vector<ListenAddress> listen;
  std::vector<Cidr> allow_from;  // empty: everyone
};

struct TftpConfig : ListenerConfig {
  bool allow_uploads = false;
};

struct FtpConfig : ListenerConfig {
  std::vector<ListenAddress> implicit_tls_listen;
  uint16_t passive_port_min = 50000;
  uint16_t passive_port_max = 50100;
};

struct TlsConfig {
  std::string cert;  // "" = self-signed in data_dir/tls
  std::string key;
  std::string min_version = "1.2";  // "1.0", "1.1", "1.2" or "1.3"
};

struct LogsConfig {
  std::string upstream;
  std::string user;
  std::string password;
  uint64_t batch_bytes = 1 << 20;
  int64_t batch_age = 60;
  uint64_t spool_bytes = 512ull << 20;
  // A zstd dictionary (`zstd --train`) to compress batches with, for an upstream that has it;
  // "" (the default): none, so plain `zstd -d` decodes every batch (CONTRACT.md).
  std::string dictionary;
};

struct AdminConfig : ListenerConfig {
  std::string user = "admin";
  std::string password;  // "" = generated into data_dir/admin-password
  // Seconds a device that has not been seen stays in the inventory; 0 = forever.
  int64_t device_retention = 90 * 86400;
};

struct Config {
  std::string source = "<built-in defaults>";  // the file it came from, for messages
  std::string data_dir = "./siterelay-data";
  std::string relay_id;  // default: the host name
  OriginConfig origin;
  std::vector<Account> accounts;  // none: anonymous
  ListenerConfig http;
  ListenerConfig https;
  TftpConfig tftp;
  FtpConfig ftp;
  TlsConfig tls;
  uint64_t upload_max_bytes = 16 << 20;
  LogsConfig logs;
  uint64_t cache_max_bytes = 0;  // 0 = cached bytes + 90% of the free disk at start
  AdminConfig admin;

  // The built-in defaults of CONTRACT.md.
  static Config Defaults();
};

// Parses TOML text; `source` names it in errors.
Result<Config> ParseConfig(std::string_view text, std::string_view source);

// Reads and parses a file. An empty `path` yields the built-in defaults.
Result<Config> LoadConfig(const std::string& path);

}  // namespace siterelay
