#include "cache/catalog.h"

#include <array>

namespace siterelay::cache {
namespace {

// Append-only: a released relay's data_dir has run migrations 1..N; add N+1, never edit.
constexpr std::array<const char*, 6> kMigrations = {
    R"sql(
CREATE TABLE objects (
  sha256      BLOB PRIMARY KEY CHECK (length(sha256) = 32),
  size        INTEGER NOT NULL CHECK (size >= 0),
  stored_at   INTEGER NOT NULL,
  last_access INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE entries (
  path          TEXT PRIMARY KEY,
  sha256        BLOB NOT NULL REFERENCES objects(sha256),
  size          INTEGER NOT NULL,
  content_type  TEXT NOT NULL,
  etag          TEXT NOT NULL DEFAULT '',
  last_modified TEXT NOT NULL DEFAULT '',
  fetched_at    INTEGER NOT NULL,
  fresh_until   INTEGER NOT NULL,
  source        INTEGER NOT NULL,
  pinned        INTEGER NOT NULL DEFAULT 0,
  forwarded     INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX entries_by_object ON entries(sha256);
)sql",
    R"sql(
CREATE TABLE devices (
  mac        TEXT PRIMARY KEY,
  model      TEXT NOT NULL DEFAULT '',
  firmware   TEXT NOT NULL DEFAULT '',
  ip         TEXT NOT NULL DEFAULT '',
  protocol   TEXT NOT NULL DEFAULT '',
  first_seen INTEGER NOT NULL,
  last_seen  INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
    R"sql(
CREATE TABLE generations (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  published_at INTEGER NOT NULL,
  manifest     TEXT NOT NULL,
  files        INTEGER NOT NULL,
  bytes        INTEGER NOT NULL
);
)sql",
    R"sql(
CREATE TABLE log_cursors (
  file    TEXT PRIMARY KEY,
  shipped INTEGER NOT NULL CHECK (shipped >= 0)
) WITHOUT ROWID;
CREATE TABLE log_batches (
  seq        INTEGER PRIMARY KEY,
  lines      INTEGER NOT NULL,
  raw_bytes  INTEGER NOT NULL,
  wire_bytes INTEGER NOT NULL,
  created    INTEGER NOT NULL,
  macs       TEXT NOT NULL DEFAULT '',
  dead       INTEGER NOT NULL DEFAULT 0,
  attempts   INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE log_counters (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
    R"sql(
ALTER TABLE devices ADD COLUMN serial TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN last_boot INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN files_fetched INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN files_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN upload_bytes INTEGER NOT NULL DEFAULT 0;
CREATE TABLE traffic_history (
  t            INTEGER PRIMARY KEY,
  served_bytes INTEGER NOT NULL,
  origin_bytes INTEGER NOT NULL,
  http         INTEGER NOT NULL,
  https        INTEGER NOT NULL,
  tftp         INTEGER NOT NULL,
  ftp          INTEGER NOT NULL
);
)sql",
    R"sql(
ALTER TABLE devices ADD COLUMN part_number TEXT NOT NULL DEFAULT '';
)sql",
};

// Finalises a statement when it goes out of scope.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

Status Prepare(sqlite3* db, const char* sql, Stmt* out) {
  int rc = sqlite3_prepare_v2(db, sql, -1, &out->s, nullptr);
  if (rc != SQLITE_OK) return SqliteError("prepare", db, rc);
  return Status::Ok();
}

void BindDigest(sqlite3_stmt* s, int i, const Digest& d) {
  sqlite3_bind_blob(s, i, d.bytes.data(), static_cast<int>(d.bytes.size()), SQLITE_TRANSIENT);
}

void BindText(sqlite3_stmt* s, int i, const std::string& t) {
  sqlite3_bind_text(s, i, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
}

bool ColumnDigest(sqlite3_stmt* s, int i, Digest* d) {
  const void* p = sqlite3_column_blob(s, i);
  if (p == nullptr || sqlite3_column_bytes(s, i) != static_cast<int>(d->bytes.size())) return false;
  __builtin_memcpy(d->bytes.data(), p, d->bytes.size());
  return true;
}

std::string ColumnText(sqlite3_stmt* s, int i) {
  const unsigned char* p = sqlite3_column_text(s, i);
  return p == nullptr ? std::string()
                      : std::string(reinterpret_cast<const char*>(p),
                                    static_cast<size_t>(sqlite3_column_bytes(s, i)));
}

Status StepDone(sqlite3* db, sqlite3_stmt* s, const char* what) {
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) return SqliteError(what, db, rc);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return Status::Ok();
}

}  // namespace

Status SqliteError(std::string_view context, sqlite3* db, int rc) {
  std::string m(context);
  m += ": ";
  m += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Status::Corruption(std::move(m));
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Status::Unavailable(std::move(m));
    case SQLITE_FULL: return Status::ResourceExhausted(std::move(m));
    case SQLITE_CANTOPEN: return Status::NotFound(std::move(m));
    case SQLITE_PERM:
    case SQLITE_READONLY: return Status::PermissionDenied(std::move(m));
    case SQLITE_CONSTRAINT: return Status::InvalidArgument(std::move(m));
    case SQLITE_NOMEM: return Status::ResourceExhausted(std::move(m));
    default: return Status::IoError(std::move(m));
  }
}

Result<std::unique_ptr<Catalog>> Catalog::Open(const std::string& path, bool read_only) {
  sqlite3* db = nullptr;
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = SqliteError("open " + path, db, rc);
    sqlite3_close(db);
    return s;
  }
  std::unique_ptr<Catalog> c(new Catalog(db));
  sqlite3_busy_timeout(db, 5000);
  sqlite3_extended_result_codes(db, 1);
  if (!read_only) {
    SR_RETURN_IF_ERROR(c->Exec("PRAGMA journal_mode=WAL").Annotate(path));
  }
  SR_RETURN_IF_ERROR(c->Exec("PRAGMA synchronous=FULL").Annotate(path));
  SR_RETURN_IF_ERROR(c->Exec("PRAGMA foreign_keys=ON").Annotate(path));
  {
    Stmt s;
    SR_RETURN_IF_ERROR(Prepare(db, "PRAGMA user_version", &s).Annotate(path));
    if (sqlite3_step(s.s) == SQLITE_ROW) c->schema_version_ = sqlite3_column_int(s.s, 0);
  }
  if (c->schema_version_ > kSchemaVersion) {
    return Status::InvalidArgument(path + " has schema version " +
                                   std::to_string(c->schema_version_) + "; this siterelay knows " +
                                   std::to_string(kSchemaVersion) + ": upgrade siterelay");
  }
  if (c->schema_version_ < kSchemaVersion) {
    if (read_only) return Status::NotFound(path + " is not initialised yet");
    SR_RETURN_IF_ERROR(c->Migrate().Annotate(path));
  }
  return c;
}

Catalog::~Catalog() { sqlite3_close(db_); }

Status Catalog::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return SqliteError("exec", db_, rc);
  return Status::Ok();
}

template <typename F>
Status Catalog::Transaction(F&& body) {
  SR_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Status s = body();
  if (s.ok()) s = Exec("COMMIT");
  if (!s.ok()) (void)Exec("ROLLBACK");
  return s;
}

Status Catalog::Migrate() {
  for (int v = schema_version_; v < kSchemaVersion; ++v) {
    Status s = Transaction([&] {
      SR_RETURN_IF_ERROR(Exec(kMigrations[static_cast<size_t>(v)]));
      std::string bump = "PRAGMA user_version=" + std::to_string(v + 1);
      return Exec(bump.c_str());
    });
    if (!s.ok()) return s.Annotate("migration " + std::to_string(v + 1));
    schema_version_ = v + 1;
  }
  return Status::Ok();
}

Status Catalog::LoadAll(std::vector<ObjectInfo>* objects, std::vector<Entry>* entries) {
  objects->clear();
  entries->clear();
  {
    Stmt s;
    SR_RETURN_IF_ERROR(
        Prepare(db_, "SELECT sha256, size, stored_at, last_access FROM objects", &s));
    int rc;
    while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
      ObjectInfo o;
      if (!ColumnDigest(s.s, 0, &o.sha256)) return Status::Corruption("objects row with bad sha256");
      o.size = static_cast<uint64_t>(sqlite3_column_int64(s.s, 1));
      o.stored_at = sqlite3_column_int64(s.s, 2);
      o.last_access = sqlite3_column_int64(s.s, 3);
      objects->push_back(o);
    }
    if (rc != SQLITE_DONE) return SqliteError("load objects", db_, rc);
  }
  Stmt s;
  SR_RETURN_IF_ERROR(Prepare(db_,
                             "SELECT path, sha256, size, content_type, etag, last_modified, "
                             "fetched_at, fresh_until, source, pinned, forwarded FROM entries",
                             &s));
  int rc;
  while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
    Entry e;
    e.path = ColumnText(s.s, 0);
    if (!ColumnDigest(s.s, 1, &e.sha256)) return Status::Corruption("entries row with bad sha256");
    e.size = static_cast<uint64_t>(sqlite3_column_int64(s.s, 2));
    e.content_type = ColumnText(s.s, 3);
    e.etag = ColumnText(s.s, 4);
    e.last_modified = ColumnText(s.s, 5);
    e.fetched_at = sqlite3_column_int64(s.s, 6);
    e.fresh_until = sqlite3_column_int64(s.s, 7);
    int source = sqlite3_column_int(s.s, 8);
    if (source < 0 || source > static_cast<int>(Source::kUpload)) {
      return Status::Corruption("entries row for " + e.path + " with unknown source");
    }
    e.source = static_cast<Source>(source);
    e.pinned = sqlite3_column_int(s.s, 9) != 0;
    e.forwarded = sqlite3_column_int(s.s, 10) != 0;
    entries->push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return SqliteError("load entries", db_, rc);
  return Status::Ok();
}

Status Catalog::Publish(std::span<const ObjectInfo> objects, std::span<const Entry> entries,
                        GenerationRecord* generation) {
  return Transaction([&]() -> Status {
    Stmt obj;
    SR_RETURN_IF_ERROR(Prepare(db_,
                               "INSERT INTO objects(sha256, size, stored_at, last_access) "
                               "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(sha256) DO UPDATE SET "
                               "last_access = max(last_access, excluded.last_access)",
                               &obj));
    for (const ObjectInfo& o : objects) {
      BindDigest(obj.s, 1, o.sha256);
      sqlite3_bind_int64(obj.s, 2, static_cast<sqlite3_int64>(o.size));
      sqlite3_bind_int64(obj.s, 3, o.stored_at);
      sqlite3_bind_int64(obj.s, 4, o.last_access);
      SR_RETURN_IF_ERROR(StepDone(db_, obj.s, "insert object"));
    }
    Stmt ent;
    SR_RETURN_IF_ERROR(Prepare(
        db_,
        "INSERT OR REPLACE INTO entries(path, sha256, size, content_type, etag, last_modified, "
        "fetched_at, fresh_until, source, pinned, forwarded) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        &ent));
    for (const Entry& e : entries) {
      BindText(ent.s, 1, e.path);
      BindDigest(ent.s, 2, e.sha256);
      sqlite3_bind_int64(ent.s, 3, static_cast<sqlite3_int64>(e.size));
      BindText(ent.s, 4, e.content_type);
      BindText(ent.s, 5, e.etag);
      BindText(ent.s, 6, e.last_modified);
      sqlite3_bind_int64(ent.s, 7, e.fetched_at);
      sqlite3_bind_int64(ent.s, 8, e.fresh_until);
      sqlite3_bind_int(ent.s, 9, static_cast<int>(e.source));
      sqlite3_bind_int(ent.s, 10, e.pinned ? 1 : 0);
      sqlite3_bind_int(ent.s, 11, e.forwarded ? 1 : 0);
      SR_RETURN_IF_ERROR(StepDone(db_, ent.s, "insert entry").Annotate(e.path));
    }
    if (generation != nullptr) {
      Stmt gen;
      SR_RETURN_IF_ERROR(Prepare(db_,
                                 "INSERT INTO generations(published_at, manifest, files, bytes) "
                                 "VALUES(?1, ?2, ?3, ?4)",
                                 &gen));
      sqlite3_bind_int64(gen.s, 1, generation->published_at);
      BindText(gen.s, 2, generation->manifest);
      sqlite3_bind_int64(gen.s, 3, static_cast<sqlite3_int64>(generation->files));
      sqlite3_bind_int64(gen.s, 4, static_cast<sqlite3_int64>(generation->bytes));
      SR_RETURN_IF_ERROR(StepDone(db_, gen.s, "insert generation"));
      generation->id = sqlite3_last_insert_rowid(db_);
    }
    return Status::Ok();
  });
}

Status Catalog::RemoveEntries(std::span<const std::string> paths) {
  return Transaction([&]() -> Status {
    Stmt s;
    SR_RETURN_IF_ERROR(Prepare(db_, "DELETE FROM entries WHERE path = ?1", &s));
    for (const std::string& p : paths) {
      BindText(s.s, 1, p);
      SR_RETURN_IF_ERROR(StepDone(db_, s.s, "delete entry"));
    }
    return Status::Ok();
  });
}

Status Catalog::MarkForwarded(const std::string& path, const Digest& digest) {
  Stmt s;
  SR_RETURN_IF_ERROR(Prepare(
      db_, "UPDATE entries SET forwarded = 1 WHERE path = ?1 AND sha256 = ?2", &s));
  BindText(s.s, 1, path);
  BindDigest(s.s, 2, digest);
  return StepDone(db_, s.s, "mark forwarded");
}

Status Catalog::RemoveObjects(std::span<const Digest> digests) {
  return Transaction([&]() -> Status {
    Stmt ent, obj;
    SR_RETURN_IF_ERROR(Prepare(db_, "DELETE FROM entries WHERE sha256 = ?1", &ent));
    SR_RETURN_IF_ERROR(Prepare(db_, "DELETE FROM objects WHERE sha256 = ?1", &obj));
    for (const Digest& d : digests) {
      BindDigest(ent.s, 1, d);
      SR_RETURN_IF_ERROR(StepDone(db_, ent.s, "delete entries of object"));
      BindDigest(obj.s, 1, d);
      SR_RETURN_IF_ERROR(StepDone(db_, obj.s, "delete object"));
    }
    return Status::Ok();
  });
}

Status Catalog::SetLastAccess(std::span<const std::pair<Digest, int64_t>> accesses) {
  return Transaction([&]() -> Status {
    Stmt s;
    SR_RETURN_IF_ERROR(
        Prepare(db_, "UPDATE objects SET last_access = max(last_access, ?2) WHERE sha256 = ?1", &s));
    for (const auto& [d, t] : accesses) {
      BindDigest(s.s, 1, d);
      sqlite3_bind_int64(s.s, 2, t);
      SR_RETURN_IF_ERROR(StepDone(db_, s.s, "update last_access"));
    }
    return Status::Ok();
  });
}

Status Catalog::UpsertDevices(std::span<const DeviceRecord> devices) {
  return Transaction([&]() -> Status {
    Stmt s;
    SR_RETURN_IF_ERROR(Prepare(
        db_,
        "INSERT INTO devices(mac, model, firmware, ip, protocol, first_seen, last_seen, serial, "
        "last_boot, files_fetched, files_failed, upload_bytes, part_number) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) "
        "ON CONFLICT(mac) DO UPDATE SET "
        "model = CASE WHEN excluded.model != '' THEN excluded.model ELSE model END, "
        "part_number = CASE WHEN excluded.part_number != '' THEN excluded.part_number "
        "ELSE part_number END, "
        "firmware = CASE WHEN excluded.firmware != '' THEN excluded.firmware ELSE firmware END, "
        "serial = CASE WHEN excluded.serial != '' THEN excluded.serial ELSE serial END, "
        "ip = excluded.ip, protocol = excluded.protocol, "
        "first_seen = min(first_seen, excluded.first_seen), "
        "last_seen = max(last_seen, excluded.last_seen), "
        "last_boot = max(last_boot, excluded.last_boot), "
        "files_fetched = excluded.files_fetched, files_failed = excluded.files_failed, "
        "upload_bytes = excluded.upload_bytes",
        &s));
    for (const DeviceRecord& d : devices) {
      BindText(s.s, 1, d.mac);
      BindText(s.s, 2, d.model);
      BindText(s.s, 3, d.firmware);
      BindText(s.s, 4, d.ip);
      BindText(s.s, 5, d.protocol);
      sqlite3_bind_int64(s.s, 6, d.first_seen);
      sqlite3_bind_int64(s.s, 7, d.last_seen);
      BindText(s.s, 8, d.serial);
      sqlite3_bind_int64(s.s, 9, d.last_boot);
      sqlite3_bind_int64(s.s, 10, static_cast<int64_t>(d.files_fetched));
      sqlite3_bind_int64(s.s, 11, static_cast<int64_t>(d.files_failed));
      sqlite3_bind_int64(s.s, 12, static_cast<int64_t>(d.upload_bytes));
      BindText(s.s, 13, d.part_number);
      SR_RETURN_IF_ERROR(StepDone(db_, s.s, "upsert device"));
    }
    return Status::Ok();
  });
}

Status Catalog::DeleteDevices(std::span<const std::string> macs) {
  return Transaction([&]() -> Status {
    Stmt s;
    SR_RETURN_IF_ERROR(Prepare(db_, "DELETE FROM devices WHERE mac = ?1", &s));
    for (const std::string& mac : macs) {
      BindText(s.s, 1, mac);
      SR_RETURN_IF_ERROR(StepDone(db_, s.s, "delete device"));
    }
    return Status::Ok();
  });
}

Status Catalog::LoadDevices(std::vector<DeviceRecord>* devices) {
  devices->clear();
  Stmt s;
  SR_RETURN_IF_ERROR(Prepare(db_,
                             "SELECT mac, model, firmware, ip, protocol, first_seen, last_seen, "
                             "serial, last_boot, files_fetched, files_failed, upload_bytes, "
                             "part_number FROM devices ORDER BY mac",
                             &s));
  int rc;
  while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
    DeviceRecord d;
    d.mac = ColumnText(s.s, 0);
    d.model = ColumnText(s.s, 1);
    d.firmware = ColumnText(s.s, 2);
    d.ip = ColumnText(s.s, 3);
    d.protocol = ColumnText(s.s, 4);
    d.first_seen = sqlite3_column_int64(s.s, 5);
    d.last_seen = sqlite3_column_int64(s.s, 6);
    d.serial = ColumnText(s.s, 7);
    d.last_boot = sqlite3_column_int64(s.s, 8);
    d.files_fetched = static_cast<uint64_t>(sqlite3_column_int64(s.s, 9));
    d.files_failed = static_cast<uint64_t>(sqlite3_column_int64(s.s, 10));
    d.upload_bytes = static_cast<uint64_t>(sqlite3_column_int64(s.s, 11));
    d.part_number = ColumnText(s.s, 12);
    devices->push_back(std::move(d));
  }
  if (rc != SQLITE_DONE) return SqliteError("load devices", db_, rc);
  return Status::Ok();
}

Status Catalog::SaveTraffic(const TrafficRecord& bucket, int64_t keep_since) {
  return Transaction([&]() -> Status {
    Stmt s;
    SR_RETURN_IF_ERROR(Prepare(
        db_,
        "INSERT OR REPLACE INTO traffic_history(t, served_bytes, origin_bytes, http, https, tftp, "
        "ftp) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        &s));
    sqlite3_bind_int64(s.s, 1, bucket.t);
    sqlite3_bind_int64(s.s, 2, static_cast<int64_t>(bucket.served_bytes));
    sqlite3_bind_int64(s.s, 3, static_cast<int64_t>(bucket.origin_bytes));
    for (int i = 0; i < 4; ++i) {
      sqlite3_bind_int64(s.s, 4 + i, static_cast<int64_t>(bucket.requests[i]));
    }
    SR_RETURN_IF_ERROR(StepDone(db_, s.s, "save traffic"));
    Stmt d;
    SR_RETURN_IF_ERROR(Prepare(db_, "DELETE FROM traffic_history WHERE t < ?1", &d));
    sqlite3_bind_int64(d.s, 1, keep_since);
    return StepDone(db_, d.s, "trim traffic");
  });
}

Status Catalog::LoadTraffic(int64_t since, std::vector<TrafficRecord>* out) {
  out->clear();
  Stmt s;
  SR_RETURN_IF_ERROR(Prepare(db_,
                             "SELECT t, served_bytes, origin_bytes, http, https, tftp, ftp "
                             "FROM traffic_history WHERE t >= ?1 ORDER BY t",
                             &s));
  sqlite3_bind_int64(s.s, 1, since);
  int rc;
  while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
    TrafficRecord r;
    r.t = sqlite3_column_int64(s.s, 0);
    r.served_bytes = static_cast<uint64_t>(sqlite3_column_int64(s.s, 1));
    r.origin_bytes = static_cast<uint64_t>(sqlite3_column_int64(s.s, 2));
    for (int i = 0; i < 4; ++i) r.requests[i] = static_cast<uint64_t>(sqlite3_column_int64(s.s, 3 + i));
    out->push_back(r);
  }
  if (rc != SQLITE_DONE) return SqliteError("load traffic", db_, rc);
  return Status::Ok();
}

Status Catalog::LoadGenerations(size_t limit, std::vector<GenerationRecord>* out) {
  out->clear();
  Stmt s;
  SR_RETURN_IF_ERROR(Prepare(db_,
                             "SELECT id, published_at, manifest, files, bytes FROM generations "
                             "ORDER BY id DESC LIMIT ?1",
                             &s));
  sqlite3_bind_int64(s.s, 1, static_cast<sqlite3_int64>(limit));
  int rc;
  while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
    GenerationRecord g;
    g.id = sqlite3_column_int64(s.s, 0);
    g.published_at = sqlite3_column_int64(s.s, 1);
    g.manifest = ColumnText(s.s, 2);
    g.files = static_cast<uint64_t>(sqlite3_column_int64(s.s, 3));
    g.bytes = static_cast<uint64_t>(sqlite3_column_int64(s.s, 4));
    out->push_back(std::move(g));
  }
  if (rc != SQLITE_DONE) return SqliteError("load generations", db_, rc);
  return Status::Ok();
}

namespace {

Status SetCursors(sqlite3* db, const std::map<std::string, uint64_t>& cursors) {
  Stmt s;
  SR_RETURN_IF_ERROR(Prepare(
      db, "INSERT INTO log_cursors (file, shipped) VALUES (?1, ?2) "
          "ON CONFLICT(file) DO UPDATE SET shipped = excluded.shipped", &s));
  for (const auto& [file, shipped] : cursors) {
    BindText(s.s, 1, file);
    sqlite3_bind_int64(s.s, 2, static_cast<sqlite3_int64>(shipped));
    SR_RETURN_IF_ERROR(StepDone(db, s.s, "set log cursor"));
  }
  return Status::Ok();
}

// `add`: added to the counters (`set`: replaces them).
Status ChangeCounters(sqlite3* db, const std::map<std::string, int64_t>& values, bool set) {
  Stmt s;
  SR_RETURN_IF_ERROR(Prepare(
      db, set ? "INSERT INTO log_counters (name, value) VALUES (?1, ?2) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value"
              : "INSERT INTO log_counters (name, value) VALUES (?1, ?2) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
      &s));
  for (const auto& [name, value] : values) {
    BindText(s.s, 1, name);
    sqlite3_bind_int64(s.s, 2, value);
    SR_RETURN_IF_ERROR(StepDone(db, s.s, "log counter"));
  }
  return Status::Ok();
}

}  // namespace

Status Catalog::LoadLogSpool(LogSpoolState* out) {
  *out = LogSpoolState();
  {
    Stmt s;
    SR_RETURN_IF_ERROR(Prepare(db_, "SELECT file, shipped FROM log_cursors", &s));
    int rc;
    while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
      out->cursors[ColumnText(s.s, 0)] = static_cast<uint64_t>(sqlite3_column_int64(s.s, 1));
    }
    if (rc != SQLITE_DONE) return SqliteError("load log cursors", db_, rc);
  }
  {
    Stmt s;
    SR_RETURN_IF_ERROR(Prepare(db_,
                               "SELECT seq, lines, raw_bytes, wire_bytes, created, macs, dead, "
                               "attempts, last_error FROM log_batches ORDER BY seq",
                               &s));
    int rc;
    while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
      LogBatchRecord b;
      b.seq = sqlite3_column_int64(s.s, 0);
      b.lines = static_cast<uint64_t>(sqlite3_column_int64(s.s, 1));
      b.raw_bytes = static_cast<uint64_t>(sqlite3_column_int64(s.s, 2));
      b.wire_bytes = static_cast<uint64_t>(sqlite3_column_int64(s.s, 3));
      b.created = sqlite3_column_int64(s.s, 4);
      b.macs = ColumnText(s.s, 5);
      b.dead = sqlite3_column_int64(s.s, 6) != 0;
      b.attempts = static_cast<int>(sqlite3_column_int64(s.s, 7));
      b.last_error = ColumnText(s.s, 8);
      out->batches.push_back(std::move(b));
    }
    if (rc != SQLITE_DONE) return SqliteError("load log batches", db_, rc);
  }
  Stmt s;
  SR_RETURN_IF_ERROR(Prepare(db_, "SELECT name, value FROM log_counters", &s));
  int rc;
  while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
    out->counters[ColumnText(s.s, 0)] = sqlite3_column_int64(s.s, 1);
  }
  if (rc != SQLITE_DONE) return SqliteError("load log counters", db_, rc);
  return Status::Ok();
}

Status Catalog::CommitLogBatch(const LogBatchRecord& b,
                               const std::map<std::string, uint64_t>& cursors,
                               const std::map<std::string, int64_t>& counters) {
  return Transaction([&]() -> Status {
    Stmt s;
    SR_RETURN_IF_ERROR(Prepare(db_,
                               "INSERT INTO log_batches (seq, lines, raw_bytes, wire_bytes, "
                               "created, macs) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                               &s));
    sqlite3_bind_int64(s.s, 1, b.seq);
    sqlite3_bind_int64(s.s, 2, static_cast<sqlite3_int64>(b.lines));
    sqlite3_bind_int64(s.s, 3, static_cast<sqlite3_int64>(b.raw_bytes));
    sqlite3_bind_int64(s.s, 4, static_cast<sqlite3_int64>(b.wire_bytes));
    sqlite3_bind_int64(s.s, 5, b.created);
    BindText(s.s, 6, b.macs);
    SR_RETURN_IF_ERROR(StepDone(db_, s.s, "insert log batch"));
    SR_RETURN_IF_ERROR(SetCursors(db_, cursors));
    return ChangeCounters(db_, counters, /*set=*/true);
  });
}

Status Catalog::DeleteLogBatch(int64_t seq, const std::map<std::string, int64_t>& add) {
  return Transaction([&]() -> Status {
    Stmt s;
    SR_RETURN_IF_ERROR(Prepare(db_, "DELETE FROM log_batches WHERE seq = ?1", &s));
    sqlite3_bind_int64(s.s, 1, seq);
    SR_RETURN_IF_ERROR(StepDone(db_, s.s, "delete log batch"));
    return ChangeCounters(db_, add, /*set=*/false);
  });
}

Status Catalog::UpdateLogBatch(const LogBatchRecord& b) {
  Stmt s;
  SR_RETURN_IF_ERROR(Prepare(
      db_, "UPDATE log_batches SET dead = ?2, attempts = ?3, last_error = ?4 WHERE seq = ?1", &s));
  sqlite3_bind_int64(s.s, 1, b.seq);
  sqlite3_bind_int(s.s, 2, b.dead ? 1 : 0);
  sqlite3_bind_int(s.s, 3, b.attempts);
  BindText(s.s, 4, b.last_error);
  return StepDone(db_, s.s, "update log batch");
}

Status Catalog::DropLogs(const std::vector<int64_t>& batches,
                         const std::map<std::string, uint64_t>& cursors,
                         const std::map<std::string, int64_t>& add) {
  return Transaction([&]() -> Status {
    Stmt s;
    SR_RETURN_IF_ERROR(Prepare(db_, "DELETE FROM log_batches WHERE seq = ?1", &s));
    for (int64_t seq : batches) {
      sqlite3_bind_int64(s.s, 1, seq);
      SR_RETURN_IF_ERROR(StepDone(db_, s.s, "drop log batch"));
    }
    SR_RETURN_IF_ERROR(SetCursors(db_, cursors));
    return ChangeCounters(db_, add, /*set=*/false);
  });
}

}  // namespace siterelay::cache
