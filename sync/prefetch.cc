#include "sync/prefetch.h"

#include <algorithm>
#include <set>

#include "relay/base/log.h"
#include "relay/base/mime.h"
#include "sync/backoff.h"

namespace siterelay::sync {
namespace {

constexpr uint64_t kRetryBackoffMs = 1000;  // doubled per attempt

std::string Plural(size_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

}  // namespace

Prefetcher::Prefetcher(uv_loop_t* loop, const OriginConfig& config, cache::Cache* cache,
                       Fetcher* fetcher, Clock* clock)
    : loop_(loop),
      config_(config),
      cache_(cache),
      fetcher_(fetcher),
      clock_(clock),
      backoff_(std::make_unique<Timer>(loop)) {
  std::vector<cache::GenerationRecord> last;
  Status s = cache_->LoadGenerations(1, &last);
  if (!s.ok()) SR_LOG(kWarning) << "sync: " << s.ToString();
  if (!last.empty()) progress_.generation = static_cast<uint64_t>(last[0].id);
}

Prefetcher::~Prefetcher() { *alive_ = false; }

std::string Prefetcher::ManifestUrl(const OriginConfig& config) {
  const std::string& m = config.manifest;
  if (m.find("://") != std::string::npos) return m;
  return config.url + (m.starts_with("/") ? m.substr(1) : m);
}

SyncProgress Prefetcher::progress() const {
  SyncProgress p = progress_;
  if (p.running) p.bytes_done = fetcher_->stats().bytes_from_origin - bytes_at_start_;
  // Prefetch paths' sizes are known only once fetched: the total is at least what came.
  p.bytes_total = std::max(p.bytes_total, p.bytes_done);
  return p;
}

void Prefetcher::Event(const std::string& line) {
  if (on_event_) {
    on_event_(line);
  } else {
    SR_LOG(kInfo) << "sync: " << line;
  }
}

void Prefetcher::Run(std::function<void(Status)> done) {
  waiters_.push_back(std::move(done));
  if (progress_.running) return;
  uint64_t generation = progress_.generation;
  progress_ = SyncProgress();
  progress_.generation = generation;
  progress_.running = true;
  progress_.started_at = clock_->NowSeconds();
  progress_.files_total = config_.prefetch.size();
  bytes_at_start_ = fetcher_->stats().bytes_from_origin;
  manifest_ = Manifest();
  failures_.clear();
  retry_.clear();
  if (config_.manifest.empty()) {
    PublishManifest();
    return;
  }
  std::string url = ManifestUrl(config_);
  std::weak_ptr<bool> alive = alive_;
  fetcher_->FetchDocument(url, kMaxManifestBytes, [this, alive, url](Result<std::string> body) {
    if (alive.expired() || !*alive.lock()) return;
    if (!body.ok()) {
      Finish(Status(body.status().code(), "manifest: " + body.status().message()));
      return;
    }
    GotManifest(std::move(body));
  });
}

void Prefetcher::GotManifest(Result<std::string> body) {
  auto parsed = ParseManifest(*body);
  if (!parsed.ok()) {
    // A broken manifest changes nothing: the set in force stays.
    Finish(Status::InvalidArgument("manifest " + ManifestUrl(config_) + ": " +
                                   parsed.status().message()));
    return;
  }
  manifest_ = std::move(parsed).value();
  progress_.files_total += manifest_.files.size();
  for (const ManifestFile& f : manifest_.files) {
    const cache::Entry* e = cache_->Lookup(f.path);
    if ((e != nullptr && e->sha256 == f.sha256) || cache_->HasObject(f.sha256)) {
      ++progress_.files_done;  // the bytes are here already, under this or another name
      continue;
    }
    queue_.push_back(Download{f, 0});
    progress_.bytes_total += f.size;
  }
  Event("manifest lists " + Plural(manifest_.files.size(), "file") + ", " +
        Plural(queue_.size(), "download") + " (" + std::to_string(progress_.bytes_total) +
        " bytes)");
  PumpDownloads();
}

void Prefetcher::PumpDownloads() {
  std::weak_ptr<bool> alive = alive_;
  while (active_ < kParallelDownloads && !queue_.empty()) {
    Download d = std::move(queue_.front());
    queue_.pop_front();
    ++active_;
    std::string path = d.file.path;
    Digest sha = d.file.sha256;
    fetcher_->FetchObject(path, sha, [this, alive, d = std::move(d)](Status s) mutable {
      if (alive.expired() || !*alive.lock()) return;
      --active_;
      Downloaded(std::move(d), s);
    });
  }
  if (active_ > 0 || !queue_.empty()) return;
  if (!retry_.empty()) {
    int attempts = 0;
    for (const Download& d : retry_) attempts = std::max(attempts, d.attempts);
    uint64_t delay = Backoff(kRetryBackoffMs, attempts - 1);
    backoff_->Start(delay, [this] {
      for (Download& d : retry_) queue_.push_back(std::move(d));
      retry_.clear();
      PumpDownloads();
    });
    return;
  }
  PublishManifest();
}

void Prefetcher::Downloaded(Download d, Status s) {
  if (s.ok()) {
    ++progress_.files_done;
    Event("verified " + d.file.path + " (" + std::to_string(d.file.size) + " bytes)");
  } else {
    ++d.attempts;
    bool again = d.attempts < kMaxObjectAttempts && !s.Is(StatusCode::kNotFound);
    Event("failed " + d.file.path + ": " + s.message() + (again ? "; will retry" : ""));
    if (again) {
      retry_.push_back(std::move(d));
    } else {
      ++progress_.files_failed;
      failures_.push_back(d.file.path + ": " + s.message());
    }
  }
  PumpDownloads();
}

void Prefetcher::PrefetchPaths() {
  prefetch_left_ = config_.prefetch.size();
  if (prefetch_left_ == 0) {
    PinPrefetched();
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  for (const std::string& raw : config_.prefetch) {
    std::string path = raw.starts_with("/") ? raw.substr(1) : raw;
    fetcher_->Fetch(path, Want::kComplete, [this, alive, path](FetchOutcome o) {
      if (alive.expired() || !*alive.lock()) return;
      if (o.status.ok() && cache_->Lookup(path) != nullptr) {
        ++progress_.files_done;
        Event("cached " + path);
      } else {
        ++progress_.files_failed;
        failures_.push_back(path + ": " + (o.status.ok() ? "not cached" : o.status.message()));
        Event("failed " + path + ": " + failures_.back());
      }
      if (--prefetch_left_ == 0) PinPrefetched();
    }, Priority::kBackground);
  }
}

void Prefetcher::PublishManifest() {
  if (config_.manifest.empty() || !failures_.empty()) {
    // All or nothing: the set in force stays until every file of the new one is here.
    PrefetchPaths();
    return;
  }
  int64_t now = clock_->NowSeconds();
  std::vector<cache::Entry> entries;
  std::set<std::string> listed;
  for (const ManifestFile& f : manifest_.files) {
    listed.insert(f.path);
    const cache::Entry* cur = cache_->Lookup(f.path);
    // A phone's own settings upload wins over the origin's copy (CONTRACT.md "Uploads").
    if (cur != nullptr && cur->source == cache::Source::kUpload) continue;
    if (cur != nullptr && cur->source == cache::Source::kManifest && cur->sha256 == f.sha256) {
      continue;
    }
    cache::Entry e;
    e.path = f.path;
    e.sha256 = f.sha256;
    e.size = f.size;
    e.content_type = std::string(ContentTypeForPath(f.path));
    e.fetched_at = now;
    e.fresh_until = 0;
    e.source = cache::Source::kManifest;
    e.pinned = true;
    entries.push_back(std::move(e));
  }
  for (const cache::Entry& old : cache_->List()) {
    if (old.source != cache::Source::kManifest || listed.count(old.path) != 0) continue;
    cache::Entry e = old;  // dropped from the set: an ordinary, stale pull-through copy
    e.source = cache::Source::kOrigin;
    e.pinned = false;
    e.fresh_until = now;
    entries.push_back(std::move(e));
  }
  if (entries.empty()) {
    PrefetchPaths();
    return;
  }
  size_t n = entries.size();
  cache::GenerationRecord generation;
  generation.published_at = now;
  generation.manifest = ManifestUrl(config_);
  generation.files = manifest_.files.size();
  generation.bytes = manifest_.total_bytes;
  std::weak_ptr<bool> alive = alive_;
  cache_->PublishSetAsync(loop_, std::move(entries), std::move(generation),
                          [this, alive, n](Result<int64_t> id) {
    if (alive.expired() || !*alive.lock()) return;
    if (id.ok()) {
      progress_.generation = static_cast<uint64_t>(*id);
      Event("published generation " + std::to_string(*id) + ": " + std::to_string(n) +
            (n == 1 ? " entry" : " entries") + " in one transaction");
    } else {
      failures_.push_back("publishing the manifest's set: " + id.status().message());
    }
    PrefetchPaths();
  });
}

void Prefetcher::PinPrefetched() {
  std::vector<cache::Entry> entries;
  for (const std::string& raw : config_.prefetch) {
    const cache::Entry* cur = cache_->Lookup(raw.starts_with("/") ? raw.substr(1) : raw);
    if (cur == nullptr || cur->pinned) continue;
    cache::Entry e = *cur;
    e.pinned = true;
    entries.push_back(std::move(e));
  }
  auto finish = [this] {
    if (failures_.empty()) {
      Finish(Status::Ok());
      return;
    }
    std::string first = failures_.front();
    Finish(Status::Unavailable(std::to_string(failures_.size()) + " file(s) could not be had (" +
                               first + (failures_.size() > 1 ? ", ..." : "") + ")" +
                               (config_.manifest.empty() ? "" : "; the manifest's set in force "
                                                                "is unchanged")));
  };
  if (entries.empty()) {
    finish();
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  cache_->PublishAsync(loop_, std::move(entries), [this, alive, finish](Status s) {
    if (alive.expired() || !*alive.lock()) return;
    if (!s.ok()) failures_.push_back("pinning the prefetch list: " + s.message());
    finish();
  });
}

void Prefetcher::Finish(Status s) {
  progress_.running = false;
  progress_.finished_at = clock_->NowSeconds();
  progress_.bytes_done = fetcher_->stats().bytes_from_origin - bytes_at_start_;
  progress_.result = s;
  Event(s.ok() ? "complete: " + Plural(progress_.files_done, "file") + " cached and verified"
               : "incomplete: " + s.message());
  std::vector<std::function<void(Status)>> waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiters) w(s);
}

}  // namespace siterelay::sync
