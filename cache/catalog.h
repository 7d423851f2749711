// Catalog: catalog.db, the SQLite record of which path names which object.
//
// Tables: objects(sha256, size, stored_at, last_access) and entries(path -> sha256 with the
// origin's validators, freshness, source, pin and forward state) since version 1; devices(mac,
// model, firmware, ip, protocol, first_seen, last_seen) since version 2; generations since 3;
// the log spool (log_cursors, log_batches, log_counters) since 4; the devices' serial, last_boot,
// files_fetched, files_failed, upload_bytes and traffic_history (the console's 24 h charts)
// since 5.
// entries.sha256 references objects with a foreign key, so the database itself refuses an entry
// without an object. The schema is versioned through PRAGMA user_version; Open() applies the
// migrations in kMigrations in order, each in its own transaction, so a newer relay upgrades an
// older data_dir on start and an older relay refuses a newer one.
//
// WAL journal, synchronous=FULL: a committed transaction survives power loss, which is what an
// acknowledged upload needs. Every write method is one transaction: all of it or none of it.
// Thread safety: one Catalog per thread; SQLite serialises writers between processes.
#pragma once

#include <sqlite3.h>

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cache/entry.h"
#include "relay/base/status.h"

namespace siterelay::cache {

// Translates an SQLite result code (the one place that does).
Status SqliteError(std::string_view context, sqlite3* db, int rc);

// A phone the relay has seen (the console's device list), as stored.
struct DeviceRecord {
  std::string mac;
  std::string model;
  std::string firmware;
  std::string ip;
  std::string protocol;
  int64_t first_seen = 0;
  int64_t last_seen = 0;
  std::string serial;  // the User-Agent's "(SN:...)"
  int64_t last_boot = 0;
  uint64_t files_fetched = 0;
  uint64_t files_failed = 0;
  uint64_t upload_bytes = 0;
  std::string part_number;  // "3111-44500-001", from the split image it asked for
};

// One bucket of the console's traffic history: what the relay did from `t` on (Unix seconds, a
// multiple of the bucket length).
struct TrafficRecord {
  int64_t t = 0;
  uint64_t served_bytes = 0;
  uint64_t origin_bytes = 0;
  uint64_t requests[4] = {};  // http, https, tftp, ftp
};

// A manifest's set published as a whole (DESIGN.md "On disk": manifest generations): the
// console's sync history. `id` counts up from 1 over the life of the data_dir.
struct GenerationRecord {
  int64_t id = 0;
  int64_t published_at = 0;
  std::string manifest;  // its URL
  uint64_t files = 0;
  uint64_t bytes = 0;
};

// The log shipper's state (sync/log_shipper.h): how far each phone's spooled log has been cut
// into batches, the batches built and not yet acknowledged upstream, and its counters.
struct LogBatchRecord {
  int64_t seq = 0;  // the batch sequence: Idempotency-Key <relay_id>-<seq>
  uint64_t lines = 0;
  uint64_t raw_bytes = 0;   // NDJSON
  uint64_t wire_bytes = 0;  // the zstd frame on disk and on the wire
  int64_t created = 0;      // Unix seconds
  std::string macs;         // the phones whose lines it holds, comma-separated
  bool dead = false;        // refused upstream with a 4xx: kept for the console, not retried
  int attempts = 0;
  std::string last_error;
};

struct LogSpoolState {
  std::map<std::string, uint64_t> cursors;  // spool file name -> bytes cut into batches or dropped
  std::vector<LogBatchRecord> batches;      // by seq
  std::map<std::string, int64_t> counters;  // next_line_seq, next_batch_seq, dropped_lines, ...
};

class Catalog {
 public:
  static constexpr int kSchemaVersion = 6;

  // Creates the file when missing. With `read_only`, a missing file is NotFound.
  static Result<std::unique_ptr<Catalog>> Open(const std::string& path, bool read_only = false);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  int schema_version() const { return schema_version_; }

  Status LoadAll(std::vector<ObjectInfo>* objects, std::vector<Entry>* entries);

  // Upserts `objects`, then `entries`, in one transaction; with `generation`, records it in the
  // same transaction (its id is assigned and stored back).
  Status Publish(std::span<const ObjectInfo> objects, std::span<const Entry> entries,
                 GenerationRecord* generation = nullptr);
  Status RemoveEntries(std::span<const std::string> paths);
  // The upload at `path` reached the origin: forwarded = 1, if the entry still has `digest` (a
  // newer upload is not marked by its predecessor's success).
  Status MarkForwarded(const std::string& path, const Digest& digest);
  // Removes the objects and every entry that points at them, in one transaction.
  Status RemoveObjects(std::span<const Digest> digests);
  Status SetLastAccess(std::span<const std::pair<Digest, int64_t>> accesses);

  // Devices: insert or merge (first_seen keeps the earliest, last_seen the latest; empty model
  // or firmware does not erase a known one).
  Status UpsertDevices(std::span<const DeviceRecord> devices);
  Status LoadDevices(std::vector<DeviceRecord>* devices);
  Status DeleteDevices(std::span<const std::string> macs);
  // Writes (or rewrites) one traffic bucket and forgets the buckets before `keep_since`.
  Status SaveTraffic(const TrafficRecord& bucket, int64_t keep_since);
  Status LoadTraffic(int64_t since, std::vector<TrafficRecord>* out);
  // The newest `limit` generations, newest first.
  Status LoadGenerations(size_t limit, std::vector<GenerationRecord>* out);

  // The log spool (one transaction each): a batch built from the cursors' old positions to
  // `cursors`, with the counters as they are after it; a batch acknowledged (deleted, `counters`
  // added to); a batch refused for good or failed once more; lines dropped past the spool cap
  // (batches deleted, cursors moved, counters added to).
  Status LoadLogSpool(LogSpoolState* out);
  Status CommitLogBatch(const LogBatchRecord& batch, const std::map<std::string, uint64_t>& cursors,
                        const std::map<std::string, int64_t>& counters);
  Status DeleteLogBatch(int64_t seq, const std::map<std::string, int64_t>& add);
  Status UpdateLogBatch(const LogBatchRecord& batch);
  Status DropLogs(const std::vector<int64_t>& batches, const std::map<std::string, uint64_t>& cursors,
                  const std::map<std::string, int64_t>& add);

 private:
  explicit Catalog(sqlite3* db) : db_(db) {}
  Status Exec(const char* sql);
  Status Migrate();
  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT, rolling back on error.
  template <typename F>
  Status Transaction(F&& body);

  sqlite3* db_;
  int schema_version_ = 0;
};

}  // namespace siterelay::cache
