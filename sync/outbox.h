// Outbox: phones' settings files go back to the origin (CONTRACT.md "Uploads": settings files
// "are forwarded to the origin with PUT (queued and retried while the origin is away)").
//
// The queue is the catalog itself: every entry with source=upload and forwarded=0 is an item, so
// nothing is lost to a crash or a restart (Start() reads them back). Each is PUT to the origin at
// its own path, through the upstream its route names (URL, credentials, CA), as background work
// in the WAN budget (sync/sender.h). A 2xx marks the entry forwarded — only if it still names
// the bytes that were sent: a newer upload of the same file is never marked by its
// predecessor's success, and it is PUT next. Anything else is retried with exponential backoff
// and jitter (Retry-After honoured), for as long as it takes. The latest version wins because a
// PUT always sends what the entry names when it starts; an older version still queued is never
// sent after a newer one. Until the origin has it, the upload keeps winning over the origin's
// copy when phones read the path (FileService serves upload entries as they are).
//
// Thread safety: loop thread only; reading a file to send runs on the libuv pool.
#pragma once

#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "cache/cache.h"
#include "relay/base/config.h"
#include "relay/base/uv.h"
#include "sync/origin.h"
#include "sync/sender.h"

namespace siterelay::sync {

struct OutboxStats {
  uint64_t sent = 0;      // PUTs the origin acknowledged
  uint64_t failures = 0;  // attempts that failed (each is retried)
  std::string last_error;
};

class Outbox {
 public:
  Outbox(uv_loop_t* loop, const OriginConfig& config, cache::Cache* cache, Sender* sender);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Queues every upload entry not yet forwarded (start-up).
  void Start();
  // A settings upload was filed at `path` (Uploads::OnFiled): send it.
  void Poke(const std::string& path);

  size_t pending() const { return items_.size(); }
  const OutboxStats& stats() const { return stats_; }

  // Backoff of a failing item: base and ceiling (tests shorten them).
  void SetRetryDelays(uint64_t base_ms, uint64_t max_ms) {
    retry_base_ms_ = base_ms;
    retry_max_ms_ = max_ms;
  }

 private:
  struct Item {
    int attempts = 0;
    uint64_t not_before_ms = 0;  // uv_now
    bool in_flight = false;
    bool again = false;  // poked while in flight: look at the entry again afterwards
  };
  void Kick();
  void Pump();
  void SendOne(const std::string& path, Item* item);
  void Sent(const std::string& path, const Digest& digest, SendReply reply);
  void Failed(const std::string& path, const std::string& why, std::optional<int64_t> after_ms);

  uv_loop_t* loop_;
  Origins origins_;
  cache::Cache* cache_;
  Sender* sender_;
  std::map<std::string, Item> items_;
  size_t in_flight_ = 0;
  bool kicked_ = false;  // a Pump() is due from the timer
  Timer timer_;
  OutboxStats stats_;
  uint64_t retry_base_ms_ = 1000;
  uint64_t retry_max_ms_ = 5 * 60 * 1000;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace siterelay::sync
