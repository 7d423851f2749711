// Power loss (DESIGN.md "On disk"): phones upload settings and growing logs while the relay
// forwards settings to the origin and ships log batches to the collector; at a random point the
// power goes — every write not yet fsynced is dropped (tests/testing/power_loss_fs.h) — and the
// relay starts again on what the disk kept. After each restart the invariants of DESIGN.md must
// hold without any repair beyond what start-up does, and in the end every acknowledged log line
// must have reached the collector exactly once. An upload acknowledged after the cut counts as
// much as one before it: the simulated disk failed every call since, so its success can rest only
// on what was durable (see the limitation in power_loss_fs.h: the catalog keeps working).
//
// SITERELAY_POWER_LOSS_ITERATIONS sets how many (default 5, a few seconds; the soak,
// tools/bench/power-loss.sh, runs hundreds); SITERELAY_POWER_LOSS_SEED replays a failure.
#include <gtest/gtest.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cache/cache.h"
#include "relay/base/log.h"
#include "relay/base/sha256.h"
#include "relay/base/uv.h"
#include "relay/files/path.h"
#include "relay/files/phone.h"
#include "relay/files/uploads.h"
#include "sync/log_shipper.h"
#include "sync/outbox.h"
#include "sync/sender.h"
#include "tests/testing/fake_origin.h"
#include "tests/testing/loop.h"
#include "tests/testing/power_loss_fs.h"
#include "tests/testing/temp_dir.h"

namespace siterelay::sync {
namespace {

using siterelay::testing::FakeOrigin;
using siterelay::testing::OriginReply;
using siterelay::testing::OriginRequest;
using siterelay::testing::PowerLossFileSystem;
using siterelay::testing::ReadFile;
using siterelay::testing::TempDir;

constexpr char kRelayId[] = "branch-1";
constexpr size_t kPhones = 4;
constexpr int kUploadsPerLife = 10;  // per phone, between two power cuts
constexpr const char* kLogWhat[2] = {"app", "boot"};

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoll(v, nullptr, 10);
}

// What the upstreams were sent, recorded from FakeOrigin's threads: the origin takes the settings
// PUTs, the collector (at /logs) the batch POSTs. Some answers are 503s, so that retries, and
// batches waiting upstream, are part of what a power cut interrupts.
class Upstream {
 public:
  struct Request {
    std::string method, target, key, body;
    int status = 0;
  };

  OriginReply Handle(const OriginRequest& r) {
    std::lock_guard<std::mutex> lock(mu_);
    Request rec{r.method, r.target, "", r.body, 200};
    if (const std::string* k = r.Header("idempotency-key")) rec.key = *k;
    if (r.method == "POST") {
      rec.status = ++posts_ % 5 == 0 ? 503 : 200;
    } else if (r.method == "PUT") {
      rec.status = ++puts_ % 4 == 0 ? 503 : 201;
    } else {
      rec.status = 405;
    }
    requests_.push_back(rec);
    return OriginReply{rec.status, {}, ""};
  }
  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Request> requests_;
  int posts_ = 0;
  int puts_ = 0;
};

// A phone, as the test remembers it: everything it logged, and what the relay acknowledged.
struct Phone {
  std::string mac;
  std::string log[2];  // app, boot: every line so far
  int lines[2] = {0, 0};
  uint64_t acked_log[2] = {0, 0};  // the longest log upload the relay said 2xx to
  std::map<std::string, std::string> acked_settings;  // path -> the last bytes acknowledged
  int version = 0;
  int uploads_left = 0;
  bool busy = false;
};

struct PlannedUpload {
  std::string path;
  std::string body;
  int log = -1;  // 0 app, 1 boot; -1 settings
};

// The records of one batch body; false when it is not one zstd frame of NDJSON.
bool DecodeBatch(const std::string& body, std::vector<nlohmann::json>* out) {
  unsigned long long size = ZSTD_getFrameContentSize(body.data(), body.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) return false;
  std::string ndjson(size, '\0');
  size_t n = ZSTD_decompress(ndjson.data(), ndjson.size(), body.data(), body.size());
  if (ZSTD_isError(n) || n != size) return false;
  size_t pos = 0;
  while (pos < ndjson.size()) {
    size_t nl = ndjson.find('\n', pos);
    if (nl == std::string::npos) return false;
    auto rec = nlohmann::json::parse(ndjson.substr(pos, nl - pos), nullptr, false);
    if (rec.is_discarded()) return false;
    out->push_back(std::move(rec));
    pos = nl + 1;
  }
  return true;
}

class PowerLossTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSink([this](std::string_view line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.emplace_back(line);
      if (log_.size() > 400) log_.pop_front();
    });
  }
  void TearDown() override { SetLogSink(nullptr); }

  void RunIteration(uint64_t seed);
  // One life of the relay on `fs`, from start-up to a power cut (with `plfs`: at its
  // `cut_after`-th mutating call, or once everything is delivered when that is 0 or never comes)
  // or, without, until everything is delivered upstream.
  void Life(FileSystem* fs, PowerLossFileSystem* plfs, uint64_t cut_after);
  PlannedUpload Plan(Phone& p, bool last_life);
  // The invariants of DESIGN.md "On disk", on what the disk kept, through a normal start-up.
  void CheckAfterRestart();
  // In the end: every line at the collector exactly once, every settings file on the origin.
  void CheckUpstream();
  std::string Spool(const Phone& p, int what) const {
    return dir_->path() + "/spool/" + p.mac + "-" + kLogWhat[what] + ".log";
  }
  void DumpLog() {
    std::lock_guard<std::mutex> lock(log_mu_);
    std::fprintf(stderr, "---- the relay's last %zu log lines ----\n", log_.size());
    for (const std::string& l : log_) std::fprintf(stderr, "%s\n", l.c_str());
  }
  bool Logged(const std::string& what) {
    std::lock_guard<std::mutex> lock(log_mu_);
    return std::any_of(log_.begin(), log_.end(),
                       [&](const std::string& l) { return l.find(what) != std::string::npos; });
  }

  std::mt19937_64 rng_;
  ManualClock clock_{1795636800};
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Upstream> upstream_;
  std::unique_ptr<FakeOrigin> origin_;
  std::vector<Phone> phones_;
  // Mutating calls of a life that ran to its end: the range the cut point is drawn from.
  uint64_t full_life_calls_ = 0;
  std::string story_;  // where the cuts fell, for the failure message
  std::mutex log_mu_;
  std::deque<std::string> log_;
};

PlannedUpload PowerLossTest::Plan(Phone& p, bool last_life) {
  PlannedUpload u;
  auto log_upload = [&](int what, int more_lines) {
    for (int i = 0; i < more_lines; ++i) {
      p.log[what] += (what == 0 ? "0517184023|app  |3|00|" : "013527.204|boot |3|00|") + p.mac +
                     " " + kLogWhat[what] + " line " + std::to_string(p.lines[what]++) + " " +
                     std::string(rng_() % 80, 'x') + "\n";
    }
    u.path = p.mac + "-" + kLogWhat[what] + ".log";
    u.body = p.log[what];
    u.log = what;
  };
  if (last_life) {  // each phone sends its logs whole once more: everything gets acknowledged
    log_upload(p.uploads_left == 2 ? 0 : 1, 1);
    return u;
  }
  switch (rng_() % 8) {
    case 0:
    case 1:
    case 2:
      log_upload(0, 1 + static_cast<int>(rng_() % 15));
      break;
    case 3:
      log_upload(1, 1 + static_cast<int>(rng_() % 4));
      break;
    case 4: {  // an old copy of its log again: a prefix of what is stored adds nothing
      int what = static_cast<int>(rng_() % 2);
      u.path = p.mac + "-" + kLogWhat[what] + ".log";
      size_t nl = p.log[what].rfind('\n', p.log[what].size() / 2);
      u.body = nl == std::string::npos ? std::string() : p.log[what].substr(0, nl + 1);
      u.log = what;
      break;
    }
    case 5:
    case 6: {  // its own settings, a new version each time; now and then past one 64 KiB chunk
      u.path = p.mac + "-phone.cfg";
      u.body =
          "<PHONE_CONFIG mac=\"" + p.mac + "\" version=\"" + std::to_string(++p.version) + "\">\n";
      size_t filler = rng_() % 4 == 0 ? 70000 + rng_() % 60000 : rng_() % 3000;
      u.body += std::string(filler, 'c') + "\n</PHONE_CONFIG>\n";
      break;
    }
    default: {  // a directory many phones share: identical objects uploaded side by side
      u.path = p.mac + "-directory.xml";
      u.body = "<directory><item_list><item><fn>Reception</fn><ct>" +
               std::to_string(100 + rng_() % 3) + "</ct></item></item_list></directory>\n";
      break;
    }
  }
  return u;
}

void PowerLossTest::Life(FileSystem* fs, PowerLossFileSystem* plfs, uint64_t cut_after) {
  bool last_life = plfs == nullptr;
  const std::string dir = dir_->path();
  Loop loop;
  cache::CacheOptions o;
  o.data_dir = dir;
  o.max_bytes = 1ull << 30;
  o.fs = fs;
  o.clock = &clock_;
  auto opened = cache::Cache::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<cache::Cache> cache = std::move(opened).value();
  if (plfs != nullptr && cut_after > 0) plfs->CutAfter(cut_after);

  // What `serve` builds (relay/serve.cc), minus the protocol front-ends.
  auto uploads = std::make_unique<files::Uploads>(loop.get(), cache.get(), &clock_);
  auto sender = std::make_unique<Sender>(loop.get(), nullptr);
  OriginConfig origin_config;
  origin_config.url = origin_->url();
  auto outbox = std::make_unique<Outbox>(loop.get(), origin_config, cache.get(), sender.get());
  outbox->SetRetryDelays(5, 40);
  Config config = Config::Defaults();
  config.data_dir = dir;
  config.relay_id = kRelayId;
  config.logs.upstream = origin_->url() + "logs";
  config.logs.batch_bytes = 4096;  // several batches per life
  config.logs.batch_age = 0;       // cut as soon as lines wait
  auto shipper =
      std::make_unique<LogShipper>(loop.get(), config, cache.get(), sender.get(), &clock_);
  shipper->SetRetryDelays(5, 40);
  uploads->OnFiled([&](const std::string& path, const files::UploadName& name, uint64_t new_bytes) {
    if (name.kind == files::UploadName::kSettings) outbox->Poke(path);
    if (name.kind == files::UploadName::kLog) {
      std::string spool = files::SpoolPath(dir, name);
      shipper->Appended(spool.substr(spool.rfind('/') + 1), new_bytes);
    }
  });
  outbox->Start();
  Status started = shipper->Start();
  EXPECT_TRUE(started.ok()) << started.ToString();

  // Each phone uploads one file after the other; the phones run side by side. Once the power is
  // gone, no phone starts another upload (the relay is dead to them), but those under way get
  // their answer, and every success among them counts as much as one before the cut.
  std::function<void(size_t)> next = [&](size_t i) {
    Phone& p = phones_[i];
    if (p.uploads_left == 0 || (plfs != nullptr && plfs->cut())) {
      p.busy = false;
      return;
    }
    p.busy = true;
    PlannedUpload u = Plan(p, last_life);
    --p.uploads_left;
    auto sink = uploads->Begin(u.path, files::ClassifyUpload(files::BaseName(u.path)), 1 << 20);
    Status w = sink->Write(u.body);
    EXPECT_TRUE(w.ok()) << w.ToString();
    sink->Finish([this, &next, plfs, i, u](Result<files::UploadResult> r) {
      Phone& phone = phones_[i];
      if (r.ok()) {
        if (u.log >= 0) {
          phone.acked_log[u.log] = std::max<uint64_t>(phone.acked_log[u.log], u.body.size());
        } else {
          phone.acked_settings[u.path] = u.body;
        }
      } else {
        EXPECT_TRUE(plfs != nullptr && plfs->cut())
            << u.path << " failed with the power on: " << r.status().ToString();
      }
      next(i);
    });
  };
  for (size_t i = 0; i < phones_.size(); ++i) {
    phones_[i].uploads_left = last_life ? 2 : kUploadsPerLife;
    next(i);
  }
  auto phones_idle = [&] {
    return std::none_of(phones_.begin(), phones_.end(), [](const Phone& p) { return p.busy; });
  };
  auto delivered = [&] {
    LogShipperStats st = shipper->stats();
    return st.unbatched_bytes == 0 && st.pending_batches == 0 && st.dead_batches == 0 &&
           outbox->pending() == 0;
  };
  if (plfs != nullptr) {
    siterelay::testing::RunUntil(
        loop.get(), [&] { return plfs->cut() || (phones_idle() && delivered()); },
        std::chrono::seconds(60));
    if (plfs->cut()) {
      story_ += " cut at call " + std::to_string(cut_after) + ";";
    } else {
      // Everything was done before the armed call came: the power goes now, on an idle relay.
      full_life_calls_ = std::max(full_life_calls_, plfs->mutating_calls());
      story_ += " cut when idle after " + std::to_string(plfs->mutating_calls()) + " calls;";
      plfs->CutPower();
    }
    // The disk is dark; the process runs on until the phones under way have their answers and
    // no request upstream is on its way (the shipper would retry its failing build forever).
    siterelay::testing::RunUntil(
        loop.get(), [&] { return phones_idle() && sender->in_flight() == 0; },
        std::chrono::seconds(60));
  } else {
    bool all_forwarded = false;
    siterelay::testing::RunUntil(
        loop.get(),
        [&] {
          if (!phones_idle() || !delivered()) return false;
          all_forwarded = true;
          for (const cache::Entry& e : cache->List()) all_forwarded &= e.forwarded;
          return all_forwarded;
        },
        std::chrono::seconds(60));
    EXPECT_TRUE(all_forwarded) << "every settings upload reaches the origin";
    for (const Phone& p : phones_) {
      for (int what : {0, 1}) {
        EXPECT_EQ(ReadFile(Spool(p, what)), p.log[what]) << "the spool holds the whole log";
      }
    }
  }
  // Everything goes, as when the process ends: what still runs on the pool finishes first.
  outbox.reset();
  shipper.reset();
  sender.reset();
  EXPECT_TRUE(loop.Run().ok());
  EXPECT_TRUE(phones_idle()) << "every upload got an answer";
  uploads.reset();
  cache.reset();
}

void PowerLossTest::CheckAfterRestart() {
  const std::string dir = dir_->path();
  cache::CacheOptions o;
  o.data_dir = dir;
  o.max_bytes = 1ull << 30;
  o.clock = &clock_;
  auto opened = cache::Cache::Open(o);  // the real file system, and start-up's own recovery
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  cache::Cache& cache = **opened;
  EXPECT_EQ(cache.recovery().objects_missing, 0u)
      << "a catalog row named an object the power cut took: it was published before it was "
         "durable";

  // A file under objects/ always hashes to its name.
  size_t objects = 0;
  for (const auto& f : std::filesystem::recursive_directory_iterator(dir + "/objects")) {
    if (!f.is_regular_file()) continue;
    ++objects;
    std::string name = f.path().filename().string();
    auto digest = Digest::FromHex(name);
    ASSERT_TRUE(digest.ok()) << "a stray file under objects/: " << f.path();
    EXPECT_EQ(f.path().parent_path().filename().string(), name.substr(0, 2));
    auto hashed = cache::HashFile(f.path().string());
    ASSERT_TRUE(hashed.ok());
    EXPECT_EQ(hashed->Hex(), name) << f.path() << " does not hash to its name";
  }
  // A catalog entry always names an object of its size.
  for (const cache::Entry& e : cache.List()) {
    auto size = cache.store().SizeOf(e.sha256);
    ASSERT_TRUE(size.ok()) << e.path << ": " << size.status().ToString();
    EXPECT_EQ(*size, e.size) << e.path;
  }
  auto verified = cache.Verify();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_TRUE(verified->corrupt.empty());
  EXPECT_EQ(verified->missing, 0u);

  // Acknowledged settings are there with their exact bytes; nothing else is.
  std::set<std::string> acked_paths;
  for (const Phone& p : phones_) {
    for (const auto& [path, bytes] : p.acked_settings) {
      acked_paths.insert(path);
      const cache::Entry* e = cache.Lookup(path);
      if (e == nullptr) {
        ADD_FAILURE() << "acknowledged settings upload lost: " << path;
        continue;
      }
      EXPECT_EQ(e->sha256, Sha256::Of(bytes)) << path << ": not the last acknowledged version";
      EXPECT_EQ(e->source, cache::Source::kUpload);
      EXPECT_EQ(ReadFile(cache.store().PathOf(e->sha256)), bytes) << path;
    }
  }
  for (const cache::Entry& e : cache.List()) {
    EXPECT_TRUE(acked_paths.count(e.path) != 0) << e.path << " was never acknowledged";
  }

  // Acknowledged log bytes are in the spool, a prefix of what the phone logged.
  for (const Phone& p : phones_) {
    for (int what : {0, 1}) {
      std::string spooled = ReadFile(Spool(p, what));
      EXPECT_EQ(p.log[what].compare(0, spooled.size(), spooled), 0)
          << Spool(p, what) << " is not a prefix of the phone's log";
      EXPECT_GE(spooled.size(), p.acked_log[what])
          << Spool(p, what) << ": acknowledged log bytes lost";
    }
  }

  // The shipper's state: cursors within their files, every recorded batch whole on disk.
  cache::LogSpoolState state;
  ASSERT_TRUE(cache.LoadLogSpool(&state).ok());
  for (const auto& [file, cursor] : state.cursors) {
    std::error_code ec;
    uint64_t size = std::filesystem::file_size(dir + "/spool/" + file, ec);
    EXPECT_FALSE(ec) << file << " has a cursor but no file";
    EXPECT_LE(cursor, size) << file << ": the cursor is past the durable end";
  }
  for (const cache::LogBatchRecord& b : state.batches) {
    std::string path = dir + "/spool/batches/" + std::to_string(b.seq) + ".ndjson.zst";
    std::vector<nlohmann::json> records;
    EXPECT_TRUE(DecodeBatch(ReadFile(path), &records)) << "batch " << b.seq << " is not whole";
    EXPECT_EQ(records.size(), b.lines) << "batch " << b.seq;
  }
}

void PowerLossTest::CheckUpstream() {
  std::map<std::string, std::string> body_of;        // Idempotency-Key -> the body it came with
  std::set<std::string> taken;                       // keys the collector answered 2xx
  std::map<std::string, std::set<std::string>> put;  // path -> bodies the origin took
  for (const Upstream::Request& r : upstream_->requests()) {
    bool ok = r.status >= 200 && r.status <= 299;
    if (r.method == "PUT") {
      if (ok) put[r.target.substr(1)].insert(r.body);
      continue;
    }
    EXPECT_EQ(r.target, "/logs");
    EXPECT_FALSE(r.key.empty()) << "a batch without its Idempotency-Key";
    auto [it, added] = body_of.emplace(r.key, r.body);
    EXPECT_TRUE(added || it->second == r.body)
        << "Idempotency-Key " << r.key << " was POSTed with two different bodies";
    if (ok) taken.insert(r.key);
  }
  // What the collector keeps: one copy per key.
  std::map<std::string, int> seen;  // "<mac> <file> <line>" -> copies
  std::set<int64_t> seqs;
  for (const std::string& key : taken) {
    std::vector<nlohmann::json> records;
    ASSERT_TRUE(DecodeBatch(body_of[key], &records)) << key;
    for (const nlohmann::json& rec : records) {
      ++seen[rec["mac"].get<std::string>() + " " + rec["file"].get<std::string>() + " " +
             rec["line"].get<std::string>()];
      EXPECT_TRUE(seqs.insert(rec["seq"].get<int64_t>()).second)
          << "line seq " << rec["seq"] << " in two batches";
    }
  }
  size_t expected_lines = 0;
  for (const Phone& p : phones_) {
    for (int what : {0, 1}) {
      size_t pos = 0;
      while (pos < p.log[what].size()) {
        size_t nl = p.log[what].find('\n', pos);
        std::string line = p.mac + " " + kLogWhat[what] + " " + p.log[what].substr(pos, nl - pos);
        auto it = seen.find(line);
        int copies = it == seen.end() ? 0 : it->second;
        EXPECT_EQ(copies, 1) << "line at the collector " << copies << " times: " << line;
        if (it != seen.end()) seen.erase(it);
        ++expected_lines;
        pos = nl + 1;
      }
    }
  }
  EXPECT_TRUE(seen.empty()) << seen.size() << " lines at the collector no phone logged, e.g. "
                            << (seen.empty() ? "" : seen.begin()->first);
  EXPECT_GT(expected_lines, 0u);

  for (const Phone& p : phones_) {
    for (const auto& [path, bytes] : p.acked_settings) {
      EXPECT_TRUE(put[path].count(bytes) != 0)
          << path << ": the origin never took the last acknowledged version";
    }
  }
}

void PowerLossTest::RunIteration(uint64_t seed) {
  rng_.seed(seed);
  story_.clear();
  {
    std::lock_guard<std::mutex> lock(log_mu_);
    log_.clear();
  }
  dir_ = std::make_unique<TempDir>();
  upstream_ = std::make_unique<Upstream>();
  Upstream* up = upstream_.get();
  origin_ = std::make_unique<FakeOrigin>([up](const OriginRequest& r) { return up->Handle(r); });
  phones_.assign(kPhones, Phone{});
  for (size_t i = 0; i < kPhones; ++i) {
    char mac[13];
    std::snprintf(mac, sizeof mac, "0004f2%06zx", static_cast<size_t>(rng_() % 0xffff) * 16 + i);
    phones_[i].mac = mac;
  }

  int cuts = 1 + static_cast<int>(rng_() % 2);
  for (int life = 0; life < cuts; ++life) {
    clock_.Advance(60);
    {
      PowerLossFileSystem plfs(dir_->path());
      uint64_t n = 0;  // the first life ever runs to its end: it measures how long one is
      if (full_life_calls_ > 0) n = 1 + rng_() % (full_life_calls_ + full_life_calls_ / 8);
      Life(&plfs, &plfs, n);
      if (HasFatalFailure()) return;
      plfs.Restore();
    }
    CheckAfterRestart();
    EXPECT_FALSE(Logged("is in the catalog but its file is gone"));
    if (HasFailure()) return;
  }
  clock_.Advance(60);
  Life(FileSystem::Default(), nullptr, 0);
  if (HasFatalFailure()) return;
  EXPECT_FALSE(Logged("is in the catalog but its file is gone"));
  EXPECT_FALSE(Logged("object(s) missing on disk"));
  CheckUpstream();
  origin_.reset();
  dir_.reset();
}

// Phones of one site often upload the very same file (a shared directory): identical bytes are
// one object, and the second Install() finds it already in objects/ — renamed there by the first,
// whose FsyncDir() may not have run yet. Every cut point of that small story is tried, eight times
// over, since the pool orders the uploads as it likes: one relay, one power cut and restart after
// another, new phones and new bytes each time.
TEST_F(PowerLossTest, PhonesUploadingTheSameFileAtOnceLoseNoAcknowledgedCopyAtAnyCutPoint) {
  constexpr int kTwins = 3;
  TempDir dir;
  std::map<std::string, std::string> acked;  // path -> bytes, over every life
  int run = 0;
  for (uint64_t n = 1; n <= 20; ++n) {  // the story takes 18 mutating calls
    for (int round = 0; round < 8; ++round, ++run) {
      SCOPED_TRACE("cut at call " + std::to_string(n) + ", round " + std::to_string(round));
      std::string body = "<directory><item_list><item><fn>Reception " + std::to_string(run) +
                         "</fn><ct>100</ct></item></item_list></directory>\n";
      {
        PowerLossFileSystem plfs(dir.path());
        Loop loop;
        cache::CacheOptions o;
        o.data_dir = dir.path();
        o.max_bytes = 1ull << 30;
        o.fs = &plfs;
        o.clock = &clock_;
        auto cache = cache::Cache::Open(o);
        ASSERT_TRUE(cache.ok()) << cache.status().ToString();
        plfs.CutAfter(n);
        files::Uploads uploads(loop.get(), cache->get(), &clock_);
        int answers = 0;
        for (int i = 0; i < kTwins; ++i) {
          char mac[32];
          std::snprintf(mac, sizeof mac, "0004f2%04x%02x", static_cast<unsigned>(run) & 0xffffu,
                        static_cast<unsigned>(i) & 0xffu);
          std::string path = std::string(mac) + "-directory.xml";
          auto sink = uploads.Begin(path, files::ClassifyUpload(path), 1 << 20);
          ASSERT_TRUE(sink->Write(body).ok());
          sink->Finish([&, path](Result<files::UploadResult> r) {
            ++answers;
            if (r.ok()) acked[path] = body;
          });
        }
        siterelay::testing::RunUntil(loop.get(), [&] { return answers == kTwins; });
        EXPECT_TRUE(loop.Run().ok());
        if (!plfs.cut()) plfs.CutPower();
        plfs.Restore();
      }
      cache::CacheOptions o;
      o.data_dir = dir.path();
      o.clock = &clock_;
      auto cache = cache::Cache::Open(o);
      ASSERT_TRUE(cache.ok()) << cache.status().ToString();
      EXPECT_EQ((*cache)->recovery().objects_missing, 0u);
      for (const auto& [path, bytes] : acked) {
        const cache::Entry* e = (*cache)->Lookup(path);
        ASSERT_NE(e, nullptr) << "acknowledged, then lost to a power cut: " << path;
        EXPECT_EQ(ReadFile((*cache)->store().PathOf(e->sha256)), bytes);
      }
    }
  }
  EXPECT_GE(acked.size(), static_cast<size_t>(kTwins)) << "the sweep reaches past the uploads";
}

TEST_F(PowerLossTest, AcknowledgedUploadsAndLogLinesSurviveAPowerCutAtAnyPoint) {
  int64_t iterations = EnvInt("SITERELAY_POWER_LOSS_ITERATIONS", 5);
  auto base = static_cast<uint64_t>(EnvInt(
      "SITERELAY_POWER_LOSS_SEED", static_cast<int64_t>(std::random_device{}() & 0x7fffffff)));
  auto start = std::chrono::steady_clock::now();
  int64_t done = 0;
  bool verbose = EnvInt("SITERELAY_POWER_LOSS_VERBOSE", 0) != 0;
  for (; done < iterations; ++done) {
    uint64_t seed = base + static_cast<uint64_t>(done);
    SCOPED_TRACE("seed " + std::to_string(seed) + " (replay: SITERELAY_POWER_LOSS_SEED=" +
                 std::to_string(seed) + " SITERELAY_POWER_LOSS_ITERATIONS=1)");
    RunIteration(seed);
    if (verbose)
      std::printf("power loss: seed %llu:%s\n", static_cast<unsigned long long>(seed),
                  story_.c_str());
    if (HasFailure()) {
      std::fprintf(stderr, "power loss: iteration %lld, seed %llu failed;%s\n",
                   static_cast<long long>(done), static_cast<unsigned long long>(seed),
                   story_.c_str());
      DumpLog();
      break;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("power loss: %lld of %lld iterations passed in %.1f s (seeds from %llu)\n",
              static_cast<long long>(HasFailure() ? done : iterations),
              static_cast<long long>(iterations), secs, static_cast<unsigned long long>(base));
}

}  // namespace
}  // namespace siterelay::sync
