#include "relay/files/config_gate.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "relay/base/log.h"
#include "relay/files/path.h"
#include "relay/files/phone.h"

namespace siterelay::files {
namespace {

constexpr uint64_t kTickMs = 1000;

// The bytes of an installed object, nullopt past `max` or on a read error.
std::optional<std::string> ReadObject(cache::ObjectStore& store, const Digest& d, size_t max) {
  FileSystem* fs = store.fs();
  auto fd = fs->Open(store.PathOf(d), O_RDONLY | O_CLOEXEC, 0);
  if (!fd.ok()) return std::nullopt;
  OpenFile f;
  f.fd = ScopedFd(fs, *fd);
  Result<uint64_t> size = store.SizeOf(d);
  if (!size.ok()) return std::nullopt;
  f.size = *size;
  return ReadWhole(f, max);
}

std::string DirOf(std::string_view path) {
  return std::string(path.substr(0, path.size() - BaseName(path).size()));
}

}  // namespace

std::string_view HeldFileStateName(HeldFile::State s) {
  switch (s) {
    case HeldFile::State::kWaiting: return "waiting";
    case HeldFile::State::kFetching: return "fetching";
    case HeldFile::State::kHere: return "here";
    case HeldFile::State::kFailed: return "failed";
  }
  return "waiting";
}

ConfigGate::ConfigGate(uv_loop_t* loop, FileService* files, cache::Cache* cache,
                       sync::Fetcher* fetcher, Clock* clock, int64_t fresh_for)
    : loop_(loop),
      files_(files),
      cache_(cache),
      fetcher_(fetcher),
      clock_(clock),
      fresh_for_(fresh_for),
      tick_(std::make_unique<Timer>(loop)) {}

ConfigGate::~ConfigGate() { *alive_ = false; }

bool ConfigGate::Gated(std::string_view path) const { return IsMasterConfigName(BaseName(path)); }

std::vector<std::vector<std::string>> ConfigGate::Needed(const std::string& config_path,
                                                         const MasterConfig& config) const {
  // The phones this config serves: the one its name gives, else every phone of the site; one of
  // each model and part number is enough.
  std::vector<PhoneFacts> phones;
  std::set<std::pair<std::string, std::string>> kinds;
  std::optional<std::string> own = MacFromFileName(BaseName(config_path));
  for (const auto& [mac, d] : files_->devices()) {
    if (own && mac != *own) continue;
    if (kinds.emplace(d.model, d.part_number).second) {
      phones.push_back(PhoneFacts{"", d.model, d.part_number});
    }
  }
  std::string dir = DirOf(config_path);
  std::vector<std::vector<std::string>> out;
  for (const std::vector<std::string>& names : SiteFilesFor(config, phones)) {
    std::vector<std::string> paths;
    for (const std::string& name : names) {
      if (IsUrl(name)) continue;  // another server's: the phone goes there itself
      Result<std::string> normal = NormalizePath(dir + name);
      if (normal.ok()) paths.push_back(std::move(normal).value());
    }
    if (!paths.empty()) out.push_back(std::move(paths));
  }
  return out;
}

void ConfigGate::Arrived(cache::Entry entry) {
  auto held = held_.find(entry.path);
  if (held != held_.end() && held->second.entry.sha256 == entry.sha256) return;  // held already
  std::optional<std::string> xml = ReadObject(cache_->store(), entry.sha256, kMaxMasterConfigBytes);
  Result<MasterConfig> config = xml ? ParseMasterConfig(*xml)
                                    : Result<MasterConfig>(Status::Unavailable("unreadable"));
  Held h;
  h.id = next_id_++;
  h.since = clock_->NowSeconds();
  if (!config.ok()) {
    // Not a master config this relay can read: what it names is unknown, so it is not held.
    SR_LOG(kWarning) << "config gate: " << entry.path << ": " << config.status().message()
                     << "; published as it came";
  } else {
    for (std::vector<std::string>& names : Needed(entry.path, *config)) {
      Want w;
      w.names = std::move(names);
      h.wants.push_back(std::move(w));
    }
  }
  std::string path = entry.path;
  h.entry = std::move(entry);
  held_.insert_or_assign(path, std::move(h));
  Held& now = held_.at(path);
  size_t missing = 0;
  for (const Want& w : now.wants) {
    bool here = std::any_of(w.names.begin(), w.names.end(),
                            [&](const std::string& n) { return cache_->Lookup(n) != nullptr; });
    if (!here) ++missing;
  }
  if (missing > 0) {
    SR_LOG(kInfo) << "config gate: holding the new " << path << " until the " << missing
                  << " file(s) it names that are not cached are here";
  }
  Pump();
  if (held_.count(path) != 0 && !tick_->active()) tick_->Start(kTickMs, [this] { Tick(); });
}

void ConfigGate::Pump() {
  uint64_t now = uv_now(loop_);
  // Collected first: Start() may publish, which erases from held_.
  std::vector<std::pair<std::string, uint64_t>> configs;
  for (const auto& [path, h] : held_) configs.emplace_back(path, h.id);
  for (const auto& [path, id] : configs) {
    auto it = held_.find(path);
    if (it == held_.end() || it->second.id != id) continue;
    for (size_t i = 0; i < it->second.wants.size(); ++i) {
      const Want& w = it->second.wants[i];
      bool due = w.state == HeldFile::State::kWaiting ||
                 (w.state == HeldFile::State::kFailed && now >= w.retry_at);
      if (due) Start(path, id, i);
      it = held_.find(path);
      if (it == held_.end() || it->second.id != id) break;
    }
    if (it != held_.end() && it->second.id == id) MaybePublish(it->second);
  }
}

void ConfigGate::Start(const std::string& config_path, uint64_t id, size_t i) {
  Held& h = held_.at(config_path);
  Want& w = h.wants[i];
  for (size_t n = 0; n < w.names.size(); ++n) {
    if (cache_->Lookup(w.names[n]) != nullptr) {
      w.at = n;
      w.state = HeldFile::State::kHere;
      return;
    }
  }
  if (w.state == HeldFile::State::kFailed) w.at = 0;  // a retry starts from the first name
  while (w.at < w.names.size() && fetcher_->KnownMissing(w.names[w.at])) ++w.at;
  if (w.at == w.names.size()) {
    w.at = w.names.size() - 1;
    if (w.state != HeldFile::State::kFailed) {
      w.state = HeldFile::State::kFailed;
      w.error = "not on the origin";
      ++w.failures;
    }
    w.retry_at = uv_now(loop_) + std::min(kMaxRetryMs, kRetryMs << std::min(w.failures, 10));
    return;
  }
  if (!WindowOpen()) return;  // Tick() tries again
  w.state = HeldFile::State::kFetching;
  w.error.clear();
  std::string name = w.names[w.at];
  std::weak_ptr<bool> alive = alive_;
  fetcher_->Fetch(
      name, sync::Want::kComplete,
      [this, alive, config_path, id, i](sync::FetchOutcome o) {
        if (alive.expired() || !*alive.lock()) return;
        Fetched(config_path, id, i, o.status);
      },
      sync::Priority::kBackground);
  // The same transfer again, for its body: the progress and the estimate read it.
  fetcher_->Fetch(
      name, sync::Want::kBody,
      [this, alive, config_path, id, i](sync::FetchOutcome o) {
        if (alive.expired() || !*alive.lock() || !o.body) return;
        auto it = held_.find(config_path);
        if (it == held_.end() || it->second.id != id) return;
        it->second.wants[i].body = o.body;
      },
      sync::Priority::kBackground);
}

void ConfigGate::Fetched(const std::string& config_path, uint64_t id, size_t i, const Status& s) {
  auto it = held_.find(config_path);
  if (it == held_.end() || it->second.id != id) return;
  Want& w = it->second.wants[i];
  w.body.reset();
  if (s.ok() && cache_->Lookup(w.names[w.at]) != nullptr) {
    w.state = HeldFile::State::kHere;
  } else if (s.Is(StatusCode::kNotFound) && w.at + 1 < w.names.size()) {
    ++w.at;  // the next name a phone would try
    w.state = HeldFile::State::kWaiting;
  } else {
    w.state = HeldFile::State::kFailed;
    w.error = s.Is(StatusCode::kNotFound) ? "not on the origin"
              : s.ok()                    ? "not cached after the fetch"
                                          : s.message();
    ++w.failures;
    w.retry_at = uv_now(loop_) + std::min(kMaxRetryMs, kRetryMs << std::min(w.failures, 10));
    SR_LOG(kWarning) << "config gate: " << config_path << " stays held: " << w.names[w.at]
                     << ": " << MaskSecrets(w.error);
  }
  Pump();
}

void ConfigGate::MaybePublish(Held& h) {
  if (h.publishing) return;
  for (Want& w : h.wants) {
    if (w.state != HeldFile::State::kHere) return;
  }
  // Each file once more, as the transaction is about to go: one evicted since it arrived is
  // fetched again rather than named by a published config.
  bool gone = false;
  for (Want& w : h.wants) {
    if (cache_->Lookup(w.names[w.at]) == nullptr) {
      w.state = HeldFile::State::kWaiting;
      gone = true;
    }
  }
  if (gone) {
    tick_->Start(0, [this] { Tick(); });  // fetched again from there
    return;
  }
  Publish(h.entry.path, h.id, /*by_hand=*/false);
}

void ConfigGate::Publish(const std::string& config_path, uint64_t id, bool by_hand) {
  Held& h = held_.at(config_path);
  h.publishing = true;
  // One transaction: the config, and the files it names as they are cached, fresh from now on, so
  // the phones that read the config next find them local without a revalidation.
  int64_t now = clock_->NowSeconds();
  auto fresh = [&](cache::Entry e) {
    e.fetched_at = now;
    e.fresh_until = now + fresh_for_;
    return e;
  };
  std::vector<cache::Entry> entries = {fresh(h.entry)};
  for (const Want& w : h.wants) {
    const cache::Entry* e = cache_->Lookup(w.names[w.at]);
    if (w.state == HeldFile::State::kHere && e != nullptr && e->source == cache::Source::kOrigin) {
      entries.push_back(fresh(*e));
    }
  }
  std::weak_ptr<bool> alive = alive_;
  cache_->PublishAsync(loop_, std::move(entries), [this, alive, config_path, id, by_hand](Status s) {
    if (alive.expired() || !*alive.lock()) return;
    auto it = held_.find(config_path);
    if (it == held_.end() || it->second.id != id) return;
    if (s.ok()) {
      ++released_;
      SR_LOG(kInfo) << "config gate: published the new " << config_path
                    << (by_hand ? " (released by hand)" : "; every file it names is cached");
    } else {
      // Its object went (a gc): the next revalidation brings the new version back here.
      SR_LOG(kWarning) << "config gate: could not publish the new " << config_path << ": "
                       << s.message();
    }
    held_.erase(it);
  });
}

Status ConfigGate::Release(std::string_view path) {
  auto it = held_.find(path);
  if (it == held_.end()) return Status::NotFound(std::string(path) + " is not held back");
  if (!it->second.publishing) Publish(it->first, it->second.id, /*by_hand=*/true);
  return Status::Ok();
}

void ConfigGate::Tick() {
  uint64_t now = uv_now(loop_);
  uint64_t bytes = fetcher_->stats().bytes_from_origin;
  if (last_tick_ms_ != 0 && now > last_tick_ms_) {
    double inst = static_cast<double>(bytes - last_bytes_) * 1000.0 /
                  static_cast<double>(now - last_tick_ms_);
    rate_ = rate_ == 0 ? inst : 0.7 * rate_ + 0.3 * inst;
  }
  last_bytes_ = bytes;
  last_tick_ms_ = now;
  Pump();
  if (!held_.empty()) {
    tick_->Start(kTickMs, [this] { Tick(); });
  } else {
    last_tick_ms_ = 0;
    rate_ = 0;
  }
}

std::vector<HeldConfig> ConfigGate::held() const {
  std::vector<HeldConfig> out;
  for (const auto& [path, h] : held_) {
    HeldConfig c;
    c.path = path;
    c.sha256 = h.entry.sha256;
    c.size = h.entry.size;
    c.since = h.since;
    bool known = true, failed = false;
    uint64_t left = 0;
    size_t here = 0;
    std::optional<size_t> first_failed;
    for (const Want& w : h.wants) {
      HeldFile f;
      f.path = w.names[w.at];
      f.state = w.state;
      f.error = w.error;
      if (w.state == HeldFile::State::kHere) {
        ++here;
        if (const cache::Entry* e = cache_->Lookup(f.path)) {
          f.bytes_done = e->size;
          f.bytes_total = e->size;
        }
      } else if (w.body) {
        f.bytes_done = w.body->written();
        f.bytes_total = w.body->size();
      }
      if (w.state != HeldFile::State::kHere) {
        if (f.bytes_total) {
          left += *f.bytes_total - std::min(*f.bytes_total, f.bytes_done);
        } else {
          known = false;
        }
      }
      if (w.state == HeldFile::State::kFailed && !first_failed) first_failed = c.files.size();
      failed = failed || w.state == HeldFile::State::kFailed;
      c.files.push_back(std::move(f));
    }
    if (first_failed) {
      const HeldFile& f = c.files[*first_failed];
      c.reason = f.path + ": " + f.error + " (tried again later)";
    } else if (!WindowOpen()) {
      c.reason = "outside the sync window";
    } else {
      c.reason = "fetching " + std::to_string(h.wants.size() - here) + " of " +
                 std::to_string(h.wants.size()) + " files it names";
    }
    if (!failed && known && (left == 0 || rate_ > 0)) {
      c.eta_seconds = left == 0 ? 0 : static_cast<int64_t>(std::ceil(static_cast<double>(left) / rate_));
    }
    out.push_back(std::move(c));
  }
  return out;
}

void ConfigGate::PrefetchForSite() {
  if (!WindowOpen() || !fetcher_->enabled()) return;
  // The site's configs in force: the shared one and the phones' own (master configs are at the
  // root, as FirmwareExpectations reads them).
  std::vector<std::string> configs = {"000000000000.cfg"};
  for (const auto& [mac, d] : files_->devices()) configs.push_back(mac + ".cfg");
  std::set<std::string> asked;
  for (const std::string& path : configs) {
    const MasterConfig* config = files_->master_configs().Read(path);
    if (config == nullptr) continue;
    for (const std::vector<std::string>& names : Needed(path, *config)) {
      if (std::any_of(names.begin(), names.end(),
                      [&](const std::string& n) { return cache_->Lookup(n) != nullptr; })) {
        continue;
      }
      for (const std::string& n : names) {
        if (fetcher_->KnownMissing(n)) continue;
        if (asked.insert(n).second) {
          fetcher_->Fetch(n, sync::Want::kComplete, [](sync::FetchOutcome) {},
                          sync::Priority::kBackground);
        }
        break;
      }
    }
  }
}

}  // namespace siterelay::files
