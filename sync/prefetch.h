// Prefetcher: one sync pass (CONTRACT.md `siterelay sync`, [origin] manifest / prefetch /
// sync_interval, POST /api/v1/sync).
//
// With a manifest: fetch and parse it, download every listed file the cache does not hold
// (verified against its sha256: a mismatch is discarded, retried with backoff, reported, never
// served), and once every file is present publish the whole set in ONE catalog transaction, as
// manifest entries (pinned, never revalidated one by one). A phone therefore never sees a master
// config of the new set next to a firmware image of the old one (DESIGN.md invariant). Files of
// the previous set that the new one drops become ordinary pull-through entries again (unpinned,
// stale, so the origin is asked before they are served). If any file cannot be had, nothing is
// published and the previous set stays in force.
// With a `prefetch` list: each path is pulled through like a phone's miss, then pinned. The
// manifest's set is published first, so phones see it without waiting for the prefetch list.
//
// Ownership: borrows the cache and the fetcher, which outlive it.
// Thread safety: loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cache/cache.h"
#include "relay/base/clock.h"
#include "relay/base/config.h"
#include "relay/base/uv.h"
#include "sync/fetcher.h"
#include "sync/manifest.h"

namespace siterelay::sync {

// How far the current (or last) pass got: the CLI's progress bar and the console read it.
struct SyncProgress {
  bool running = false;
  int64_t started_at = 0;
  int64_t finished_at = 0;
  size_t files_total = 0;   // listed in the manifest and the prefetch list
  size_t files_done = 0;    // present and verified (already cached ones included)
  size_t files_failed = 0;
  uint64_t bytes_total = 0;  // of the files still to download at the start of the pass
  uint64_t bytes_done = 0;
  uint64_t generation = 0;   // id of the newest manifest set published (catalog generations)
  Status result;             // of the last finished pass
};

// One line per event for logs and the CLI: "verified fw/sip.ld (31457280 bytes)".
using SyncEvent = std::function<void(const std::string& line)>;

inline constexpr int kMaxObjectAttempts = 3;  // downloads of one manifest file per pass
inline constexpr size_t kParallelDownloads = 4;

class Prefetcher {
 public:
  Prefetcher(uv_loop_t* loop, const OriginConfig& config, cache::Cache* cache, Fetcher* fetcher,
             Clock* clock);
  ~Prefetcher();

  // Nothing to do: no manifest and no prefetch list.
  bool configured() const { return !config_.manifest.empty() || !config_.prefetch.empty(); }
  // Starts a pass unless one is running (then `done` joins it). `done` gets OK only when every
  // listed file is cached and verified.
  void Run(std::function<void(Status)> done);
  SyncProgress progress() const;
  void OnEvent(SyncEvent cb) { on_event_ = std::move(cb); }

  // The manifest's URL: `manifest` as it is when absolute, else relative to `url`.
  static std::string ManifestUrl(const OriginConfig& config);

 private:
  struct Download {
    ManifestFile file;
    int attempts = 0;
  };

  void GotManifest(Result<std::string> body);
  void PumpDownloads();
  void Downloaded(Download d, Status s);
  void PrefetchPaths();
  void PublishManifest();  // then PrefetchPaths()
  void PinPrefetched();    // then Finish()
  void Finish(Status s);
  void Event(const std::string& line);

  uv_loop_t* loop_;
  OriginConfig config_;
  cache::Cache* cache_;
  Fetcher* fetcher_;
  Clock* clock_;
  SyncProgress progress_;
  SyncEvent on_event_;
  std::vector<std::function<void(Status)>> waiters_;
  Manifest manifest_;
  std::deque<Download> queue_;
  size_t active_ = 0;
  std::vector<Download> retry_;  // failed downloads waiting for the backoff
  std::vector<std::string> failures_;
  uint64_t bytes_at_start_ = 0;  // fetcher's byte counter when the pass began
  size_t prefetch_left_ = 0;
  std::unique_ptr<Timer> backoff_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace siterelay::sync
