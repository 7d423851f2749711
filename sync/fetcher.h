// Fetcher: pull-through from the origin with single flight (DESIGN.md "A read, end to end",
// step 4; CONTRACT.md "Reads").
//
// Fetch(path) starts one transfer per path, however many readers ask while it runs: the 300th
// phone asking for a cold firmware image attaches to the transfer the first one started. A
// transfer's body is written to tmp/ through a streaming BlobWriter (hashed as it lands) and
// exposed as a cache::GrowingFile, so every reader streams it while it arrives. When the origin
// is done the blob is sealed, made durable, installed under objects/ and published; later readers
// get the cached object.
//
// A stale entry is revalidated with If-None-Match / If-Modified-Since (a 304 costs no body and
// only refreshes the entry). An origin 404 is remembered for `negative_for` seconds. A body cut
// mid-way is resumed with a Range request validated by If-Range, up to kMaxResumes times with
// backoff; an origin that answers the resume with the whole file starts it over (its readers are
// cut off, since what they were sent may be an older version). Nothing unverified is ever
// published: a transfer that fails leaves the cache as it was, and the caller decides to serve
// the last good copy (FileService).
//
// Scheduling: each upstream has kTransferSlots slots, one per transfer on the wire (so libcurl
// never queues a request behind its connection cap where we cannot reorder it). Transfers wait
// for a slot in three queues, served in order: kPhone (a phone is waiting), kSoon (a phone is
// expected to ask shortly: AskAhead), kBackground (prefetch, manifest files). kSoon leaves
// kPhoneReserve slots to phones, kBackground may hold at most kBackgroundSlots, so whatever was
// queued ahead, a phone's miss waits at most for a slot to free, never for a queue to drain. A
// phone's ask for a queued path moves it to the phone queue; a path a second phone asks for
// while it waits goes to the head of the phone queue (a shared file before one phone's own).
//
// Ownership: the Fetcher owns its transfers and their curl handles; GrowingFiles are shared with
// readers. Destroying the Fetcher abandons transfers in flight without running their callbacks.
// Thread safety: loop thread only; sealing and installing run on the libuv thread pool.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cache.h"
#include "cache/growing_file.h"
#include "relay/base/clock.h"
#include "relay/base/config.h"
#include "relay/base/mime.h"
#include "relay/base/status.h"
#include "relay/base/uv.h"
#include "sync/curl_loop.h"
#include "sync/origin.h"
#include "sync/rate_limiter.h"

namespace siterelay::sync {

// Counters for the console (issue: bytes from the origin vs served, transfers, revalidations...).
struct FetchStats {
  uint64_t transfers = 0;          // requests sent to an origin
  uint64_t bytes_from_origin = 0;  // body bytes received (decoded)
  uint64_t bytes_by_class[kContentClasses] = {};  // the same, by ContentClassOf(path)
  uint64_t revalidations = 0;      // conditional requests
  uint64_t not_modified = 0;       // ... answered 304
  uint64_t not_found = 0;          // origin 404/410
  uint64_t failures = 0;           // transfers that ended without a usable answer
  uint64_t resumes = 0;            // Range requests after a cut
  uint64_t published = 0;          // bodies that became cached objects
};

// Who is waiting for a transfer, in scheduling order.
enum class Priority {
  kPhone,       // a phone asked: first in the queue, and first to the WAN budget
  kSoon,        // a phone will ask shortly (AskAhead): after phones' asks; not held back by them
  kBackground,  // prefetch and manifest files: yields slots and bytes to both above
};
inline constexpr int kPriorities = 3;

// What a reader wants to be told.
enum class Want {
  kBody,      // as soon as a new body starts arriving (stream it while it grows)
  kComplete,  // only once the answer is in the cache (HEAD, clients that cannot stream)
};

struct FetchOutcome {
  // OK: `body` is arriving, or (no body) the cache now holds the path's current version.
  // NotFound: the origin has no such file. Anything else: the origin failed; serve the last good
  // copy if there is one.
  Status status;
  std::shared_ptr<cache::GrowingFile> body;
  int64_t modified = 0;  // the body's Last-Modified (Unix seconds), or when it was fetched
};

// Ceilings on what the origin can make us hold.
inline constexpr size_t kMaxHeaderBytes = 64 * 1024;     // all response header lines together
inline constexpr size_t kMaxNegativeEntries = 100'000;   // remembered 404s
inline constexpr int kMaxResumes = 3;                    // Range retries of one cut transfer
// A phone's transfer of a file not cached at all waits out Retry-Afters up to this long in all.
inline constexpr int64_t kPhoneWaitsRetryAfterSeconds = 5;
// Transfers on the wire at once per upstream (one per connection over HTTP/1.1), and the share
// of them each priority may take (see "Scheduling" above).
inline constexpr size_t kTransferSlots = kMaxOriginConnections;
inline constexpr size_t kPhoneReserve = 8;
inline constexpr size_t kBackgroundSlots = 8;
// Transfers waiting for a slot, by kSoon: asks ahead past this are dropped (the phone asks itself).
inline constexpr size_t kMaxQueuedSoon = 20'000;

// Holds back new versions of some paths until what they name is cached (issue 12, config-aware
// prefetch: files::ConfigGate). A gated path's readers are never streamed a new body: they wait
// for the end and are then served the version still published.
class PublishGate {
 public:
  virtual ~PublishGate() = default;
  // Whether new versions of `path` go through the gate.
  virtual bool Gated(std::string_view path) const = 0;
  // A new version of a gated path that has a cached one: `entry` is installed (its object is
  // durable) but not published; the cached version was refreshed and stays in force. The gate
  // publishes `entry` when it decides to, or drops it. Called on the loop thread.
  virtual void Arrived(cache::Entry entry) = 0;
};

class Fetcher {
 public:
  Fetcher(uv_loop_t* loop, const OriginConfig& config, cache::Cache* cache, Clock* clock);
  ~Fetcher();
  Fetcher(const Fetcher&) = delete;
  Fetcher& operator=(const Fetcher&) = delete;

  bool enabled() const { return origins_.enabled(); }
  // The origin said 404 for `path` less than `negative_for` seconds ago.
  bool KnownMissing(std::string_view path);
  // Asks the origin for `path` (a catalog path). `done` runs exactly once on the loop thread,
  // possibly before Fetch() returns. A shared transfer takes the most urgent priority of those
  // who asked for it.
  void Fetch(const std::string& path, Want want, std::function<void(FetchOutcome)> done,
             Priority priority = Priority::kPhone);
  // A manifest's file: downloads `path`, checks that it hashes to `expected` and installs it as
  // an object WITHOUT publishing an entry (the manifest's set is published as a whole). A
  // mismatch is kCorruption and leaves nothing behind. Not shared with pull-through readers:
  // nothing unverified may reach a phone. A background transfer. `done` runs exactly once, later.
  void FetchObject(const std::string& path, const Digest& expected,
                   std::function<void(Status)> done);
  // A small document (the manifest) from an absolute URL into memory, at most `max_bytes`.
  // [origin]'s credentials go only to [origin]'s own scheme, host and port.
  void FetchDocument(const std::string& url, size_t max_bytes,
                     std::function<void(Result<std::string>)> done);

  // New versions of gated paths go to `gate` (nullptr: none) instead of being published.
  void SetGate(PublishGate* gate) { gate_ = gate; }

  const FetchStats& stats() const { return stats_; }
  // The max_rate budget every upstream byte shares (uploads too).
  RateLimiter& limiter() { return limiter_; }
  size_t in_flight() const { return transfers_.size(); }
  // Transfers waiting for a slot, over every upstream.
  size_t queued(Priority p) const;

 private:
  struct Transfer;
  struct Waiter {
    Want want;
    std::function<void(FetchOutcome)> done;
  };

  struct Document;
  // An upstream's slots and the transfers waiting for one.
  struct Lane {
    size_t active = 0;  // transfers holding a slot
    std::list<Transfer*> queued[kPriorities];
  };
  Transfer* NewTransfer(const std::string& key, const std::string& path, Priority priority);
  // Puts `t` in its lane's queue (`first`: at the head, for a resume) and schedules Pump().
  void Enqueue(Transfer* t, bool first = false);
  // Starts queued transfers while their lanes have slots for them. Never runs inside a libcurl
  // callback (adding handles there is forbidden): Enqueue() and ReleaseSlot() defer it.
  void Pump();
  void ReleaseSlot(Transfer* t);
  void Raise(Transfer* t, Priority priority);
  void Start(Transfer* t);
  void Configure(Transfer* t);
  static size_t OnHeader(char* data, size_t size, size_t n, void* userp) noexcept;
  static size_t OnWrite(char* data, size_t size, size_t n, void* userp) noexcept;
  bool BeginBody(Transfer* t);
  void Done(Transfer* t, CURLcode code);
  void Finish(Transfer* t);
  void Publish(Transfer* t, std::vector<cache::Entry> entries);
  void Retry(Transfer* t, const Status& why);
  // Answers waiters; kBody waiters are answered only by a body or the end.
  void Answer(Transfer* t, const FetchOutcome& o, bool only_body_waiters);
  void End(Transfer* t, const Status& status);

  uv_loop_t* loop_;
  cache::Cache* cache_;
  Clock* clock_;
  OriginConfig config_;
  Origins origins_;
  RateLimiter limiter_;
  std::vector<std::unique_ptr<CurlLoop>> pools_;  // one per upstream
  std::vector<int64_t> busy_until_;  // per upstream: its Retry-After, in clock seconds
  std::vector<Lane> lanes_;          // per upstream
  std::unique_ptr<Timer> pump_;
  // By key: the path for pull-through, "\x01" + path for FetchObject().
  std::map<std::string, std::unique_ptr<Transfer>, std::less<>> transfers_;
  std::map<Document*, std::unique_ptr<Document>> documents_;
  std::map<std::string, int64_t, std::less<>> missing_;  // path -> remembered until
  FetchStats stats_;
  PublishGate* gate_ = nullptr;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for thread-pool completions
};

}  // namespace siterelay::sync
