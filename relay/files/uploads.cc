#include "relay/files/uploads.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "relay/base/log.h"
#include "relay/base/mime.h"
#include "relay/base/uv.h"

namespace siterelay::files {
namespace {

constexpr size_t kCompareChunk = 64 * 1024;

// Reads exactly data.size() bytes at `offset`, or fails.
Status ReadAt(int fd, std::span<uint8_t> data, uint64_t offset) {
  while (!data.empty()) {
    ssize_t n = ::pread(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("read", errno);
    }
    if (n == 0) return Status::IoError("file shorter than expected");
    data = data.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// A log upload's bytes, from memory or from its tmp/ blob.
class UploadedBytes {
 public:
  static Result<UploadedBytes> Open(FileSystem* fs, const LogBody& body) {
    UploadedBytes u(fs, body.bytes);
    if (body.tmp_path.empty()) return u;
    SR_ASSIGN_OR_RETURN(int fd, fs->Open(body.tmp_path, O_RDONLY, 0));
    u.fd_ = ScopedFd(fs, fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) return PosixError("fstat " + body.tmp_path, errno);
    u.size_ = static_cast<uint64_t>(st.st_size);
    return u;
  }
  uint64_t size() const { return size_; }
  Status ReadAt(std::span<uint8_t> data, uint64_t offset) const {
    if (fd_.get() >= 0) return files::ReadAt(fd_.get(), data, offset);
    if (offset > size_ || data.size() > size_ - offset) return Status::IoError("past the upload");
    std::memcpy(data.data(), memory_.data() + offset, data.size());
    return Status::Ok();
  }

 private:
  UploadedBytes(FileSystem* fs, std::string_view memory)
      : fd_(fs, -1), memory_(memory), size_(memory.size()) {}
  ScopedFd fd_;
  std::string_view memory_;
  uint64_t size_;
};

// Appends to the spool file at `spool` what the upload `body` adds to it, and fsyncs.
// Runs on the thread pool. "Adds" per CONTRACT.md: when the upload begins with the bytes already
// stored, only the rest is new; an upload that is a prefix of what is stored adds nothing; any
// other upload (a phone whose log restarted) is appended whole.
Result<UploadResult> AppendNewBytes(FileSystem* fs, const std::string& spool,
                                    const LogBody& body) {
  UploadResult result;
  SR_ASSIGN_OR_RETURN(UploadedBytes in, UploadedBytes::Open(fs, body));
  struct stat sst;
  bool existed = ::stat(spool.c_str(), &sst) == 0;
  SR_ASSIGN_OR_RETURN(int out_fd, fs->Open(spool, O_RDWR | O_CREAT, 0644));
  ScopedFd out(fs, out_fd);
  if (::fstat(out.get(), &sst) != 0) return PosixError("fstat " + spool, errno);
  uint64_t up_size = in.size();
  auto stored = static_cast<uint64_t>(sst.st_size);
  result.created = !existed;

  uint64_t common = std::min(up_size, stored);
  bool same_prefix = true;
  // Sized to the bytes at hand: a boot log's append should not map 128 KiB.
  std::vector<uint8_t> a(std::min<uint64_t>(kCompareChunk, up_size));
  std::vector<uint8_t> b(std::min<uint64_t>(kCompareChunk, common));
  for (uint64_t off = 0; off < common && same_prefix; off += kCompareChunk) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kCompareChunk, common - off));
    SR_RETURN_IF_ERROR(in.ReadAt({a.data(), n}, off));
    SR_RETURN_IF_ERROR(ReadAt(out.get(), {b.data(), n}, off));
    same_prefix = std::memcmp(a.data(), b.data(), n) == 0;
  }
  uint64_t from = same_prefix ? common : 0;
  if (same_prefix && up_size <= stored) from = up_size;  // nothing new
  auto append = [&]() -> Status {
    for (uint64_t off = from; off < up_size; off += kCompareChunk) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kCompareChunk, up_size - off));
      SR_RETURN_IF_ERROR(in.ReadAt({a.data(), n}, off));
      if (::lseek(out.get(), 0, SEEK_END) < 0) return PosixError("seek " + spool, errno);
      SR_RETURN_IF_ERROR(fs->WriteAll(out.get(), {a.data(), n}).Annotate(spool));
      result.new_bytes += n;
    }
    if (result.new_bytes > 0 || result.created) {
      SR_RETURN_IF_ERROR(fs->Fsync(out.get()).Annotate(spool));
    }
    if (result.created) {
      SR_RETURN_IF_ERROR(fs->FsyncDir(spool.substr(0, spool.rfind('/'))));
    }
    return Status::Ok();
  };
  if (Status s = append(); !s.ok()) {
    // The phone hears an error, so nothing of this upload may stay: a disk that filled part way
    // through would otherwise leave the first pieces in the log, past what the log shipper was
    // told of (it counts only acknowledged bytes and would cut its batches at the wrong places),
    // and a phone that re-sends only its new lines (FTP APPE) would store them twice.
    Status undo = result.created ? fs->Unlink(spool) : fs->Truncate(out.get(), stored);
    if (!undo.ok()) {
      SR_LOG(kError) << "uploads: cannot take a failed append back out of " << spool << ": "
                     << undo.ToString();
    }
    return s;
  }
  return result;
}

}  // namespace

// ---- UploadSink ------------------------------------------------------------------------------

UploadSink::UploadSink(Uploads* owner, std::string path, UploadName name, uint64_t max_bytes)
    : owner_(owner), path_(std::move(path)), name_(std::move(name)), max_bytes_(max_bytes) {}

Status UploadSink::Write(std::string_view data) {
  received_ += data.size();
  if (received_ > max_bytes_) {
    Status too_large = Status::ResourceExhausted("upload larger than uploads.max_bytes (" +
                                                 std::to_string(max_bytes_) + ")");
    Fail(too_large);
    return too_large;
  }
  // A piece that could not be written (disk full, I/O error) is the relay's failure, not the
  // peer's: the rest of the body is read and dropped, and Finish() reports the failure, which
  // every front-end answers as one of storage (HTTP 507, TFTP "disk full"). Failing here would
  // answer it as the peer's (HTTP 413, "too large", which a phone does not retry), and cut off a
  // sender that is still sending.
  if (!error_.ok()) return Status::Ok();
  while (!data.empty()) {
    size_t n = std::min(kChunkBytes - current_.size(), data.size());
    current_.append(data.substr(0, n));
    data.remove_prefix(n);
    if (current_.size() == kChunkBytes) {
      chunks_.push_back(std::move(current_));
      current_.clear();
    }
  }
  Pump();
  return Status::Ok();
}

void UploadSink::WakeOwner() {
  // A copy: the callback may abort the upload, which drops on_wants_more_ while it runs.
  std::function<void()> cb = on_wants_more_;
  if (cb) cb();
}

bool UploadSink::WantsMore() {
  return chunks_.size() < kMaxQueuedChunks && owner_->Admit(this);
}

void UploadSink::Fail(Status s) {
  if (error_.ok()) error_ = std::move(s);
  chunks_.clear();
  current_.clear();
  Recharge();
}

void UploadSink::Finish(std::function<void(Result<UploadResult>)> done) {
  done_ = std::move(done);
  finishing_ = true;
  if (!current_.empty()) chunks_.push_back(std::move(current_));
  current_.clear();
  Pump();
}

void UploadSink::Abort() {
  on_wants_more_ = nullptr;
  done_ = nullptr;
  // The whole body is here: filed with no one to tell. The pool job or the queued filing under
  // way holds this sink until it is done.
  if (finishing_) return;
  aborted_ = true;
  chunks_.clear();
  current_.clear();
  current_.shrink_to_fit();  // the sink itself may live on in a pool job's hands
  Recharge();
}

void UploadSink::Recharge() {
  size_t held = current_.size() + pool_bytes_ + filing_bytes_;
  for (const std::string& c : chunks_) held += c.size();
  owner_->Charge(charged_, held);
  charged_ = held;
}

void UploadSink::Pump() {
  // PumpOnce may answer Finish()'s callback, whose owner may then drop the last reference.
  auto self = shared_from_this();
  PumpOnce();
  Recharge();
}

void UploadSink::PumpOnce() {
  if (job_in_flight_ || aborted_) return;
  // A log that came in one piece is appended from memory (the header says why), unless it must
  // wait for another upload of the same log: waiting bodies stay on disk, not in memory.
  if (finishing_ && !sealing_ && !wrote_any_ && error_.ok() && name_.kind == UploadName::kLog &&
      !owner_->LogBusy(name_)) {
    LogBody body;
    if (!chunks_.empty()) body.bytes = std::move(chunks_.front());
    chunks_.clear();
    filing_bytes_ = body.bytes.size();
    sealing_ = true;  // filed from here on
    owner_->FileLog(shared_from_this(), std::move(body));
    return;
  }
  if (!chunks_.empty() && error_.ok()) {
    job_in_flight_ = true;
    wrote_any_ = true;
    auto self = shared_from_this();  // alive until the pool job has reported back
    auto chunk = std::make_shared<std::string>(std::move(chunks_.front()));
    chunks_.pop_front();
    pool_bytes_ = chunk->size();
    auto status = std::make_shared<Status>();
    cache::ObjectStore* store = &owner_->cache_->store();
    Status q = QueueWork(
        owner_->loop_,
        [self, chunk, status, store] {
          if (self->writer_ == nullptr) {
            auto w = store->CreateStreaming();  // no buffer held per phone uploading
            if (!w.ok()) {
              *status = w.status();
              return;
            }
            self->writer_ = std::move(w).value();
          }
          *status = self->writer_->Append(
              {reinterpret_cast<const uint8_t*>(chunk->data()), chunk->size()});
        },
        [self, status] {
          self->job_in_flight_ = false;
          self->pool_bytes_ = 0;
          self->Recharge();
          if (!status->ok()) self->Fail(*status);
          if (self->WantsMore()) self->WakeOwner();
          self->Pump();
        });
    if (!q.ok()) {
      job_in_flight_ = false;
      pool_bytes_ = 0;
      Fail(q);
    } else {
      return;
    }
  }
  if (!finishing_ || !chunks_.empty() || sealing_) return;
  if (!error_.ok()) {
    Complete(error_);
    return;
  }
  Seal();
}

// Seals the blob on the pool, then files it from the loop. Settings become objects, so their
// blob is fsynced; a log's blob is only read back into the spool, whose append is what lasts.
void UploadSink::Seal() {
  sealing_ = true;
  job_in_flight_ = true;
  auto self = shared_from_this();
  auto sealed = std::make_shared<Result<cache::SealedBlob>>(Status::Internal("not sealed"));
  cache::ObjectStore* store = &owner_->cache_->store();
  bool sync = name_.kind != UploadName::kLog;
  Status q = QueueWork(
      owner_->loop_,
      [self, sealed, store, sync] {
        if (self->writer_ == nullptr) {  // an empty upload
          auto w = store->CreateStreaming();  // no buffer held per phone uploading
          if (!w.ok()) {
            *sealed = w.status();
            return;
          }
          self->writer_ = std::move(w).value();
        }
        *sealed = self->writer_->Seal(nullptr, sync);
        self->writer_.reset();
      },
      [self, sealed] {
        self->job_in_flight_ = false;
        if (!sealed->ok()) {
          self->Complete(sealed->status());
          return;
        }
        if (self->name_.kind == UploadName::kLog) {
          self->owner_->FileLog(self, LogBody{std::move(*sealed)->tmp_path, {}});
        } else {
          self->owner_->FileSettings(self, std::move(*sealed).value());
        }
      });
  if (!q.ok()) {
    job_in_flight_ = false;
    Complete(q);
  }
}

void UploadSink::Complete(Result<UploadResult> result) {
  if (!done_) return;  // the connection went away (Abort), or answered already
  auto done = std::move(done_);
  done_ = nullptr;
  done(std::move(result));
}

// ---- Uploads ---------------------------------------------------------------------------------

std::string SpoolPath(const std::string& data_dir, const UploadName& log) {
  return data_dir + "/spool/" + log.mac + "-" + log.what + ".log";
}

Uploads::Uploads(uv_loop_t* loop, cache::Cache* cache, Clock* clock)
    : loop_(loop), cache_(cache), clock_(clock), wake_(loop) {
  Status s = cache->store().fs()->MakeDirs(cache->store().data_dir() + "/spool");
  if (!s.ok()) SR_LOG(kError) << "uploads: " << s.ToString();
}

std::shared_ptr<UploadSink> Uploads::Begin(std::string path, UploadName name,
                                           uint64_t max_bytes) {
  return std::make_shared<UploadSink>(this, std::move(path), std::move(name), max_bytes);
}

void Uploads::FileSettings(std::shared_ptr<UploadSink> sink, cache::SealedBlob blob) {
  bool created = cache_->Lookup(sink->path_) == nullptr;
  auto status = std::make_shared<Status>();
  auto b = std::make_shared<cache::SealedBlob>(std::move(blob));
  cache::ObjectStore* store = &cache_->store();
  Status q = QueueWork(
      loop_,
      [status, b, store] {
        std::vector<cache::SealedBlob> one{*b};
        *status = store->Install(one, /*already_synced=*/true);
      },
      [this, sink, status, b, created] {
        if (!status->ok()) {
          sink->Complete(*status);
          return;
        }
        cache::Entry e;
        e.path = sink->path_;
        e.sha256 = b->digest;
        e.size = b->size;
        e.content_type = std::string(ContentTypeForPath(e.path));
        e.fetched_at = clock_->NowSeconds();
        e.source = cache::Source::kUpload;
        e.forwarded = false;  // until the outbox has PUT it to the origin
        cache_->PublishAsync(loop_, {e}, [this, sink, created](Status s) {
          if (!s.ok()) {
            sink->Complete(s);
            return;
          }
          UploadResult r;
          r.created = created;
          if (on_filed_) on_filed_(sink->path_, sink->name_, 0);
          sink->Complete(r);
        });
      });
  if (!q.ok()) sink->Complete(q);
}

void Uploads::FileLog(std::shared_ptr<UploadSink> sink, LogBody body) {
  std::string spool = SpoolPath(cache_->store().data_dir(), sink->name_);
  auto run = [this, sink, body = std::make_shared<LogBody>(std::move(body)), spool]() mutable {
    FileSystem* fs = cache_->store().fs();
    auto filed = [this, sink, spool] {
      sink->filing_bytes_ = 0;  // the body's memory goes with the last of these closures
      sink->Recharge();
      LogFiled(spool);
    };
    auto result = std::make_shared<Result<UploadResult>>(Status::Internal("not run"));
    Status q = QueueWork(
        loop_,
        [result, fs, spool, body] {
          *result = AppendNewBytes(fs, spool, *body);
          if (!body->tmp_path.empty()) (void)fs->Unlink(body->tmp_path);
        },
        [this, sink, result, filed] {
          filed();
          if (result->ok() && on_filed_) on_filed_(sink->path_, sink->name_, (*result)->new_bytes);
          sink->Complete(*result);
        });
    if (!q.ok()) {
      filed();
      sink->Complete(q);
    }
  };
  auto [it, idle] = busy_logs_.try_emplace(spool);
  if (idle) {
    run();
  } else {
    it->second.push_back(std::move(run));  // after the upload of this log in progress
  }
}

bool Uploads::LogBusy(const UploadName& log) const {
  return busy_logs_.contains(SpoolPath(cache_->store().data_dir(), log));
}

bool Uploads::Admit(UploadSink* sink) {
  // An upload that has begun (taken a byte) goes on to its end, its own share bounded by
  // kChunkBytes and kMaxQueuedChunks; new ones wait. What is held drains as its senders send.
  if (held_ < kMemoryBytes || sink->received_ > 0) return true;
  if (!sink->waiting_budget_) {
    sink->waiting_budget_ = true;
    waiters_.push_back(sink->weak_from_this());
  }
  return false;
}

void Uploads::Charge(size_t from, size_t to) {
  held_ = held_ - from + to;
  // Woken from the loop, not from inside whatever released the bytes (a sink mid-Pump).
  if (held_ < kMemoryBytes && !waiters_.empty() && !wake_.active()) {
    wake_.Start(0, [this] { WakeWaiters(); });
  }
}

void Uploads::WakeWaiters() {
  // In the order they were refused; one that finds the budget spent again goes back on the list.
  std::deque<std::weak_ptr<UploadSink>> waiters;
  waiters.swap(waiters_);
  for (const auto& w : waiters) {
    std::shared_ptr<UploadSink> sink = w.lock();
    if (!sink) continue;
    sink->waiting_budget_ = false;
    sink->WakeOwner();  // none once aborted
  }
}

void Uploads::LogFiled(const std::string& spool) {
  auto it = busy_logs_.find(spool);
  if (it == busy_logs_.end()) return;
  if (it->second.empty()) {
    busy_logs_.erase(it);
    return;
  }
  auto next = std::move(it->second.front());
  it->second.pop_front();
  next();
}

}  // namespace siterelay::files
