// Uploads: what phones send (CONTRACT.md "Uploads"), made durable before anyone says 2xx.
//
// An UploadSink receives one upload's body in pieces on the loop thread and writes it, in order,
// into a blob in tmp/ on the libuv thread pool (at most kMaxQueuedChunks pieces waiting, so a
// fast sender is slowed to the disk's pace instead of filling memory). What all uploads hold in
// memory is under one budget, Uploads::kMemoryBytes: past it, an upload that has not begun takes
// nothing (its bytes wait in the kernel's socket buffer) until the uploads under way have reached
// the disk. Finish() then files it:
//   settings (<mac>-phone.cfg, ...): the blob becomes an object (fsync, rename) and the path's
//     entry is published with source=upload and forwarded=false, so it is served back at once and
//     never evicted before the origin has it;
//   logs (<mac>-app.log, <mac>-boot.log): only the bytes not already stored are appended to
//     data_dir/spool/<mac>-<app|boot>.log and fsynced — a phone that re-sends its whole log adds
//     only its new tail. Uploads of one log are filed one at a time; an append that fails part
//     way is taken back out, so the log holds only what phones heard 2xx for. A log body of at
//     most kChunkBytes (a boot log is 4-12 KiB) never touches tmp/: it is appended from memory,
//     unless another upload of the same log is being appended (it waits its turn on disk).
//     A longer one is staged in a tmp/ blob that is never fsynced, since only the spool's copy
//     needs to last: a boot storm creates one file per log instead of two, and syncs one.
// `done` runs on the loop thread once the bytes are durable, or with the error.
//
// Thread safety: Uploads and UploadSink belong to the loop thread; their pool work touches only
// the blob and spool files.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "cache/cache.h"
#include "relay/base/clock.h"
#include "relay/base/status.h"
#include "relay/base/uv.h"
#include "relay/files/phone.h"

namespace siterelay::files {

class Uploads;

// data_dir/spool/<mac>-<app|boot>.log: where a phone's log lives.
std::string SpoolPath(const std::string& data_dir, const UploadName& log);

// The result of a filed upload.
struct UploadResult {
  bool created = false;     // the path had nothing before
  uint64_t new_bytes = 0;   // logs: bytes appended (0 when the phone re-sent what was stored)
};

// A log upload's body: in memory when it fitted in one piece, else in the tmp/ blob at tmp_path.
struct LogBody {
  std::string tmp_path;
  std::string bytes;
};

class UploadSink : public std::enable_shared_from_this<UploadSink> {
 public:
  // Pieces of this size go to the pool one at a time.
  static constexpr size_t kChunkBytes = 64 * 1024;
  static constexpr size_t kMaxQueuedChunks = 2;

  UploadSink(Uploads* owner, std::string path, UploadName name, uint64_t max_bytes);

  // Takes the next piece of the body. Fails only for what the peer sent: ResourceExhausted once
  // past uploads.max_bytes. A piece the disk refuses is the relay's failure, reported by
  // Finish() once the body is in (the pieces after it are dropped).
  Status Write(std::string_view data);
  // False while enough is queued for the pool: this upload's pieces, or, for an upload that has
  // not taken a byte yet, all uploads' bytes (the budget). `cb` runs when that changes; set it
  // before the first call.
  bool WantsMore();
  void OnWantsMore(std::function<void()> cb) { on_wants_more_ = std::move(cb); }
  void Finish(std::function<void(Result<UploadResult>)> done);
  // The connection went away; no callback runs any more. Before Finish() nothing is filed. After
  // it the whole body is here, and it is filed all the same: a phone that stopped waiting for
  // its answer (an FTP client that drops its control connection while a slow disk files the
  // upload, the relay stopping) would not send it again, and a log sent again adds only its new
  // bytes.
  void Abort();

  size_t filing_bytes_for_test() const { return filing_bytes_; }

 private:
  friend class Uploads;

  void Pump();
  void PumpOnce();
  // Runs the OnWantsMore() callback, if any.
  void WakeOwner();
  // Tells the owner's budget what this upload holds now: the piece being filled, pieces queued,
  // the one on the pool, a log body being appended from memory.
  void Recharge();
  void Seal();
  void Fail(Status s);
  // Hands the result to Finish()'s callback, once, unless aborted.
  void Complete(Result<UploadResult> result);

  Uploads* owner_;
  std::string path_;
  UploadName name_;
  uint64_t max_bytes_;
  uint64_t received_ = 0;
  std::unique_ptr<cache::BlobWriter> writer_;
  std::string current_;
  std::deque<std::string> chunks_;
  bool job_in_flight_ = false;
  bool wrote_any_ = false;  // a piece went to the pool: the body is in a tmp/ blob
  bool finishing_ = false;
  bool sealing_ = false;
  bool aborted_ = false;  // before Finish(): nothing is filed; Finish() and filing never see it
  bool waiting_budget_ = false;  // on the owner's list, to be woken when the budget frees
  size_t pool_bytes_ = 0;        // the piece being written on the pool
  size_t filing_bytes_ = 0;      // the log body being appended from memory
  size_t charged_ = 0;           // what the owner's budget counts for this upload
  Status error_;
  std::function<void()> on_wants_more_;
  std::function<void(Result<UploadResult>)> done_;
};

class Uploads {
 public:
  // Upload bytes held in memory between the sockets and the disk, across all uploads (see the
  // header). A boot storm's 1,000 logs held 16 MiB of the relay's 60 MiB peak without it; the
  // pool's four threads have work queued at a quarter of it.
  static constexpr size_t kMemoryBytes = 4 << 20;

  Uploads(uv_loop_t* loop, cache::Cache* cache, Clock* clock);

  // A sink for an upload to catalog path `path` whose last segment classified as `name`.
  std::shared_ptr<UploadSink> Begin(std::string path, UploadName name, uint64_t max_bytes);

  // Runs on the loop thread after each upload is durable: for the settings outbox and the log
  // shipper (sync/), which take it from there. `new_bytes`: what a log upload appended.
  using FiledCallback =
      std::function<void(const std::string& path, const UploadName& name, uint64_t new_bytes)>;
  void OnFiled(FiledCallback cb) { on_filed_ = std::move(cb); }

  // Bytes held under kMemoryBytes now.
  size_t held_bytes() const { return held_; }

 private:
  friend class UploadSink;
  void FileSettings(std::shared_ptr<UploadSink> sink, cache::SealedBlob blob);
  void FileLog(std::shared_ptr<UploadSink> sink, LogBody body);
  void LogFiled(const std::string& spool);
  // An upload of this log is being appended now.
  bool LogBusy(const UploadName& log) const;
  // Whether the budget lets `sink` take more; if not, `sink` is woken when it does.
  bool Admit(UploadSink* sink);
  // An upload's charge moves from `from` bytes to `to`.
  void Charge(size_t from, size_t to);
  void WakeWaiters();

  uv_loop_t* loop_;
  cache::Cache* cache_;
  Clock* clock_;
  // Logs being appended to, with the uploads of the same log waiting their turn.
  std::map<std::string, std::deque<std::function<void()>>> busy_logs_;
  FiledCallback on_filed_;
  size_t held_ = 0;
  std::deque<std::weak_ptr<UploadSink>> waiters_;  // refused by the budget, in order
  Timer wake_;
};

}  // namespace siterelay::files
