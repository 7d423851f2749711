// FileService: the one namespace every protocol front-end goes through (DESIGN.md). It turns a
// peer, credentials and a raw request path into a catalog path, decides who may see what, and
// hands out the object behind a path. Front-ends parse bytes and call it; they never touch the
// cache or sync directly, which keeps HTTP, TFTP and FTP consistent: one path normaliser, one
// account check, one list of upload names, one place that records which device asked for what.
//
// Thread safety: a FileService lives on the loop thread with the Cache it reads; every method is
// for that thread. Open() hands out an fd that the caller owns and may read from any thread.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cache.h"
#include "cache/growing_file.h"
#include "relay/base/clock.h"
#include "relay/base/config.h"
#include "relay/base/fs.h"
#include "relay/base/mime.h"
#include "relay/base/status.h"
#include "sync/fetcher.h"

namespace siterelay::files {

class AskAhead;
class MasterConfigs;

enum class Protocol { kHttp, kHttps, kTftp, kFtp, kFtps };
std::string_view ProtocolName(Protocol p);

// Who is asking: filled in by the front-end once per connection or transfer.
struct Peer {
  Protocol protocol = Protocol::kHttp;
  uint8_t addr[16] = {};  // network order; IPv4 in the first 4 bytes
  bool ipv6 = false;
  std::string ip;  // printable, for logs and the device list

  static Peer FromSockaddr(Protocol protocol, const sockaddr* sa);
};

// An open file. The fd is the caller's to close. For a cached file, size and digest are the
// catalog's, and the fd's own size has been checked against them. For a file still arriving from
// the origin, `growing` is set: send from `fd` only up to growing->readable(), wait for more with
// growing->Wait(), and end the body only when growing->complete(); growing->failed() means the
// body must end as an error (closed connection, TFTP/FTP error), never as a complete file.
struct OpenFile {
  ScopedFd fd;  // unset when `bytes` is
  // A small cached object's bytes (cache::Cache::SmallObject), when the reader asked for
  // SmallFiles::kInMemory: shared, never changed.
  std::shared_ptr<const std::string> bytes;
  std::shared_ptr<cache::GrowingFile> growing;  // shared with the transfer and its other readers
  uint64_t size = 0;  // growing: growing->size() when the origin said it, else 0
  bool has_digest = true;  // false for a phone's log (not an object) and a growing body
  Digest sha256;
  int64_t modified = 0;  // Unix seconds: the origin's Last-Modified, or when it was stored
  std::string content_type;
  std::string path;  // catalog path
};

// A device seen asking for or sending a file (CONTRACT.md /api/v1/devices; docs/admin.md).
struct Device {
  std::string mac;
  std::string model;
  std::string firmware;
  std::string serial;  // the User-Agent's "(SN:...)", when it sends one
  std::string part_number;  // "3111-44500-001": from the split image it asked for (PHONES.md)
  std::string ip;
  Protocol protocol = Protocol::kHttp;
  int64_t first_seen = 0;
  int64_t last_seen = 0;
  int64_t last_boot = 0;  // its last boot log upload or <mac>.cfg read; 0: not seen booting
  uint64_t files_fetched = 0;  // reads sent in full
  uint64_t files_failed = 0;   // reads that ended in an error other than "no such file"
  uint64_t upload_bytes = 0;   // new bytes it uploaded (logs and settings)
};

// One name in a directory listing (FTP LIST/NLST/MLSD).
struct DirEntry {
  std::string name;
  bool dir = false;
  uint64_t size = 0;
  int64_t modified = 0;  // Unix seconds; for a directory, its newest file's
  Digest sha256;         // a file's (Stat); zero for a directory
};

// How a reader takes a file that is not cached yet.
enum class ReadMode {
  kStream,  // a growing body as soon as it starts arriving (GET, RETR, RRQ)
  kWhole,   // only once it is complete and cached (HEAD, SIZE, clients that cannot stream)
};

// Whether a small cached object may come as its bytes (OpenFile::bytes) rather than a file:
// HTTP answers from memory; TFTP and FTP read files.
enum class SmallFiles { kAsFile, kInMemory };

using OpenCallback = std::function<void(Result<OpenFile>)>;

class FileService {
 public:
  // `fetcher` may be null: no origin, only what is cached is served.
  FileService(const Config& config, cache::Cache* cache, Clock* clock,
              sync::Fetcher* fetcher = nullptr);
  ~FileService();

  // SIGHUP: new accounts and allow_from lists; transfers in flight keep what they resolved.
  void Reload(const Config& config);

  // allow_from of the peer's protocol ([http], [https], [tftp], [ftp]); empty list: everyone.
  bool Allowed(const Peer& peer) const;

  // True when accounts are configured, so a request without credentials is refused (401).
  bool RequiresCredentials() const { return !accounts_.empty(); }

  // The account for these credentials, nullptr when they are wrong. Without configured accounts
  // everyone is the anonymous account with root "/". "DOMAIN\user" matches an account named
  // exactly that, or else one named "user" (PHONES.md: phones send Windows domain users).
  const Account* Authenticate(std::string_view user, std::string_view password) const;
  const Account* Anonymous() const;

  // Raw request path -> catalog path inside the account's root. `encoded`: percent-decode first
  // (HTTP, not TFTP/FTP). PermissionDenied for escapes, InvalidArgument for garbage.
  Result<std::string> Resolve(const Account& account, std::string_view raw, bool encoded) const;

  // Opens a catalog path for reading (CONTRACT.md "Reads"): a phone's log from the spool; a
  // fresh cached file; else the origin's answer through the fetcher (a growing body, the
  // revalidated or newly cached file, NotFound for an origin 404); and when the origin fails,
  // the last good copy if there is one. `done` runs exactly once on the loop thread, before
  // Open() returns whenever no origin has to be asked.
  void Open(std::string_view path, ReadMode mode, OpenCallback done,
            SmallFiles small = SmallFiles::kAsFile);
  // What is stored for a path now, without asking the origin: NotFound when nothing is.
  Result<OpenFile> OpenCached(std::string_view path, SmallFiles small = SmallFiles::kAsFile);
  // The cached files and sub-directories directly under catalog directory `dir` ("" is the
  // root), sorted by name. What the origin has but the relay has not cached is not listed (an
  // HTTP origin has no listings). NotFound when `dir` is a file or names nothing cached (the root
  // is always there, if empty).
  Result<std::vector<DirEntry>> List(std::string_view dir) const;
  // Whether `path` is a directory: the root, or a prefix of some cached path.
  bool IsDirectory(std::string_view path) const;
  // A cached file's listing facts from the catalog, without opening it; nullopt when the path
  // names no cached file (phones' logs included: they are not in the catalog).
  std::optional<DirEntry> Stat(std::string_view path) const;
  uint64_t stale_serves() const { return stale_serves_; }
  // Body bytes handed to phones, by ContentClassOf(path): the console's "served" next to sync's
  // "from the origin" (WAN saved). Front-ends report each body they send in full.
  // The read also counts for the device that made it (files_fetched).
  void CountServed(const Peer& peer, std::string_view path, uint64_t bytes);
  // A read that ended in an error other than "no such file": the origin failed with nothing
  // cached, the transfer was cut, the file could not be read (the device's files_failed).
  void CountFailed(const Peer& peer, std::string_view path);
  // New bytes an upload named for `mac` brought (Uploads' OnFiled).
  void CountUploaded(const std::string& mac, uint64_t bytes);
  uint64_t served_bytes(ContentClass c) const { return served_bytes_[static_cast<size_t>(c)]; }
  // Asks the origin for `path` ahead of a phone (sync::Priority::kSoon), unless Open() would not
  // ask it: the path is served as cached or known missing, there is no origin, or too many asks
  // ahead wait already. True when it asked. The answer is cached for the phone, not handed out.
  bool FetchAhead(const std::string& path);
  // Stops asking the origin (shutdown): what is cached is all there is from now on.
  void SetFetcher(sync::Fetcher* fetcher) { fetcher_ = fetcher; }

  // Records that `peer` asked for or sent `path`, with its User-Agent (may be empty). The device
  // is the MAC in the file name, else the User-Agent's serial, else the device last seen at the
  // peer's address within the hour (the firmware image and 000000000000.cfg carry no MAC). Kept
  // in memory; FlushDevices() writes what changed to the catalog, off the loop thread. A booting
  // device's own files are then asked for ahead of it (AskAhead).
  void RecordSighting(const Peer& peer, std::string_view path, std::string_view user_agent);
  const std::map<std::string, Device>& devices() const { return devices_; }
  // What the cached master configs say, parsed once per content for every reader (AskAhead,
  // ConfigGate, the console's firmware expectations).
  MasterConfigs& master_configs() { return *master_configs_; }
  // Writes the changed devices, and forgets the ones not seen for [admin] device_retention.
  void FlushDevices(uv_loop_t* loop, std::function<void(Status)> done = {});

 private:
  const std::vector<Cidr>& AllowListFor(Protocol p) const;

  // A local file, or an origin's copy still fresh: Open() serves it without asking the origin.
  bool ServedAsCached(const cache::Entry* e) const;
  // The stale copy when the origin failed, else the failure.
  Result<OpenFile> OpenAfterFailure(std::string_view path, const Status& why, SmallFiles small);

  cache::Cache* cache_;
  Clock* clock_;
  sync::Fetcher* fetcher_;
  uint64_t stale_serves_ = 0;
  uint64_t served_bytes_[kContentClasses] = {};
  std::vector<Account> accounts_;
  Account anonymous_;
  std::vector<Cidr> allow_http_, allow_https_, allow_tftp_, allow_ftp_;
  // The device `peer` is when it asks for `path` without a MAC of its own; nullptr if unknown.
  Device* DeviceFor(const Peer& peer, std::string_view path);

  std::map<std::string, Device> devices_;  // by MAC; loaded from the catalog at start
  std::map<std::string, std::string> mac_by_ip_;
  std::set<std::string> dirty_devices_;
  int64_t device_retention_ = 0;  // seconds; 0 = forever
  bool inventory_full_logged_ = false;
  std::unique_ptr<MasterConfigs> master_configs_;  // these two read through this FileService
  std::unique_ptr<AskAhead> ask_ahead_;
};

}  // namespace siterelay::files
