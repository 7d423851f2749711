#include "sync/log_shipper.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "relay/base/log.h"
#include "sync/backoff.h"
#include "sync/log_batch.h"

namespace siterelay::sync {
namespace {

// File bytes read per pread while building a batch.
constexpr size_t kReadChunk = 256 * 1024;
// A batch file (at most logs.batch_bytes compressed) or a dictionary, read whole.
constexpr size_t kMaxBatchFileBytes = size_t{1} << 32;

// "<12 hex>-app.log" or "<12 hex>-boot.log": a phone's spooled log (relay/files/uploads.h).
bool ParseSpoolName(const std::string& name, std::string* mac, std::string* what) {
  size_t dash = name.find('-');
  if (dash != 12 || name.size() < 17 || name.substr(name.size() - 4) != ".log") return false;
  *mac = name.substr(0, 12);
  *what = name.substr(13, name.size() - 17);
  return *what == "app" || *what == "boot";
}

Status ReadRange(FileSystem* fs, int fd, uint64_t off, size_t n, std::string* out) {
  size_t at = out->size();
  out->resize(at + n);
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, out->data() + at + done, n - done, static_cast<off_t>(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r < 0 ? PosixError("read spool", errno) : Status::IoError("spool shrank");
    done += static_cast<size_t>(r);
  }
  (void)fs;
  return Status::Ok();
}

Status WriteDurably(FileSystem* fs, const std::string& dir, const std::string& name,
                    std::string_view data) {
  std::string tmp = dir + "/." + name + ".tmp";
  SR_ASSIGN_OR_RETURN(int fd, fs->Open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  ScopedFd f(fs, fd);
  SR_RETURN_IF_ERROR(
      fs->WriteAll(fd, {reinterpret_cast<const uint8_t*>(data.data()), data.size()}));
  SR_RETURN_IF_ERROR(fs->Fsync(fd));
  SR_RETURN_IF_ERROR(f.Close());
  SR_RETURN_IF_ERROR(fs->Rename(tmp, dir + "/" + name));
  return fs->FsyncDir(dir);
}

bool Retryable(long status) {
  return status == 408 || status == 425 || status == 429 || (status >= 500 && status <= 599);
}

}  // namespace

// What a build on the pool produced.
struct LogShipper::Built {
  Status status;
  cache::LogBatchRecord record;
  std::map<std::string, uint64_t> cursors;  // the files it read from: their new positions
  int64_t next_line_seq = 0;
  std::string file;  // the batch file
};

LogShipper::LogShipper(uv_loop_t* loop, const Config& config, cache::Cache* cache,
                       Sender* sender, Clock* clock)
    : loop_(loop),
      config_(config.logs),
      relay_id_(config.relay_id),
      spool_dir_(config.data_dir + "/spool"),
      cache_(cache),
      sender_(sender),
      clock_(clock),
      cut_timer_(loop),
      ship_timer_(loop) {
  upstream_.url = config.logs.upstream;
  upstream_.user = config.logs.user;
  upstream_.password = config.logs.password;
  upstream_.name = "logs";
}

LogShipper::~LogShipper() { *alive_ = false; }

std::string LogShipper::BatchPath(int64_t seq) const {
  return spool_dir_ + "/batches/" + std::to_string(seq) + ".ndjson.zst";
}

Status LogShipper::Start() {
  FileSystem* fs = cache_->store().fs();
  if (!config_.dictionary.empty()) {
    auto d = ReadWholeFile(config_.dictionary, kMaxBatchFileBytes);
    if (!d.ok()) return d.status().Annotate("logs.dictionary");
    unsigned id = ZSTD_getDictID_fromDict(d->data(), d->size());
    if (id == 0) {
      return Status::InvalidArgument("logs.dictionary " + config_.dictionary +
                                     ": not a zstd dictionary (make one with zstd --train)");
    }
    dictionary_ = std::make_shared<const std::string>(std::move(d).value());
    SR_LOG(kInfo) << "logs: batches compressed with the dictionary " << config_.dictionary
                  << " (id " << id << "): only an upstream that has it can read them";
  }
  SR_RETURN_IF_ERROR(fs->MakeDirs(spool_dir_ + "/batches"));
  cache::LogSpoolState state;
  SR_RETURN_IF_ERROR(cache_->LoadLogSpool(&state));
  auto counter = [&](const char* name, int64_t fallback) {
    auto it = state.counters.find(name);
    return it == state.counters.end() ? fallback : it->second;
  };
  next_line_seq_ = counter("next_line_seq", 1);
  next_batch_seq_ = counter("next_batch_seq", 1);
  shipped_batches_ = counter("shipped_batches", 0);
  shipped_lines_ = counter("shipped_lines", 0);
  dropped_lines_ = counter("dropped_lines", 0);
  // Batch files: those the catalog knows stay; anything else is a build a crash interrupted.
  std::set<std::string> known;
  for (cache::LogBatchRecord& b : state.batches) {
    struct stat st;
    if (::stat(BatchPath(b.seq).c_str(), &st) != 0) {
      SR_LOG(kError) << "logs: batch " << b.seq << " (" << b.lines
                     << " lines) is in the catalog but its file is gone";
      continue;
    }
    known.insert(std::to_string(b.seq) + ".ndjson.zst");
    batches_.push_back(std::move(b));
  }
  if (DIR* d = ::opendir((spool_dir_ + "/batches").c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == ".." || known.count(name) != 0) continue;
      (void)fs->Unlink(spool_dir_ + "/batches/" + name);
    }
    ::closedir(d);
  }
  // The spooled logs, and how far each was cut.
  uint64_t now_ms = uv_now(loop_);
  if (DIR* d = ::opendir(spool_dir_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      Spooled s;
      std::string name = e->d_name;
      if (!ParseSpoolName(name, &s.mac, &s.what)) continue;
      struct stat st;
      if (::stat((spool_dir_ + "/" + name).c_str(), &st) != 0) continue;
      s.size = static_cast<uint64_t>(st.st_size);
      auto c = state.cursors.find(name);
      s.shipped = std::min(c == state.cursors.end() ? 0 : c->second, s.size);
      if (s.size > s.shipped) {
        s.appends.emplace_back(s.size, static_cast<int64_t>(st.st_mtime));
        s.waiting_since_ms = now_ms;
      }
      files_.emplace(name, std::move(s));
    }
    ::closedir(d);
  }
  LogShipperStats st = stats();
  SR_LOG(kInfo) << "logs: shipping to " << upstream_.url << "; " << st.unbatched_bytes
                << " bytes to batch, " << st.pending_batches << " batch(es) to send, "
                << st.dead_batches << " refused";
  EnforceCap();
  Cut(false);
  Ship();
  return Status::Ok();
}

void LogShipper::Appended(const std::string& file, uint64_t new_bytes) {
  if (new_bytes == 0) return;
  auto [it, added] = files_.try_emplace(file);
  Spooled& s = it->second;
  if (added && !ParseSpoolName(file, &s.mac, &s.what)) {
    files_.erase(it);
    return;
  }
  s.size += new_bytes;
  s.appends.emplace_back(s.size, clock_->NowSeconds());
  if (s.waiting_since_ms == 0) s.waiting_since_ms = uv_now(loop_);
  EnforceCap();
  Cut(false);
}

void LogShipper::CutNow() {
  force_next_ = true;  // until nothing waits: one batch may not hold it all
  if (!building_) Cut(true);
}

uint64_t LogShipper::Unbatched() const {
  uint64_t n = 0;
  for (const auto& [name, s] : files_) n += s.size - s.shipped;
  return n;
}

LogShipperStats LogShipper::stats() const {
  LogShipperStats st;
  st.unbatched_bytes = Unbatched();
  for (const cache::LogBatchRecord& b : batches_) {
    if (b.dead) {
      ++st.dead_batches;
    } else {
      ++st.pending_batches;
      st.pending_bytes += b.wire_bytes;
    }
  }
  st.shipped_batches = shipped_batches_;
  st.shipped_lines = shipped_lines_;
  st.dropped_lines = dropped_lines_;
  st.last_error = last_error_;
  return st;
}

// ---- cutting batches ---------------------------------------------------------------------------

void LogShipper::Cut(bool force) {
  if (building_ || dropping_) return;
  uint64_t now_ms = uv_now(loop_);
  uint64_t age_ms = static_cast<uint64_t>(std::max<int64_t>(config_.batch_age, 0)) * 1000;
  uint64_t oldest = 0;
  for (const auto& [name, s] : files_) {
    if (s.waiting_since_ms != 0 && (oldest == 0 || s.waiting_since_ms < oldest)) {
      oldest = s.waiting_since_ms;
    }
  }
  if (oldest == 0) {  // nothing waiting
    force_next_ = false;
    return;
  }
  // Records are bigger than the lines they carry (about 130 bytes of JSON around each): half a
  // batch of raw lines is about a full batch of NDJSON.
  bool full = Unbatched() >= config_.batch_bytes / 2;
  bool old = now_ms >= oldest + age_ms;
  if (!force && !full && !old) {
    cut_timer_.Start(oldest + age_ms - now_ms, [this] { Cut(false); });
    return;
  }
  // The files, the one waiting longest first; a line without its '\n' goes only once it is old.
  struct Job {
    std::string name, mac, what;
    uint64_t from, to;
    std::deque<std::pair<uint64_t, int64_t>> appends;
    bool take_partial;
  };
  std::vector<Job> jobs;
  for (const auto& [name, s] : files_) {
    if (s.size <= s.shipped) continue;
    jobs.push_back({name, s.mac, s.what, s.shipped, s.size, s.appends,
                    force || now_ms >= s.waiting_since_ms + age_ms});
  }
  std::sort(jobs.begin(), jobs.end(), [this](const Job& a, const Job& b) {
    return files_[a.name].waiting_since_ms < files_[b.name].waiting_since_ms;
  });
  building_ = true;
  auto built = std::make_shared<Built>();
  built->record.seq = next_batch_seq_;
  built->record.created = clock_->NowSeconds();
  built->next_line_seq = next_line_seq_;
  built->file = BatchPath(next_batch_seq_);
  FileSystem* fs = cache_->store().fs();
  std::string dir = spool_dir_ + "/batches";
  std::string spool = spool_dir_;
  uint64_t limit = config_.batch_bytes;
  std::string relay = relay_id_;
  std::shared_ptr<const std::string> dict = dictionary_;
  std::weak_ptr<bool> alive = alive_;
  Status q = QueueWork(
      loop_,
      [built, jobs = std::move(jobs), fs, dir, spool, limit, relay, dict] {
        std::string ndjson;
        std::set<std::string> macs;
        int64_t seq = built->next_line_seq;
        for (const Job& job : jobs) {
          if (ndjson.size() >= limit) break;
          int fd = ::open((spool + "/" + job.name).c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0) {
            built->status = PosixError("open " + job.name, errno);
            return;
          }
          ScopedFd f(FileSystem::Default(), fd);
          uint64_t pos = job.from;
          size_t append = 0;
          std::string buf;
          while (pos < job.to && ndjson.size() < limit) {
            buf.clear();
            size_t n = static_cast<size_t>(std::min<uint64_t>(job.to - pos, kReadChunk));
            Status s = ReadRange(fs, fd, pos, n, &buf);
            if (!s.ok()) {
              built->status = s;
              return;
            }
            size_t rest = 0;
            bool at_end = pos + n == job.to;
            auto lines = SplitLines(buf, job.take_partial && at_end, &rest);
            if (lines.empty()) {
              if (rest == 0 && n == kReadChunk && !at_end) {
                // One line longer than a read: take the read as a line rather than stall.
                lines.push_back(buf);
                rest = buf.size();
              } else {
                break;  // a partial line that must wait
              }
            }
            size_t consumed = 0;
            for (std::string_view line : lines) {
              uint64_t line_start = pos + static_cast<uint64_t>(line.data() - buf.data());
              while (append + 1 < job.appends.size() && job.appends[append].first <= line_start) {
                ++append;
              }
              int64_t received = job.appends.empty() ? built->record.created
                                                     : job.appends[append].second;
              AppendLogRecord(&ndjson, relay, job.mac, job.what, static_cast<uint64_t>(seq++),
                              received, line);
              ++built->record.lines;
              macs.insert(job.mac);
              // The line and its terminator are consumed.
              const char* end = line.data() + line.size();
              consumed = static_cast<size_t>(end - buf.data());
              if (consumed < buf.size() && buf[consumed] == '\r') ++consumed;
              if (consumed < buf.size() && buf[consumed] == '\n') ++consumed;
              if (ndjson.size() >= limit) break;
            }
            pos += consumed;
            if (consumed == 0) break;
          }
          if (pos != job.from) built->cursors[job.name] = pos;
        }
        if (built->record.lines == 0) return;  // only partial lines: nothing to send yet
        built->record.raw_bytes = ndjson.size();
        auto frame = CompressFrame(ndjson, kLogBatchLevel, dict != nullptr ? *dict : "");
        if (!frame.ok()) {
          built->status = frame.status();
          return;
        }
        built->record.wire_bytes = frame->size();
        for (const std::string& m : macs) {
          if (!built->record.macs.empty()) built->record.macs += ",";
          built->record.macs += m;
        }
        built->next_line_seq = seq;
        std::string name = built->file.substr(built->file.rfind('/') + 1);
        built->status = WriteDurably(fs, dir, name, *frame);
      },
      [this, alive, built] {
        if (alive.expired() || !*alive.lock()) return;
        if (!built->status.ok() || built->record.lines == 0) {
          building_ = false;
          if (!built->status.ok()) {
            last_error_ = "building a batch: " + built->status.message();
            SR_LOG(kError) << "logs: " << last_error_;
            (void)cache_->store().fs()->Unlink(built->file);
            cut_timer_.Start(retry_base_ms_ * 10, [this] { Cut(false); });
          } else {
            force_next_ = false;
            // Only lines without their end: look again once the oldest is old enough.
            uint64_t wait_ms =
                static_cast<uint64_t>(std::max<int64_t>(config_.batch_age, 0)) * 1000;
            cut_timer_.Start(std::max<uint64_t>(wait_ms, 100), [this] { Cut(false); });
          }
          return;
        }
        std::map<std::string, int64_t> counters = {
            {"next_line_seq", built->next_line_seq},
            {"next_batch_seq", built->record.seq + 1}};
        cache_->WriteAsync(
            loop_,
            [built, counters](cache::Catalog& c) {
              return c.CommitLogBatch(built->record, built->cursors, counters);
            },
            [this, alive, built](Status s) {
              if (alive.expired() || !*alive.lock()) return;
              if (!s.ok()) {
                building_ = false;
                last_error_ = "recording a batch: " + s.message();
                SR_LOG(kError) << "logs: " << last_error_;
                (void)cache_->store().fs()->Unlink(built->file);
                cut_timer_.Start(retry_base_ms_ * 10, [this] { Cut(false); });
                return;
              }
              Committed(built);
            });
      });
  if (!q.ok()) {
    building_ = false;
    SR_LOG(kError) << "logs: " << q.ToString();
  }
}

void LogShipper::Committed(std::shared_ptr<Built> built) {
  building_ = false;
  next_batch_seq_ = built->record.seq + 1;
  next_line_seq_ = built->next_line_seq;
  uint64_t now_ms = uv_now(loop_);
  for (const auto& [name, pos] : built->cursors) {
    Spooled& s = files_[name];
    s.shipped = std::max(s.shipped, pos);
    while (!s.appends.empty() && s.appends.front().first <= s.shipped) s.appends.pop_front();
    s.waiting_since_ms = s.size > s.shipped ? now_ms : 0;
  }
  SR_LOG(kInfo) << "logs: batch " << built->record.seq << ": " << built->record.lines
                << " lines, " << built->record.raw_bytes << " bytes, "
                << built->record.wire_bytes << " compressed";
  batches_.push_back(built->record);
  Ship();
  EnforceCap();
  Cut(force_next_);
}

// ---- shipping ----------------------------------------------------------------------------------

void LogShipper::Ship() {
  if (shipping_ != 0 || ship_timer_.active() || dropping_) return;
  auto it = std::find_if(batches_.begin(), batches_.end(),
                         [](const cache::LogBatchRecord& b) { return !b.dead; });
  if (it == batches_.end()) return;
  int64_t seq = it->seq;
  shipping_ = seq;
  auto body = std::make_shared<Result<std::string>>(Status::Internal("not read"));
  std::string path = BatchPath(seq);
  std::weak_ptr<bool> alive = alive_;
  Status q = QueueWork(
      loop_, [body, path] { *body = ReadWholeFile(path, kMaxBatchFileBytes); },
      [this, alive, body, seq] {
        if (alive.expired() || !*alive.lock()) return;
        if (!body->ok()) {
          Shipped(seq, SendReply{body->status(), 0, std::nullopt, ""});
          return;
        }
        SendRequest req;
        req.method = "POST";
        req.url = upstream_.url;
        req.headers = {"Content-Type: application/x-ndjson", "Content-Encoding: zstd",
                       "Idempotency-Key: " + relay_id_ + "-" + std::to_string(seq)};
        req.body = std::move(*body).value();
        sender_->Send(upstream_, std::move(req), [this, alive, seq](SendReply reply) {
          if (alive.expired() || !*alive.lock()) return;
          Shipped(seq, std::move(reply));
        });
      });
  if (!q.ok()) Shipped(seq, SendReply{q, 0, std::nullopt, ""});
}

void LogShipper::Shipped(int64_t seq, SendReply reply) {
  auto it = std::find_if(batches_.begin(), batches_.end(),
                         [seq](const cache::LogBatchRecord& b) { return b.seq == seq; });
  if (it == batches_.end()) {  // dropped past the spool cap while on its way
    shipping_ = 0;
    Ship();
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  if (reply.status.ok() && reply.http_status >= 200 && reply.http_status <= 299) {
    uint64_t lines = it->lines;
    std::map<std::string, int64_t> add = {{"shipped_batches", 1},
                                          {"shipped_lines", static_cast<int64_t>(lines)}};
    cache_->WriteAsync(
        loop_, [seq, add](cache::Catalog& c) { return c.DeleteLogBatch(seq, add); },
        [this, alive, seq, lines](Status s) {
          if (alive.expired() || !*alive.lock()) return;
          if (!s.ok()) {
            // Sent again after a restart; the upstream de-duplicates by Idempotency-Key.
            SR_LOG(kError) << "logs: forgetting batch " << seq << ": " << s.ToString();
          }
          auto b = std::find_if(batches_.begin(), batches_.end(),
                                [seq](const cache::LogBatchRecord& r) { return r.seq == seq; });
          if (b != batches_.end()) batches_.erase(b);
          (void)cache_->store().fs()->Unlink(BatchPath(seq));
          ++shipped_batches_;
          shipped_lines_ += static_cast<int64_t>(lines);
          attempts_ = 0;
          // Only now: until the batch is forgotten, Ship() must not pick it again (a batch
          // committed meanwhile calls Ship(), and would POST this one a second time).
          shipping_ = 0;
          Ship();
        });
    return;
  }
  shipping_ = 0;
  std::string why = reply.status.ok()
                        ? "upstream answered " + std::to_string(reply.http_status)
                        : reply.status.message();
  last_error_ = "batch " + std::to_string(seq) + ": " + why;
  it->last_error = why;
  ++it->attempts;
  if (reply.status.ok() && !Retryable(reply.http_status)) {
    // Refused for good: park it (the console shows it) rather than retry forever.
    it->dead = true;
    SR_LOG(kWarning) << "logs: batch " << seq << " (" << it->lines << " lines) refused: " << why
                     << "; kept as dead, not retried";
    attempts_ = 0;
  } else if (attempts_ == 0 || (attempts_ + 1) % 10 == 0) {
    SR_LOG(kWarning) << "logs: batch " << seq << " not delivered (attempt " << attempts_ + 1
                     << "): " << why;
  }
  cache::LogBatchRecord record = *it;
  cache_->WriteAsync(
      loop_, [record](cache::Catalog& c) { return c.UpdateLogBatch(record); }, [](Status) {});
  if (it->dead) {
    Ship();
    return;
  }
  ++attempts_;
  RetryLater(reply.retry_after_ms);
}

void LogShipper::RetryLater(std::optional<int64_t> after_ms) {
  uint64_t delay =
      std::min(Backoff(retry_base_ms_, std::min(attempts_ - 1, 20)), retry_max_ms_);
  if (after_ms && *after_ms > 0) delay = std::max(delay, static_cast<uint64_t>(*after_ms));
  ship_timer_.Start(delay, [this] { Ship(); });
}

// ---- the spool cap -----------------------------------------------------------------------------

void LogShipper::EnforceCap() {
  if (dropping_ || building_) return;
  uint64_t total = Unbatched();
  for (const cache::LogBatchRecord& b : batches_) total += b.wire_bytes;
  if (total <= config_.spool_bytes) return;
  // The oldest batches first (not the one on its way), then the oldest unbatched data.
  std::vector<int64_t> drop_batches;
  int64_t lines = 0;
  std::set<std::string> macs;
  for (const cache::LogBatchRecord& b : batches_) {
    if (total <= config_.spool_bytes) break;
    if (b.seq == shipping_) continue;
    drop_batches.push_back(b.seq);
    total -= b.wire_bytes;
    lines += static_cast<int64_t>(b.lines);
    size_t pos = 0;
    while (pos <= b.macs.size()) {
      size_t comma = b.macs.find(',', pos);
      if (comma == std::string::npos) comma = b.macs.size();
      if (comma > pos) macs.insert(b.macs.substr(pos, comma - pos));
      pos = comma + 1;
    }
  }
  struct Range {
    std::string name;
    uint64_t from, to;
  };
  std::vector<Range> ranges;
  if (total > config_.spool_bytes) {
    std::vector<std::pair<uint64_t, std::string>> oldest;
    for (const auto& [name, s] : files_) {
      if (s.size > s.shipped) oldest.emplace_back(s.waiting_since_ms, name);
    }
    std::sort(oldest.begin(), oldest.end());
    for (const auto& [since, name] : oldest) {
      if (total <= config_.spool_bytes) break;
      const Spooled& s = files_[name];
      ranges.push_back({name, s.shipped, s.size});
      total -= s.size - s.shipped;
      macs.insert(s.mac);
    }
  }
  if (drop_batches.empty() && ranges.empty()) return;
  dropping_ = true;
  auto counted = std::make_shared<int64_t>(lines);
  std::string spool = spool_dir_;
  std::weak_ptr<bool> alive = alive_;
  Status q = QueueWork(
      loop_,
      [counted, ranges, spool] {  // the unbatched lines dropped, for the count
        for (const Range& r : ranges) {
          int fd = ::open((spool + "/" + r.name).c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0) continue;
          std::string buf;
          for (uint64_t pos = r.from; pos < r.to;) {
            buf.clear();
            size_t n = static_cast<size_t>(std::min<uint64_t>(r.to - pos, kReadChunk));
            if (!ReadRange(nullptr, fd, pos, n, &buf).ok()) break;
            *counted += std::count(buf.begin(), buf.end(), '\n');
            pos += n;
          }
          ::close(fd);
        }
      },
      [this, alive, counted, ranges, drop_batches, macs] {
        if (alive.expired() || !*alive.lock()) return;
        std::map<std::string, uint64_t> cursors;
        for (const Range& r : ranges) cursors[r.name] = r.to;
        std::map<std::string, int64_t> add = {{"dropped_lines", *counted}};
        cache_->WriteAsync(
            loop_,
            [drop_batches, cursors, add](cache::Catalog& c) {
              return c.DropLogs(drop_batches, cursors, add);
            },
            [this, alive, counted, cursors, drop_batches, macs](Status s) {
              if (alive.expired() || !*alive.lock()) return;
              dropping_ = false;
              if (!s.ok()) {
                SR_LOG(kError) << "logs: dropping past spool_bytes: " << s.ToString();
                return;
              }
              for (int64_t seq : drop_batches) {
                auto b = std::find_if(
                    batches_.begin(), batches_.end(),
                    [seq](const cache::LogBatchRecord& r) { return r.seq == seq; });
                if (b != batches_.end()) batches_.erase(b);
                (void)cache_->store().fs()->Unlink(BatchPath(seq));
              }
              for (const auto& [name, pos] : cursors) {
                Spooled& f = files_[name];
                f.shipped = std::max(f.shipped, pos);
                while (!f.appends.empty() && f.appends.front().first <= f.shipped) {
                  f.appends.pop_front();
                }
                if (f.size <= f.shipped) f.waiting_since_ms = 0;
              }
              dropped_lines_ += *counted;
              std::string who;
              for (const std::string& m : macs) who += (who.empty() ? "" : ",") + m;
              SR_LOG(kWarning) << "logs: the spool is over spool_bytes ("
                               << config_.spool_bytes << "): dropped the " << *counted
                               << " oldest unsent lines, from " << who;
              Ship();
              Cut(false);
            });
      });
  if (!q.ok()) dropping_ = false;
}

}  // namespace siterelay::sync
