// LogShipper: phones' logs go upstream in batches (CONTRACT.md "Log batches"), and none is lost —
// not to a crash, a power cut, or an upstream that is away for a week.
//
// The spool is data_dir/spool/<mac>-<app|boot>.log, the logs as phones uploaded them (Uploads
// appends only what is new, durably, before the phone hears 2xx). The shipper keeps, per file, a
// cursor: the bytes already cut into batches. Past it, complete lines are cut into a batch when
// they reach logs.batch_bytes of NDJSON or the oldest has waited logs.batch_age seconds (a line
// without its '\n' waits for it until then). Building runs on the libuv pool: read, NDJSON
// (sync/log_batch.h), one zstd frame, written to spool/batches/<seq>.ndjson.zst and fsynced;
// then one catalog transaction records the batch, moves the cursors and the sequence counters.
// A crash before that transaction leaves a stray file that the next start removes, and the lines
// are cut again (under the same, never-sent sequence number); after it, the batch keeps its key
// and bytes for good, so every retry is byte-identical.
//
// Shipping: the oldest batch first, one at a time, POSTed through Sender (background in the
// max_rate budget) with Idempotency-Key <relay_id>-<seq>. A 2xx deletes it (catalog, then file);
// 408, 425, 429, 5xx and no answer retry with exponential backoff and jitter, honouring
// Retry-After; any other answer parks the batch as dead (kept, shown by the console, not
// retried) and the next one goes.
//
// The spool is capped at logs.spool_bytes (unbatched bytes plus batch files): past it the oldest
// lines go — the oldest batches first, then the oldest unbatched data — counted, and logged with
// the phones they came from. Never the newest.
//
// "received" in a record is when the relay filed the upload that brought the line; for data
// found at start-up without that record (a restart), the file's modification time.
//
// Thread safety: loop thread only; file work on the libuv pool.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cache/cache.h"
#include "relay/base/clock.h"
#include "relay/base/config.h"
#include "relay/base/uv.h"
#include "sync/sender.h"

namespace siterelay::sync {

struct LogShipperStats {
  uint64_t unbatched_bytes = 0;  // spooled, not cut into a batch yet
  size_t pending_batches = 0;    // built, waiting for upstream
  uint64_t pending_bytes = 0;    // their wire bytes
  size_t dead_batches = 0;       // refused upstream (4xx), kept
  int64_t shipped_batches = 0;   // acknowledged, over the data_dir's life
  int64_t shipped_lines = 0;
  int64_t dropped_lines = 0;     // past spool_bytes
  std::string last_error;
};

class LogShipper {
 public:
  LogShipper(uv_loop_t* loop, const Config& config, cache::Cache* cache, Sender* sender,
             Clock* clock);
  ~LogShipper();
  LogShipper(const LogShipper&) = delete;
  LogShipper& operator=(const LogShipper&) = delete;

  // Reads the spool and the catalog's state, removes what a crash left half done, and starts.
  Status Start();
  // `file` ("<mac>-app.log") got `new_bytes` more, durably (Uploads::OnFiled).
  void Appended(const std::string& file, uint64_t new_bytes);
  // Cuts what is waiting into batches now, whatever its age (tests, shutdown).
  void CutNow();

  LogShipperStats stats() const;

  // Backoff of a failing batch: base and ceiling (tests shorten them).
  void SetRetryDelays(uint64_t base_ms, uint64_t max_ms) {
    retry_base_ms_ = base_ms;
    retry_max_ms_ = max_ms;
  }

 private:
  struct Spooled {
    std::string mac, what;
    uint64_t shipped = 0;  // the cursor
    uint64_t size = 0;     // durable bytes
    // (end offset, received) of the appends past the cursor, oldest first.
    std::deque<std::pair<uint64_t, int64_t>> appends;
    uint64_t waiting_since_ms = 0;  // uv_now when bytes past the cursor appeared; 0: none
  };
  struct Built;

  std::string BatchPath(int64_t seq) const;
  void Cut(bool force);
  void Committed(std::shared_ptr<Built> built);
  void Ship();
  void Shipped(int64_t seq, SendReply reply);
  void RetryLater(std::optional<int64_t> after_ms);
  void EnforceCap();
  uint64_t Unbatched() const;

  uv_loop_t* loop_;
  LogsConfig config_;
  std::string relay_id_;
  std::string spool_dir_;
  cache::Cache* cache_;
  Sender* sender_;
  Clock* clock_;
  Upstream upstream_;
  std::shared_ptr<const std::string> dictionary_;  // logs.dictionary's bytes; null: none
  std::map<std::string, Spooled> files_;
  std::deque<cache::LogBatchRecord> batches_;  // by seq: pending and dead
  int64_t next_line_seq_ = 1;
  int64_t next_batch_seq_ = 1;
  int64_t shipped_batches_ = 0;
  int64_t shipped_lines_ = 0;
  int64_t dropped_lines_ = 0;
  bool building_ = false;
  bool dropping_ = false;
  bool force_next_ = false;  // CutNow(): cut whatever waits, batch after batch
  int64_t shipping_ = 0;  // seq of the batch on its way, 0: none
  int attempts_ = 0;      // of the oldest pending batch
  Timer cut_timer_;
  Timer ship_timer_;
  std::string last_error_;
  uint64_t retry_base_ms_ = 1000;
  uint64_t retry_max_ms_ = 5 * 60 * 1000;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace siterelay::sync
