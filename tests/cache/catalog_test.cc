#include "cache/catalog.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "tests/testing/temp_dir.h"

namespace siterelay::cache {
namespace {

DeviceRecord Device(std::string mac, std::string model, std::string firmware, std::string ip,
                    std::string protocol, int64_t first_seen, int64_t last_seen) {
  DeviceRecord d;
  d.mac = std::move(mac);
  d.model = std::move(model);
  d.firmware = std::move(firmware);
  d.ip = std::move(ip);
  d.protocol = std::move(protocol);
  d.first_seen = first_seen;
  d.last_seen = last_seen;
  return d;
}

using testing::TempDir;

Entry MakeEntry(const std::string& path, const Digest& d, uint64_t size) {
  Entry e;
  e.path = path;
  e.sha256 = d;
  e.size = size;
  e.content_type = "application/xml";
  e.fetched_at = 100;
  e.source = Source::kOrigin;
  return e;
}

TEST(CatalogTest, CreatesSchemaAtCurrentVersion) {
  TempDir dir;
  auto c = Catalog::Open(dir / "catalog.db");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->schema_version(), Catalog::kSchemaVersion);
}

TEST(CatalogTest, RoundTripsEveryField) {
  TempDir dir;
  Digest d = Sha256::Of("x");
  {
    auto c = Catalog::Open(dir / "catalog.db");
    ASSERT_TRUE(c.ok());
    ObjectInfo o{d, 1, 10, 20};
    Entry e = MakeEntry("a/b.cfg", d, 1);
    e.etag = "\"abc\"";
    e.last_modified = "Wed, 21 Oct 2015 07:28:00 GMT";
    e.fresh_until = 160;
    e.source = Source::kUpload;
    e.pinned = true;
    e.forwarded = false;
    ASSERT_TRUE((*c)->Publish({&o, 1}, {&e, 1}).ok());
  }
  auto c = Catalog::Open(dir / "catalog.db");
  ASSERT_TRUE(c.ok());
  std::vector<ObjectInfo> objects;
  std::vector<Entry> entries;
  ASSERT_TRUE((*c)->LoadAll(&objects, &entries).ok());
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0].last_access, 20);
  ASSERT_EQ(entries.size(), 1u);
  const Entry& e = entries[0];
  EXPECT_EQ(e.path, "a/b.cfg");
  EXPECT_EQ(e.sha256, d);
  EXPECT_EQ(e.etag, "\"abc\"");
  EXPECT_EQ(e.last_modified, "Wed, 21 Oct 2015 07:28:00 GMT");
  EXPECT_EQ(e.fresh_until, 160);
  EXPECT_EQ(e.source, Source::kUpload);
  EXPECT_TRUE(e.pinned);
  EXPECT_FALSE(e.forwarded);
}

TEST(CatalogTest, RefusesEntryWithoutObjectAndRollsBackTheBatch) {
  TempDir dir;
  auto c = Catalog::Open(dir / "catalog.db");
  ASSERT_TRUE(c.ok());
  Digest d = Sha256::Of("x");
  ObjectInfo o{d, 1, 0, 0};
  Entry good = MakeEntry("good.cfg", d, 1);
  Entry orphan = MakeEntry("orphan.cfg", Sha256::Of("never stored"), 1);
  Entry batch[] = {good, orphan};
  Status s = (*c)->Publish({&o, 1}, batch);
  EXPECT_FALSE(s.ok()) << "the foreign key refuses an entry without an object";
  std::vector<ObjectInfo> objects;
  std::vector<Entry> entries;
  ASSERT_TRUE((*c)->LoadAll(&objects, &entries).ok());
  EXPECT_TRUE(entries.empty()) << "one transaction: all of it or none";
  EXPECT_TRUE(objects.empty());
}

TEST(CatalogTest, RemoveObjectsDropsTheirEntries) {
  TempDir dir;
  auto c = Catalog::Open(dir / "catalog.db");
  ASSERT_TRUE(c.ok());
  Digest a = Sha256::Of("a"), b = Sha256::Of("b");
  ObjectInfo objs[] = {{a, 1, 0, 0}, {b, 1, 0, 0}};
  Entry ents[] = {MakeEntry("1", a, 1), MakeEntry("2", a, 1), MakeEntry("3", b, 1)};
  ASSERT_TRUE((*c)->Publish(objs, ents).ok());
  ASSERT_TRUE((*c)->RemoveObjects({&a, 1}).ok());
  std::vector<ObjectInfo> objects;
  std::vector<Entry> entries;
  ASSERT_TRUE((*c)->LoadAll(&objects, &entries).ok());
  ASSERT_EQ(objects.size(), 1u);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].path, "3");
}

TEST(CatalogTest, MigratesAVersion1CatalogAndKeepsItsRows) {
  TempDir dir;
  Digest d = Sha256::Of("x");
  {
    auto c = Catalog::Open(dir / "catalog.db");
    ASSERT_TRUE(c.ok());
    ObjectInfo o{d, 1, 0, 0};
    Entry e = MakeEntry("kept.cfg", d, 1);
    ASSERT_TRUE((*c)->Publish({&o, 1}, {&e, 1}).ok());
  }
  {  // What a relay of schema version 1 left behind.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir / "catalog.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "DROP TABLE devices; DROP TABLE generations; DROP TABLE log_cursors; "
                           "DROP TABLE log_batches; DROP TABLE log_counters; DROP TABLE traffic_history; "
                           "PRAGMA user_version=1", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto c = Catalog::Open(dir / "catalog.db");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->schema_version(), Catalog::kSchemaVersion);
  DeviceRecord dev = Device("0004f282e824", "VVX_500", "5.9.7", "10.1.2.3", "http", 10, 20);
  ASSERT_TRUE((*c)->UpsertDevices({&dev, 1}).ok());
  DeviceRecord later = Device("0004f282e824", "", "", "10.1.2.9", "tftp", 30, 40);
  later.serial = "0004f282e824";
  later.last_boot = 35;
  later.files_fetched = 7;
  later.files_failed = 1;
  later.upload_bytes = 4096;
  ASSERT_TRUE((*c)->UpsertDevices({&later, 1}).ok());
  std::vector<DeviceRecord> devices;
  ASSERT_TRUE((*c)->LoadDevices(&devices).ok());
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0].model, "VVX_500") << "an empty model does not erase a known one";
  EXPECT_EQ(devices[0].ip, "10.1.2.9");
  EXPECT_EQ(devices[0].first_seen, 10);
  EXPECT_EQ(devices[0].last_seen, 40);
  EXPECT_EQ(devices[0].serial, "0004f282e824");
  EXPECT_EQ(devices[0].last_boot, 35);
  EXPECT_EQ(devices[0].files_fetched, 7u);
  EXPECT_EQ(devices[0].files_failed, 1u);
  EXPECT_EQ(devices[0].upload_bytes, 4096u);
  std::vector<ObjectInfo> objects;
  std::vector<Entry> entries;
  ASSERT_TRUE((*c)->LoadAll(&objects, &entries).ok());
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].path, "kept.cfg");
}

TEST(CatalogTest, RefusesANewerSchema) {
  TempDir dir;
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir / "catalog.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto c = Catalog::Open(dir / "catalog.db");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("schema version 99"), std::string::npos);
}

TEST(CatalogTest, ReadOnlyOpenOfMissingCatalogIsNotFound) {
  TempDir dir;
  auto c = Catalog::Open(dir / "catalog.db", /*read_only=*/true);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(c.status().Is(StatusCode::kNotFound)) << c.status().ToString();
}

TEST(CatalogTest, NotADatabaseIsCorruption) {
  TempDir dir;
  testing::WriteFile(dir / "catalog.db", std::string(4096, 'z'));
  auto c = Catalog::Open(dir / "catalog.db");
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(c.status().Is(StatusCode::kCorruption)) << c.status().ToString();
}


TEST(CatalogGenerationsTest, RecordedWithTheirSetAndListedNewestFirst) {
  siterelay::testing::TempDir dir;
  auto c = Catalog::Open(dir / "catalog.db");
  ASSERT_TRUE(c.ok());
  GenerationRecord g1{0, 100, "https://prov.example.com/manifest.json", 2, 3000};
  ASSERT_TRUE((*c)->Publish({}, {}, &g1).ok());
  GenerationRecord g2{0, 200, "https://prov.example.com/manifest.json", 3, 4000};
  ASSERT_TRUE((*c)->Publish({}, {}, &g2).ok());
  EXPECT_EQ(g1.id, 1);
  EXPECT_EQ(g2.id, 2);
  std::vector<GenerationRecord> got;
  ASSERT_TRUE((*c)->LoadGenerations(10, &got).ok());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].id, 2);
  EXPECT_EQ(got[0].published_at, 200);
  EXPECT_EQ(got[0].files, 3u);
  EXPECT_EQ(got[1].bytes, 3000u);
  ASSERT_TRUE((*c)->LoadGenerations(1, &got).ok());
  EXPECT_EQ(got.size(), 1u);
}

TEST(CatalogTest, DeletedDevicesAreGone) {
  TempDir dir;
  auto c = Catalog::Open(dir / "catalog.db");
  ASSERT_TRUE(c.ok());
  DeviceRecord a = Device("0004f2000001", "VVX_500", "5.9.7", "10.1.2.3", "http", 10, 20);
  DeviceRecord b = Device("0004f2000002", "VVX_410", "5.9.7", "10.1.2.4", "tftp", 10, 20);
  ASSERT_TRUE((*c)->UpsertDevices(std::vector<DeviceRecord>{a, b}).ok());
  std::vector<std::string> gone{"0004f2000001"};
  ASSERT_TRUE((*c)->DeleteDevices(gone).ok());
  std::vector<DeviceRecord> devices;
  ASSERT_TRUE((*c)->LoadDevices(&devices).ok());
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0].mac, "0004f2000002");
}

TEST(CatalogTest, TrafficBucketsAreRewrittenAndTrimmed) {
  TempDir dir;
  auto c = Catalog::Open(dir / "catalog.db");
  ASSERT_TRUE(c.ok());
  TrafficRecord first{300, 10, 1, {1, 2, 3, 4}};
  ASSERT_TRUE((*c)->SaveTraffic(first, 0).ok());
  TrafficRecord again{300, 20, 2, {2, 2, 3, 4}};  // the same bucket, grown
  ASSERT_TRUE((*c)->SaveTraffic(again, 0).ok());
  TrafficRecord next{600, 5, 0, {0, 0, 1, 0}};
  ASSERT_TRUE((*c)->SaveTraffic(next, 0).ok());
  std::vector<TrafficRecord> rows;
  ASSERT_TRUE((*c)->LoadTraffic(0, &rows).ok());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].t, 300);
  EXPECT_EQ(rows[0].served_bytes, 20u);
  EXPECT_EQ(rows[0].requests[0], 2u);
  EXPECT_EQ(rows[1].requests[2], 1u);
  ASSERT_TRUE((*c)->LoadTraffic(600, &rows).ok());
  EXPECT_EQ(rows.size(), 1u);
  TrafficRecord late{900, 1, 1, {0, 0, 0, 0}};
  ASSERT_TRUE((*c)->SaveTraffic(late, 600).ok());  // keeps 600 on, drops 300
  ASSERT_TRUE((*c)->LoadTraffic(0, &rows).ok());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].t, 600);
}

}  // namespace
}  // namespace siterelay::cache
