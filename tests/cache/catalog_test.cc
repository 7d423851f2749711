#include "cache/catalog.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "tests/testing/temp_dir.h"

namespace siterelay::cache {
namespace {

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
                           "DROP TABLE log_batches; DROP TABLE log_counters; PRAGMA user_version=1", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto c = Catalog::Open(dir / "catalog.db");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->schema_version(), Catalog::kSchemaVersion);
  DeviceRecord dev{"0004f282e824", "VVX_500", "5.9.7", "10.1.2.3", "http", 10, 20};
  ASSERT_TRUE((*c)->UpsertDevices({&dev, 1}).ok());
  DeviceRecord later{"0004f282e824", "", "", "10.1.2.9", "tftp", 30, 40};
  ASSERT_TRUE((*c)->UpsertDevices({&later, 1}).ok());
  std::vector<DeviceRecord> devices;
  ASSERT_TRUE((*c)->LoadDevices(&devices).ok());
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0].model, "VVX_500") << "an empty model does not erase a known one";
  EXPECT_EQ(devices[0].ip, "10.1.2.9");
  EXPECT_EQ(devices[0].first_seen, 10);
  EXPECT_EQ(devices[0].last_seen, 40);
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

}  // namespace
}  // namespace siterelay::cache

namespace siterelay::cache {
namespace {

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

}  // namespace
}  // namespace siterelay::cache
