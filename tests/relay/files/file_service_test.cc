#include "relay/files/file_service.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>

#include "relay/base/uv.h"
#include "tests/testing/cache.h"
#include "tests/testing/fake_origin.h"
#include "tests/testing/loop.h"
#include "tests/testing/temp_dir.h"

namespace siterelay::files {
namespace {

Peer V4(const char* ip, Protocol p = Protocol::kHttp) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  inet_pton(AF_INET, ip, &sa.sin_addr);
  return Peer::FromSockaddr(p, reinterpret_cast<sockaddr*>(&sa));
}

class FileServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { cache_ = testing::OpenTestCache(dir_.path(), &clock_); }

  void Put(const std::string& path, std::string_view content) {
    cache::Entry e;
    e.path = path;
    e.content_type = "application/xml";
    e.last_modified = "Sun, 06 Nov 1994 08:49:37 GMT";
    testing::PutFile(cache_.get(), e, content);
  }

  testing::TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<cache::Cache> cache_;
};

TEST_F(FileServiceTest, AnonymousWhenNoAccountsAreConfigured) {
  FileService fs(Config::Defaults(), cache_.get(), &clock_);
  EXPECT_FALSE(fs.RequiresCredentials());
  ASSERT_NE(fs.Anonymous(), nullptr);
  EXPECT_EQ(fs.Authenticate("anyone", "anything"), fs.Anonymous());
}

TEST_F(FileServiceTest, AuthenticatesAccountsAndDomainUsers) {
  Config c = Config::Defaults();
  c.accounts = {{"PlcmSpIp", "PlcmSpIp", "/"}, {"ftpuser", "s3cret", "/tenant"}};
  FileService fs(c, cache_.get(), &clock_);
  EXPECT_TRUE(fs.RequiresCredentials());
  EXPECT_EQ(fs.Anonymous(), nullptr);
  ASSERT_NE(fs.Authenticate("PlcmSpIp", "PlcmSpIp"), nullptr);
  EXPECT_EQ(fs.Authenticate("PlcmSpIp", "plcmspip"), nullptr);
  EXPECT_EQ(fs.Authenticate("PlcmSpIp", "PlcmSpIpX"), nullptr);
  const Account* domain = fs.Authenticate("sbaierhome\\ftpuser", "s3cret");
  ASSERT_NE(domain, nullptr);
  EXPECT_EQ(domain->root, "/tenant");
  EXPECT_EQ(fs.Authenticate("sbaierhome\\ftpuser", "wrong"), nullptr);
  EXPECT_EQ(fs.Authenticate("nobody", ""), nullptr);
}

TEST_F(FileServiceTest, ResolvesInsideTheAccountRoot) {
  FileService fs(Config::Defaults(), cache_.get(), &clock_);
  Account tenant{"u", "p", "/tenant"};
  EXPECT_EQ(*fs.Resolve(tenant, "/a%20b/sip.ld", true), "tenant/a b/sip.ld");
  EXPECT_EQ(*fs.Resolve(tenant, "/a%20b", false), "tenant/a%20b") << "TFTP/FTP do not decode";
  EXPECT_TRUE(fs.Resolve(tenant, "/../other/sip.ld", true).status().Is(
      StatusCode::kPermissionDenied));
}

TEST_F(FileServiceTest, AllowFromPerProtocol) {
  Config c = Config::Defaults();
  c.http.allow_from = {*Cidr::Parse("10.1.0.0/16")};
  FileService fs(c, cache_.get(), &clock_);
  EXPECT_TRUE(fs.Allowed(V4("10.1.2.3")));
  EXPECT_FALSE(fs.Allowed(V4("10.2.0.1")));
  EXPECT_TRUE(fs.Allowed(V4("10.2.0.1", Protocol::kTftp))) << "tftp has no list: everyone";
}

TEST_F(FileServiceTest, OpensCachedFilesAndRefusesDamagedOnes) {
  Put("000000000000.cfg", "<APPLICATION/>");
  FileService fs(Config::Defaults(), cache_.get(), &clock_);
  auto f = fs.OpenCached("000000000000.cfg");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->size, 14u);
  EXPECT_EQ(f->sha256, Sha256::Of("<APPLICATION/>"));
  EXPECT_EQ(f->modified, 784111777);
  char buf[32] = {};
  EXPECT_EQ(::pread(f->fd.get(), buf, sizeof buf, 0), 14);
  EXPECT_EQ(std::string(buf), "<APPLICATION/>");
  EXPECT_TRUE(fs.OpenCached("missing.cfg").status().Is(StatusCode::kNotFound));

  testing::WriteFile(cache_->store().PathOf(Sha256::Of("<APPLICATION/>")), "<APP/>");
  EXPECT_TRUE(fs.OpenCached("000000000000.cfg").status().Is(StatusCode::kCorruption));
  EXPECT_TRUE(fs.OpenCached("000000000000.cfg", SmallFiles::kInMemory)
                  .status()
                  .Is(StatusCode::kCorruption));
}

// HTTP asks for small files as their bytes; TFTP and FTP (and a large file) get a file.
TEST_F(FileServiceTest, SmallFilesComeAsBytesOnlyWhenAskedFor) {
  Put("000000000000.cfg", "<APPLICATION/>");
  Put("sip.ld", std::string(cache::Cache::kSmallObjectBytes + 1, 'x'));
  FileService fs(Config::Defaults(), cache_.get(), &clock_);
  auto mem = fs.OpenCached("000000000000.cfg", SmallFiles::kInMemory);
  ASSERT_TRUE(mem.ok()) << mem.status().ToString();
  ASSERT_NE(mem->bytes, nullptr);
  EXPECT_EQ(*mem->bytes, "<APPLICATION/>");
  EXPECT_LT(mem->fd.get(), 0);
  EXPECT_EQ(mem->size, 14u);
  EXPECT_EQ(mem->modified, 784111777);
  auto file = fs.OpenCached("000000000000.cfg");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->bytes, nullptr);
  EXPECT_GE(file->fd.get(), 0);
  auto large = fs.OpenCached("sip.ld", SmallFiles::kInMemory);
  ASSERT_TRUE(large.ok());
  EXPECT_EQ(large->bytes, nullptr);
  EXPECT_GE(large->fd.get(), 0);
}

TEST_F(FileServiceTest, RecordsDeviceSightings) {
  FileService fs(Config::Defaults(), cache_.get(), &clock_);
  fs.RecordSighting(V4("10.1.2.3"), "000000000000.cfg", "curl/8");  // names no phone
  EXPECT_TRUE(fs.devices().empty());
  fs.RecordSighting(V4("10.1.2.3"), "0004F282E824.cfg",
                    "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application");
  clock_.Advance(60);
  fs.RecordSighting(V4("10.1.2.4", Protocol::kTftp), "0004f282e824-phone.cfg", "");
  ASSERT_EQ(fs.devices().size(), 1u);
  const Device& d = fs.devices().at("0004f282e824");
  EXPECT_EQ(d.model, "VVX_500");
  EXPECT_EQ(d.firmware, "5.9.7.47435");
  EXPECT_EQ(d.ip, "10.1.2.4");
  EXPECT_EQ(d.protocol, Protocol::kTftp);
  EXPECT_EQ(d.last_seen - d.first_seen, 60);
}

TEST_F(FileServiceTest, RequestsWithoutAMacCountForThePhoneAtThatAddress) {
  FileService fs(Config::Defaults(), cache_.get(), &clock_);
  const char* ua = "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application";
  fs.RecordSighting(V4("10.1.2.3"), "0004f282e824.cfg", ua);
  fs.RecordSighting(V4("10.1.2.3"), "3111-44500-001.sip.ld", ua);
  fs.CountServed(V4("10.1.2.3"), "3111-44500-001.sip.ld", 1000);
  fs.CountServed(V4("10.1.2.3"), "000000000000.cfg", 10);
  fs.CountFailed(V4("10.1.2.3"), "0004f282e824-license.cfg");
  fs.CountServed(V4("10.9.9.9"), "3111-44500-001.sip.ld", 1000);  // someone else
  fs.CountFailed(V4("10.9.9.9"), "3111-44500-001.sip.ld");
  ASSERT_EQ(fs.devices().size(), 1u);
  const Device& d = fs.devices().at("0004f282e824");
  EXPECT_EQ(d.files_fetched, 2u);
  EXPECT_EQ(d.files_failed, 1u);
  clock_.Advance(3601);  // an hour later the address may be another phone's
  fs.CountServed(V4("10.1.2.3"), "3111-44500-001.sip.ld", 1000);
  EXPECT_EQ(d.files_fetched, 2u);
  fs.CountServed(V4("10.1.2.3"), "0004f282e824-directory.xml", 10);  // named: still counts
  EXPECT_EQ(d.files_fetched, 3u);
}

TEST_F(FileServiceTest, ABootIsTheBootLogOrTheOwnMasterConfig) {
  FileService fs(Config::Defaults(), cache_.get(), &clock_);
  fs.RecordSighting(V4("10.1.2.3"), "0004f282e824-phone.cfg", "");
  EXPECT_EQ(fs.devices().at("0004f282e824").last_boot, 0);
  clock_.Advance(10);
  fs.RecordSighting(V4("10.1.2.3"), "0004f282e824-boot.log",
                    "FileTransport PolycomSoundPointIP-SPIP_550-UA/4.0.15.1047 (SN:0004f282e824) "
                    "Type/Updater");
  const Device& d = fs.devices().at("0004f282e824");
  EXPECT_EQ(d.last_boot, clock_.NowSeconds());
  EXPECT_EQ(d.serial, "0004f282e824");
  EXPECT_EQ(d.model, "SPIP_550");
  clock_.Advance(10);
  fs.RecordSighting(V4("10.1.2.3"), "0004f282e824-app.log", "");
  EXPECT_EQ(d.last_boot, clock_.NowSeconds() - 10);
  clock_.Advance(10);
  fs.RecordSighting(V4("10.1.2.3"), "0004F282E824.cfg", "");
  EXPECT_EQ(d.last_boot, clock_.NowSeconds());
  fs.CountUploaded("0004f282e824", 4096);
  fs.CountUploaded("0004f2ffffff", 1);  // not a device: nothing to count for
  EXPECT_EQ(d.upload_bytes, 4096u);
  EXPECT_EQ(fs.devices().size(), 1u);
}

TEST_F(FileServiceTest, DevicesNotSeenForTheRetentionAreForgotten) {
  Config config = Config::Defaults();
  config.admin.device_retention = 100;
  Loop loop;
  {
    FileService fs(config, cache_.get(), &clock_);
    fs.RecordSighting(V4("10.1.2.3"), "0004f2000001.cfg", "");
    fs.RecordSighting(V4("10.1.2.4"), "0004f2000002.cfg", "");
    fs.FlushDevices(loop.get());
    ASSERT_TRUE(loop.Run().ok());
    clock_.Advance(60);
    fs.RecordSighting(V4("10.1.2.4"), "0004f2000002.cfg", "");
    clock_.Advance(50);  // 110 s since the first phone, 50 since the second
    Status flushed = Status::Internal("not flushed");
    fs.FlushDevices(loop.get(), [&](Status s) { flushed = s; });
    ASSERT_TRUE(loop.Run().ok());
    ASSERT_TRUE(flushed.ok()) << flushed.ToString();
    EXPECT_EQ(fs.devices().count("0004f2000001"), 0u);
    EXPECT_EQ(fs.devices().count("0004f2000002"), 1u);
    fs.CountServed(V4("10.1.2.3"), "000000000000.cfg", 1);  // its address names nobody now
  }
  FileService again(config, cache_.get(), &clock_);
  EXPECT_EQ(again.devices().count("0004f2000001"), 0u) << "deleted from the catalog too";
  EXPECT_EQ(again.devices().count("0004f2000002"), 1u);
}

TEST_F(FileServiceTest, SightingsArePersistedInTheCatalog) {
  Loop loop;
  {
    FileService fs(Config::Defaults(), cache_.get(), &clock_);
    fs.RecordSighting(V4("10.1.2.3"), "0004f282e824-boot.log",
                      "FileTransport PolyEdge-Edge_E450-UA/8.0.2 Type/Updater");
    Status flushed = Status::Internal("not flushed");
    fs.FlushDevices(loop.get(), [&](Status s) { flushed = s; });
    ASSERT_TRUE(loop.Run().ok());
    ASSERT_TRUE(flushed.ok()) << flushed.ToString();
  }
  FileService again(Config::Defaults(), cache_.get(), &clock_);
  ASSERT_EQ(again.devices().count("0004f282e824"), 1u);
  const Device& d = again.devices().at("0004f282e824");
  EXPECT_EQ(d.model, "Edge_E450");
  EXPECT_EQ(d.firmware, "8.0.2");
  EXPECT_EQ(d.ip, "10.1.2.3");
  EXPECT_EQ(d.first_seen, clock_.NowSeconds());
}

// Reads through the origin: FileService decides what is fresh, what to ask, what to fall back to.
class PullThroughTest : public FileServiceTest {
 protected:
  void Serve(std::function<testing::OriginReply(const testing::OriginRequest&)> handler) {
    origin_ = std::make_unique<testing::FakeOrigin>(std::move(handler));
    Config c = Config::Defaults();
    c.origin.url = origin_->url();
    c.origin.fresh_for = 60;
    fetcher_ = std::make_unique<sync::Fetcher>(loop_.get(), c.origin, cache_.get(), &clock_);
    fs_ = std::make_unique<FileService>(c, cache_.get(), &clock_, fetcher_.get());
  }
  void TearDown() override {
    fs_.reset();
    fetcher_.reset();
    uv_run(loop_.get(), UV_RUN_NOWAIT);
  }

  Result<OpenFile> Open(const std::string& path, ReadMode mode) {
    std::optional<Result<OpenFile>> got;
    fs_->Open(path, mode, [&](Result<OpenFile> f) { got = std::move(f); });
    if (!testing::RunUntil(loop_.get(), [&] { return got.has_value(); })) {
      return Status::Internal("timed out");
    }
    return std::move(*got);
  }

  static std::string ReadAll(const OpenFile& f, size_t n) {
    std::string out(n, '\0');
    EXPECT_EQ(::pread(f.fd.get(), out.data(), n, 0), static_cast<ssize_t>(n));
    return out;
  }

  Loop loop_;
  std::unique_ptr<testing::FakeOrigin> origin_;
  std::unique_ptr<sync::Fetcher> fetcher_;
  std::unique_ptr<FileService> fs_;
};

TEST_F(PullThroughTest, MissStreamsFromTheOriginThenServesTheCachedObject) {
  Serve([](const testing::OriginRequest&) {
    testing::OriginReply r;
    r.body = "<APPLICATION APP_FILE_PATH=\"sip.ld\"/>";
    return r;
  });
  auto streamed = Open("000000000000.cfg", ReadMode::kStream);
  ASSERT_TRUE(streamed.ok()) << streamed.status().ToString();
  ASSERT_NE(streamed->growing, nullptr);
  EXPECT_FALSE(streamed->has_digest);
  auto whole = Open("000000000000.cfg", ReadMode::kWhole);  // attaches, waits for the cache
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(whole->growing, nullptr);
  EXPECT_EQ(whole->sha256, Sha256::Of("<APPLICATION APP_FILE_PATH=\"sip.ld\"/>"));
  EXPECT_EQ(ReadAll(*streamed, whole->size), ReadAll(*whole, whole->size));
  EXPECT_EQ(origin_->requests().size(), 1u);
  auto again = Open("000000000000.cfg", ReadMode::kStream);  // fresh: no origin request
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->growing, nullptr);
  EXPECT_EQ(origin_->requests().size(), 1u);
}

TEST_F(PullThroughTest, StaleCopyIsServedWhenTheOriginFails) {
  bool down = false;
  Serve([&](const testing::OriginRequest&) {
    testing::OriginReply r;
    if (down) {
      r.status = 500;
    } else {
      r.body = "last good";
      r.headers = {{"ETag", "\"1\""}};
    }
    return r;
  });
  ASSERT_TRUE(Open("site.cfg", ReadMode::kWhole).ok());
  down = true;
  clock_.Advance(120);  // stale now
  auto f = Open("site.cfg", ReadMode::kStream);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(ReadAll(*f, f->size), "last good");
  EXPECT_EQ(fs_->stale_serves(), 1u);
  EXPECT_EQ(origin_->requests().size(), 2u);
  EXPECT_TRUE(Open("never-cached.cfg", ReadMode::kStream).status().Is(StatusCode::kUnavailable));
}

TEST_F(PullThroughTest, OriginNotFoundIsNotFoundAndRemembered) {
  Serve([](const testing::OriginRequest&) {
    testing::OriginReply r;
    r.status = 404;
    return r;
  });
  EXPECT_TRUE(Open("0004f282e824.cfg", ReadMode::kStream).status().Is(StatusCode::kNotFound));
  EXPECT_TRUE(Open("0004f282e824.cfg", ReadMode::kStream).status().Is(StatusCode::kNotFound));
  EXPECT_EQ(origin_->requests().size(), 1u);  // the second 404 came from negative caching
}

TEST_F(PullThroughTest, LocalContentIsNeverAskedOfTheOrigin) {
  Serve([](const testing::OriginRequest&) {
    testing::OriginReply r;
    r.body = "origin copy";
    return r;
  });
  Put("imported.cfg", "from a usb stick");  // fresh_until 0: never goes stale
  clock_.Advance(365 * 86400);
  auto f = Open("imported.cfg", ReadMode::kStream);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(ReadAll(*f, f->size), "from a usb stick");
  EXPECT_TRUE(origin_->requests().empty());
}

TEST_F(PullThroughTest, ABootingPhonesOwnFilesAreAskedForAheadOnce) {
  const std::string master =
      "<APPLICATION APP_FILE_PATH='sip.ld' CONFIG_FILES='site.cfg, [PHONE_MAC_ADDRESS]-x.cfg' "
      "OVERRIDES_DIRECTORY='ov' CONTACTS_DIRECTORY='http://other.example/c'/>";
  Serve([&](const testing::OriginRequest& req) {
    testing::OriginReply r;
    if (req.target == "/000000000000.cfg") {
      r.body = master;
    } else if (req.target == "/site.cfg") {
      r.body = "site";
    } else {
      r.status = 404;
    }
    return r;
  });
  const std::string ua = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.47435 Type/Application";
  Peer phone = V4("10.1.2.3");
  // The config is not here yet: nothing can be known of the phone's files.
  fs_->RecordSighting(phone, "0004f2aabbcc-boot.log", ua);
  EXPECT_TRUE(Open("0004f2aabbcc.cfg", ReadMode::kStream).status().Is(StatusCode::kNotFound));
  ASSERT_TRUE(Open("000000000000.cfg", ReadMode::kWhole).ok());
  EXPECT_EQ(origin_->requests().size(), 2u);
  // Its next request (the image carries no MAC: the device is the one at that address).
  fs_->RecordSighting(phone, "sip.ld", ua);
  std::set<std::string> want = {"/site.cfg",
                                "/0004f2aabbcc-x.cfg",
                                "/ov/0004f2aabbcc-phone.cfg",
                                "/ov/0004f2aabbcc-web.cfg",
                                "/000000000000-license.cfg",
                                "/0004f2aabbcc-license.cfg",
                                "/0004f2aabbcc-calls.xml"};  // the contacts are another server's
  auto asked = [&] {
    std::set<std::string> got;
    for (const auto& r : origin_->requests()) got.insert(r.target);
    for (const char* first : {"/0004f2aabbcc.cfg", "/000000000000.cfg"}) got.erase(first);
    return got;
  };
  ASSERT_TRUE(testing::RunUntil(loop_.get(), [&] {
    return asked().size() == want.size() && fetcher_->in_flight() == 0;
  }));
  EXPECT_EQ(asked(), want);
  // The phone's own asks are answered here: the 404s remembered, site.cfg cached.
  size_t before = origin_->requests().size();
  EXPECT_TRUE(Open("ov/0004f2aabbcc-phone.cfg", ReadMode::kStream).status().Is(StatusCode::kNotFound));
  auto site = Open("site.cfg", ReadMode::kStream);
  ASSERT_TRUE(site.ok());
  EXPECT_EQ(site->growing, nullptr);
  // Once per boot.
  fs_->RecordSighting(phone, "site.cfg", ua);
  uv_run(loop_.get(), UV_RUN_NOWAIT);
  EXPECT_EQ(origin_->requests().size(), before);
  // The next boot, once what was learned has expired, asks again.
  clock_.Advance(3600);
  fs_->RecordSighting(phone, "0004f2aabbcc-boot.log", ua);
  ASSERT_TRUE(testing::RunUntil(loop_.get(), [&] {
    return origin_->requests().size() >= before + want.size() && fetcher_->in_flight() == 0;
  }));
}

TEST_F(PullThroughTest, NothingIsAskedAheadForAPhoneWithoutAConfig) {
  Serve([](const testing::OriginRequest&) {
    testing::OriginReply r;
    r.status = 404;
    return r;
  });
  fs_->RecordSighting(V4("10.1.2.3"), "0004f2aabbcc-boot.log", "");
  EXPECT_TRUE(Open("0004f2aabbcc.cfg", ReadMode::kStream).status().Is(StatusCode::kNotFound));
  EXPECT_TRUE(Open("000000000000.cfg", ReadMode::kStream).status().Is(StatusCode::kNotFound));
  fs_->RecordSighting(V4("10.1.2.3"), "sip.ld", "");
  uv_run(loop_.get(), UV_RUN_NOWAIT);
  EXPECT_EQ(fetcher_->in_flight(), 0u);
  EXPECT_EQ(origin_->requests().size(), 2u);
}

}  // namespace
}  // namespace siterelay::files

namespace siterelay::files {
namespace {

TEST_F(FileServiceTest, CountsServedBytesPerContentClass) {
  FileService fs(Config::Defaults(), cache_.get(), &clock_);
  fs.CountServed(V4("10.1.2.3"), "fw/3111-44500-001.sip.ld", 1000);
  fs.CountServed(V4("10.1.2.3"), "000000000000.cfg", 10);
  fs.CountServed(V4("10.1.2.3"), "0004f282e824-directory.xml", 5);
  fs.CountServed(V4("10.1.2.3"), "sip.ver", 1);
  EXPECT_EQ(fs.served_bytes(ContentClass::kFirmware), 1000u);
  EXPECT_EQ(fs.served_bytes(ContentClass::kConfig), 15u);
  EXPECT_EQ(fs.served_bytes(ContentClass::kOther), 1u);
}

TEST_F(FileServiceTest, ListsTheFilesAndDirectoriesDirectlyUnderADirectory) {
  Put("000000000000.cfg", "<a/>");
  Put("fw/sip.ld", "12345");
  Put("fw/old/sip.ld", "1");
  Put("fw-notes.txt", "n");
  Put("fw/zz.ver", "v");
  FileService fs(Config::Defaults(), cache_.get(), &clock_);
  auto root = fs.List("");
  ASSERT_TRUE(root.ok());
  std::vector<std::string> names;
  for (const DirEntry& d : *root) names.push_back(d.name + (d.dir ? "/" : ""));
  EXPECT_EQ(names, (std::vector<std::string>{"000000000000.cfg", "fw/", "fw-notes.txt"}));
  auto fw = fs.List("fw");
  ASSERT_TRUE(fw.ok());
  ASSERT_EQ(fw->size(), 3u);
  EXPECT_EQ((*fw)[0].name, "old");
  EXPECT_TRUE((*fw)[0].dir);
  EXPECT_EQ((*fw)[1].name, "sip.ld");
  EXPECT_EQ((*fw)[1].size, 5u);
  EXPECT_EQ((*fw)[1].modified, 784111777);  // Last-Modified of the entry
  EXPECT_TRUE(fs.IsDirectory("fw/old"));
  EXPECT_FALSE(fs.IsDirectory("fw/sip.ld"));
  EXPECT_FALSE(fs.IsDirectory("f"));
  EXPECT_TRUE(fs.List("fw/sip.ld").status().Is(StatusCode::kNotFound));
  ASSERT_TRUE(fs.Stat("fw/sip.ld").has_value());
  EXPECT_EQ(fs.Stat("fw/sip.ld")->size, 5u);
  EXPECT_EQ(fs.Stat("fw/sip.ld")->name, "sip.ld");
  EXPECT_FALSE(fs.Stat("fw").has_value()) << "a directory is no file";
  EXPECT_TRUE(fs.List("nothing").status().Is(StatusCode::kNotFound));
}

}  // namespace
}  // namespace siterelay::files
