// ConfigGate: config-aware prefetch (issue 12). Never point a phone at firmware that is not here.
//
// When the origin publishes a new version of a master config (000000000000.cfg, <mac>.cfg) the
// Fetcher does not publish it: it hands it here (sync::PublishGate) and keeps the version in
// force, fresh, for phones. The gate reads what the new version names for this site's phones
// (SiteFilesFor: for each model and part number in the device inventory, the image under its
// split and plain names, the config files, MISC_FILES) and fetches what is not cached, at
// background priority (after every phone's ask, within max_rate, only while the sync window is
// open; each body verified as it is stored). Once all of it is cached it publishes the config: a
// phone that reads it finds every file it names already local. Until then the config is held,
// with what it waits for, the reason, and an estimate at the current WAN rate (the console, the
// metrics); a file the origin does not have, or keeps failing, keeps it held and is tried again
// later; an operator can release it by hand.
//
// Files are published as each arrives, in its own transaction: a file no published config names
// is not asked for by phones that follow their configs, and what arrived survives a restart (a
// 300 MB image is not fetched twice). The config's own transaction comes last, after each file
// it names was checked to be still cached, and publishes those files again with it, fresh from
// that moment: phones that read the new config find its files local, not due for revalidation.
//
// Held configs live in memory: after a restart the config in force is still the old one, stale,
// so the next phone's read revalidates it and the new version comes back here.
//
// PrefetchForSite() applies the same reading to the configs in force: what they name for the
// site's phones is fetched ahead of the phones (issue 12, "prefetch what the site's phones will
// ask for next"). serve.cc calls it with each background sync pass.
//
// Ownership: borrows everything; outlives nothing. Thread safety: loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cache.h"
#include "relay/base/clock.h"
#include "relay/base/uv.h"
#include "relay/files/file_service.h"
#include "relay/files/parsed_files.h"
#include "sync/fetcher.h"

namespace siterelay::files {

// One file a held config waits for (the console's and the API's view).
struct HeldFile {
  std::string path;  // the name being fetched, or the one found
  enum class State { kWaiting, kFetching, kHere, kFailed } state = State::kWaiting;
  uint64_t bytes_done = 0;
  std::optional<uint64_t> bytes_total;  // once the origin said
  std::string error;                    // kFailed: why
};
std::string_view HeldFileStateName(HeldFile::State s);  // "waiting", "fetching", "here", "failed"

struct HeldConfig {
  std::string path;
  Digest sha256;  // of the held version
  uint64_t size = 0;
  int64_t since = 0;  // Unix seconds
  std::string reason;
  std::vector<HeldFile> files;
  // Seconds until every file is here at the current WAN rate; nullopt while a size or the rate
  // is unknown, or a file failed.
  std::optional<int64_t> eta_seconds;
};

// A file that failed is asked again this long after (doubling per failure, up to kMaxRetryMs).
inline constexpr uint64_t kRetryMs = 30'000;
inline constexpr uint64_t kMaxRetryMs = 15 * 60'000;

class ConfigGate : public sync::PublishGate {
 public:
  // `fresh_for`: [origin] fresh_for, for what it publishes.
  ConfigGate(uv_loop_t* loop, FileService* files, cache::Cache* cache, sync::Fetcher* fetcher,
             Clock* clock, int64_t fresh_for);
  ~ConfigGate() override;
  ConfigGate(const ConfigGate&) = delete;
  ConfigGate& operator=(const ConfigGate&) = delete;

  bool Gated(std::string_view path) const override;
  void Arrived(cache::Entry entry) override;

  // Background fetches start only while `open` says so ([origin] window); default: always.
  void SetWindow(std::function<bool()> open) { window_ = std::move(open); }
  // Fetches what the configs in force name for the site's phones and is not cached.
  void PrefetchForSite();

  std::vector<HeldConfig> held() const;
  // The operator's release: publishes the held version of `path` now, whatever it waits for.
  // NotFound when nothing is held for it.
  Status Release(std::string_view path);
  uint64_t released() const { return released_; }
  // WAN bytes/s over the last seconds, as the estimate uses it.
  double wan_rate() const { return rate_; }

 private:
  struct Want {
    std::vector<std::string> names;  // catalog paths, in the order a phone tries them
    size_t at = 0;                   // the one being tried
    HeldFile::State state = HeldFile::State::kWaiting;
    std::shared_ptr<cache::GrowingFile> body;  // while it arrives, for progress
    std::string error;
    int failures = 0;
    uint64_t retry_at = 0;  // uv_now() after which a failed file is tried again
  };
  struct Held {
    uint64_t id = 0;
    cache::Entry entry;
    int64_t since = 0;
    std::vector<Want> wants;
    bool publishing = false;
  };

  // What `config_path`'s config names for the phones it serves, as catalog paths.
  std::vector<std::vector<std::string>> Needed(const std::string& config_path,
                                               const MasterConfig& config) const;
  void Pump();
  void Start(const std::string& config_path, uint64_t id, size_t i);
  void Fetched(const std::string& config_path, uint64_t id, size_t i, const Status& s);
  void MaybePublish(Held& h);
  void Publish(const std::string& config_path, uint64_t id, bool by_hand);
  void Tick();
  bool WindowOpen() const { return !window_ || window_(); }

  uv_loop_t* loop_;
  FileService* files_;
  cache::Cache* cache_;
  sync::Fetcher* fetcher_;
  Clock* clock_;
  int64_t fresh_for_;
  std::function<bool()> window_;
  std::map<std::string, Held, std::less<>> held_;  // by config path
  uint64_t next_id_ = 1;
  uint64_t released_ = 0;
  std::unique_ptr<Timer> tick_;
  uint64_t last_bytes_ = 0;  // fetcher's bytes_from_origin at the last tick
  uint64_t last_tick_ms_ = 0;
  double rate_ = 0;  // bytes/s, smoothed
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace siterelay::files
