#include "relay/files/file_service.h"

#include <netinet/in.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "relay/base/log.h"
#include "relay/base/mime.h"
#include "relay/base/strings.h"
#include "relay/files/ask_ahead.h"
#include "relay/files/parsed_files.h"
#include "relay/files/path.h"
#include "relay/files/phone.h"
#include "relay/files/uploads.h"

namespace siterelay::files {

std::string_view ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kHttp: return "http";
    case Protocol::kHttps: return "https";
    case Protocol::kTftp: return "tftp";
    case Protocol::kFtp: return "ftp";
    case Protocol::kFtps: return "ftps";
  }
  return "?";
}

Peer Peer::FromSockaddr(Protocol protocol, const sockaddr* sa) {
  Peer p;
  p.protocol = protocol;
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    std::memcpy(p.addr, &in6->sin6_addr, 16);
    p.ipv6 = true;
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET) {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(sa);
    std::memcpy(p.addr, &in4->sin_addr, 4);
    inet_ntop(AF_INET, &in4->sin_addr, buf, sizeof buf);
  }
  p.ip = buf;
  return p;
}

FileService::FileService(const Config& config, cache::Cache* cache, Clock* clock,
                         sync::Fetcher* fetcher)
    : cache_(cache),
      clock_(clock),
      fetcher_(fetcher),
      master_configs_(std::make_unique<MasterConfigs>(this)),
      ask_ahead_(std::make_unique<AskAhead>(this)) {
  anonymous_.user = "anonymous";
  anonymous_.root = "/";
  Reload(config);
  std::vector<cache::DeviceRecord> rows;
  Status s = cache_->LoadDevices(&rows);
  if (!s.ok()) SR_LOG(kWarning) << "devices: " << s.ToString();
  for (const cache::DeviceRecord& r : rows) {
    Device d;
    d.mac = r.mac;
    d.model = r.model;
    d.firmware = r.firmware;
    d.ip = r.ip;
    for (Protocol p : {Protocol::kHttp, Protocol::kHttps, Protocol::kTftp, Protocol::kFtp,
                       Protocol::kFtps}) {
      if (ProtocolName(p) == r.protocol) d.protocol = p;
    }
    d.first_seen = r.first_seen;
    d.last_seen = r.last_seen;
    d.serial = r.serial;
    d.last_boot = r.last_boot;
    d.files_fetched = r.files_fetched;
    d.files_failed = r.files_failed;
    d.upload_bytes = r.upload_bytes;
    d.part_number = r.part_number;
    devices_.emplace(d.mac, d);
  }
}

void FileService::FlushDevices(uv_loop_t* loop, std::function<void(Status)> done) {
  std::vector<std::string> gone;
  if (device_retention_ > 0) {
    int64_t cutoff = clock_->NowSeconds() - device_retention_;
    for (auto it = devices_.begin(); it != devices_.end();) {
      if (it->second.last_seen >= cutoff) {
        ++it;
        continue;
      }
      gone.push_back(it->first);
      dirty_devices_.erase(it->first);
      it = devices_.erase(it);
    }
    if (!gone.empty()) {
      SR_LOG(kInfo) << "devices: forgot " << gone.size() << " not seen for "
                    << device_retention_ / 86400 << " day(s)";
      std::erase_if(mac_by_ip_, [this](const auto& kv) { return !devices_.contains(kv.second); });
    }
  }
  if (dirty_devices_.empty() && gone.empty()) {
    if (done) done(Status::Ok());
    return;
  }
  std::vector<cache::DeviceRecord> rows;
  for (const std::string& mac : dirty_devices_) {
    const Device& d = devices_.at(mac);
    rows.push_back({d.mac, d.model, d.firmware, d.ip, std::string(ProtocolName(d.protocol)),
                    d.first_seen, d.last_seen, d.serial, d.last_boot, d.files_fetched,
                    d.files_failed, d.upload_bytes, d.part_number});
  }
  dirty_devices_.clear();
  cache_->WriteAsync(
      loop,
      [rows = std::move(rows), gone = std::move(gone)](cache::Catalog& catalog) {
        Status s = catalog.UpsertDevices(rows);
        if (s.ok() && !gone.empty()) s = catalog.DeleteDevices(gone);
        return s;
      },
      [done = std::move(done)](Status s) {
        if (!s.ok()) SR_LOG(kWarning) << "devices: " << s.ToString();
        if (done) done(s);
      });
}

void FileService::Reload(const Config& config) {
  device_retention_ = config.admin.device_retention;
  accounts_ = config.accounts;
  allow_http_ = config.http.allow_from;
  allow_https_ = config.https.allow_from;
  allow_tftp_ = config.tftp.allow_from;
  allow_ftp_ = config.ftp.allow_from;
}

const std::vector<Cidr>& FileService::AllowListFor(Protocol p) const {
  switch (p) {
    case Protocol::kHttp: return allow_http_;
    case Protocol::kHttps: return allow_https_;
    case Protocol::kTftp: return allow_tftp_;
    case Protocol::kFtp:
    case Protocol::kFtps: return allow_ftp_;
  }
  return allow_http_;
}

bool FileService::Allowed(const Peer& peer) const {
  const std::vector<Cidr>& list = AllowListFor(peer.protocol);
  if (list.empty()) return true;
  for (const Cidr& c : list) {
    if (c.Contains(peer.addr, peer.ipv6)) return true;
  }
  return false;
}

const Account* FileService::Anonymous() const {
  return accounts_.empty() ? &anonymous_ : nullptr;
}

const Account* FileService::Authenticate(std::string_view user, std::string_view password) const {
  if (accounts_.empty()) return &anonymous_;
  auto check = [&](std::string_view name) -> const Account* {
    for (const Account& a : accounts_) {
      // Compare in constant time: a timing difference must not reveal password prefixes.
      if (a.user == name && a.password.size() == password.size() &&
          CRYPTO_memcmp(a.password.data(), password.data(), password.size()) == 0) {
        return &a;
      }
    }
    return nullptr;
  };
  if (const Account* a = check(user)) return a;
  size_t backslash = user.find('\\');
  if (backslash != std::string_view::npos) return check(user.substr(backslash + 1));
  return nullptr;
}

Result<std::string> FileService::Resolve(const Account& account, std::string_view raw,
                                         bool encoded) const {
  std::string decoded;
  if (encoded) {
    SR_ASSIGN_OR_RETURN(decoded, PercentDecode(raw));
  } else {
    decoded = std::string(raw);
  }
  SR_ASSIGN_OR_RETURN(std::string normal, NormalizePath(decoded));
  return JoinRoot(account.root, normal);
}

void FileService::Open(std::string_view path, ReadMode mode, OpenCallback done,
                       SmallFiles small) {
  if (ClassifyUpload(BaseName(path)).kind == UploadName::kLog || fetcher_ == nullptr ||
      !fetcher_->enabled()) {
    done(OpenCached(path, small));
    return;
  }
  // Local content (uploads, imports, manifest sets) and fresh pull-through copies are served as
  // they are; a miss or a stale copy goes to the origin (CONTRACT.md "Reads").
  if (ServedAsCached(cache_->Lookup(path))) {
    done(OpenCached(path, small));
    return;
  }
  if (fetcher_->KnownMissing(path)) {
    done(Status::NotFound(std::string(path) + " is not on the origin"));
    return;
  }
  std::string p(path);
  sync::Want want = mode == ReadMode::kStream ? sync::Want::kBody : sync::Want::kComplete;
  fetcher_->Fetch(p, want, [this, p, small, done = std::move(done)](sync::FetchOutcome o) {
    if (o.status.ok() && o.body) {
      auto fd = o.body->Dup();
      if (!fd.ok()) {
        done(fd.status());
        return;
      }
      OpenFile f;
      f.fd = std::move(fd).value();
      f.growing = o.body;
      f.size = o.body->size().value_or(0);
      f.has_digest = false;
      f.modified = o.modified;
      f.content_type = std::string(ContentTypeForPath(p));
      f.path = p;
      done(std::move(f));
    } else if (o.status.ok()) {
      done(OpenCached(p, small));  // revalidated, or complete and published
    } else if (o.status.Is(StatusCode::kNotFound)) {
      done(o.status);  // the origin is the authority on what exists
    } else {
      done(OpenAfterFailure(p, o.status, small));
    }
  });
}

Result<OpenFile> FileService::OpenAfterFailure(std::string_view path, const Status& why,
                                               SmallFiles small) {
  auto f = OpenCached(path, small);
  if (f.ok()) {
    // Stale if error: a phone gets the last good copy rather than nothing.
    ++stale_serves_;
    SR_LOG(kWarning) << "serving the last good copy of " << path << ": origin failed: "
                     << why.message();
    return f;
  }
  return f.status().Is(StatusCode::kNotFound) ? why : f.status();
}

Result<std::vector<DirEntry>> FileService::List(std::string_view dir) const {
  std::string prefix(dir);
  if (!prefix.empty()) prefix += '/';
  std::vector<DirEntry> out;
  for (const cache::Entry* e : cache_->EntriesUnder(prefix)) {
    std::string_view rest = std::string_view(e->path).substr(prefix.size());
    size_t slash = rest.find('/');
    std::string_view name = rest.substr(0, slash);
    int64_t modified = e->Modified();
    // Entries come in path order, so the files of one sub-directory are next to each other.
    if (slash != std::string_view::npos && !out.empty() && out.back().dir &&
        out.back().name == name) {
      out.back().modified = std::max(out.back().modified, modified);
      continue;
    }
    DirEntry d;
    d.name = std::string(name);
    d.dir = slash != std::string_view::npos;
    d.size = d.dir ? 0 : e->size;
    d.modified = modified;
    out.push_back(std::move(d));
  }
  if (out.empty() && !dir.empty()) return Status::NotFound(std::string(dir) + " is not a directory");
  // "a-b" sorts before "a/..." in path order but after "a" by name: sort by name for listings.
  std::sort(out.begin(), out.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return out;
}

std::optional<DirEntry> FileService::Stat(std::string_view path) const {
  const cache::Entry* e = cache_->Lookup(path);
  if (e == nullptr) return std::nullopt;
  DirEntry d;
  d.name = std::string(BaseName(path));
  d.size = e->size;
  d.modified = e->Modified();
  d.sha256 = e->sha256;
  return d;
}

bool FileService::IsDirectory(std::string_view path) const {
  if (path.empty()) return true;
  std::string prefix(path);
  prefix += '/';
  return !cache_->EntriesUnder(prefix).empty();
}

Result<OpenFile> FileService::OpenCached(std::string_view path, SmallFiles small) {
  UploadName log = ClassifyUpload(BaseName(path));
  if (log.kind == UploadName::kLog) {
    // CONTRACT.md: HEAD on a log answers its stored size; GET returns the stored log.
    std::string file = SpoolPath(cache_->store().data_dir(), log);
    int raw = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (raw < 0) {
      if (errno == ENOENT) return Status::NotFound(std::string(path));
      return PosixError("open " + file, errno);
    }
    OpenFile f;
    f.fd = ScopedFd(FileSystem::Default(), raw);
    struct stat st;
    if (::fstat(raw, &st) != 0) return PosixError("fstat " + file, errno);
    f.size = static_cast<uint64_t>(st.st_size);
    f.has_digest = false;
    f.modified = static_cast<int64_t>(st.st_mtime);
    f.content_type = "text/plain";
    f.path = std::string(path);
    return f;
  }
  const cache::Entry* e = cache_->Lookup(path);
  if (e == nullptr) return Status::NotFound(std::string(path));
  OpenFile f;
  f.modified = e->Modified();
  // From memory only with a time to give (an entry without one falls back to the file's mtime).
  if (small == SmallFiles::kInMemory && f.modified != 0) {
    SR_ASSIGN_OR_RETURN(f.bytes, cache_->SmallObject(e->sha256));
  }
  uint64_t stored = 0;
  int64_t mtime = 0;
  if (f.bytes) {
    stored = f.bytes->size();
  } else {
    SR_ASSIGN_OR_RETURN(f.fd, cache_->OpenObject(e->sha256));
    struct stat st;
    if (::fstat(f.fd.get(), &st) != 0) return PosixError("fstat object " + e->sha256.Hex(), errno);
    stored = static_cast<uint64_t>(st.st_size);
    mtime = static_cast<int64_t>(st.st_mtime);
  }
  if (stored != e->size) {
    // Damaged on disk: never serve bytes that do not match the catalog (cache verify repairs).
    SR_LOG(kError) << "cache: object " << e->sha256.Hex() << " for " << path << " has "
                   << stored << " bytes, catalog says " << e->size << "; not serving it";
    return Status::Corruption("object size mismatch for " + std::string(path));
  }
  f.size = e->size;
  f.sha256 = e->sha256;
  f.content_type = e->content_type;
  f.path = e->path;
  if (f.modified == 0) f.modified = mtime;
  cache_->Touch(e->sha256);
  return f;
}

namespace {

// How long a device's address stands for it in requests that name no MAC: one boot, with room.
constexpr int64_t kAddressAttributionSeconds = 3600;
// A bound on the inventory: file names are the client's to choose.
constexpr size_t kMaxDevices = 100'000;

}  // namespace

Device* FileService::DeviceFor(const Peer& peer, std::string_view path) {
  if (std::optional<std::string> mac = MacFromFileName(BaseName(path))) {
    auto it = devices_.find(*mac);
    return it == devices_.end() ? nullptr : &it->second;
  }
  auto ip = mac_by_ip_.find(peer.ip);
  if (ip == mac_by_ip_.end()) return nullptr;
  auto it = devices_.find(ip->second);
  if (it == devices_.end() ||
      it->second.last_seen < clock_->NowSeconds() - kAddressAttributionSeconds) {
    return nullptr;
  }
  return &it->second;
}

void FileService::RecordSighting(const Peer& peer, std::string_view path,
                                 std::string_view user_agent) {
  auto agent = ParseUserAgent(user_agent);
  std::string_view base = BaseName(path);
  std::optional<std::string> named = MacFromFileName(base);
  std::optional<std::string> mac = named;
  if (!mac && agent && !agent->mac.empty()) mac = agent->mac;
  Device* known = nullptr;
  if (mac) {
    auto it = devices_.find(*mac);
    if (it != devices_.end()) known = &it->second;
  } else {
    known = DeviceFor(peer, path);
    if (known == nullptr) return;
    mac = known->mac;
  }
  int64_t now = clock_->NowSeconds();
  if (known == nullptr) {
    if (devices_.size() >= kMaxDevices) {
      if (!inventory_full_logged_) {
        SR_LOG(kWarning) << "devices: " << kMaxDevices << " known; new ones are not recorded";
        inventory_full_logged_ = true;
      }
      return;
    }
    known = &devices_[*mac];
    known->mac = *mac;
    known->first_seen = now;
  }
  Device& d = *known;
  d.last_seen = now;
  d.ip = peer.ip;
  d.protocol = peer.protocol;
  if (agent) {
    d.model = agent->model;
    d.firmware = agent->firmware;
    if (!agent->mac.empty()) d.serial = agent->mac;
  }
  // A boot: the boot log arrives, or the phone reads its own master config (PHONES.md).
  UploadName upload = ClassifyUpload(base);
  bool own_config = named && IsMasterConfigName(base);
  if ((upload.kind == UploadName::kLog && upload.what == "boot") || own_config) d.last_boot = now;
  if (std::optional<std::string> part = PartNumberFromFileName(base)) d.part_number = *part;
  mac_by_ip_[peer.ip] = *mac;
  dirty_devices_.insert(*mac);
  ask_ahead_->Sighted(d, path);
}

bool FileService::ServedAsCached(const cache::Entry* e) const {
  return e != nullptr && (e->source != cache::Source::kOrigin || e->fresh_until == 0 ||
                          clock_->NowSeconds() < e->fresh_until);
}

bool FileService::FetchAhead(const std::string& path) {
  if (fetcher_ == nullptr || !fetcher_->enabled() || ServedAsCached(cache_->Lookup(path)) ||
      fetcher_->KnownMissing(path) || ClassifyUpload(BaseName(path)).kind == UploadName::kLog ||
      fetcher_->queued(sync::Priority::kSoon) >= sync::kMaxQueuedSoon) {
    return false;
  }
  fetcher_->Fetch(path, sync::Want::kComplete, [](sync::FetchOutcome) {}, sync::Priority::kSoon);
  return true;
}

FileService::~FileService() = default;

void FileService::CountServed(const Peer& peer, std::string_view path, uint64_t bytes) {
  served_bytes_[static_cast<size_t>(ContentClassOf(path))] += bytes;
  if (Device* d = DeviceFor(peer, path)) {
    ++d->files_fetched;
    dirty_devices_.insert(d->mac);
  }
}

void FileService::CountFailed(const Peer& peer, std::string_view path) {
  if (Device* d = DeviceFor(peer, path)) {
    ++d->files_failed;
    dirty_devices_.insert(d->mac);
  }
}

void FileService::CountUploaded(const std::string& mac, uint64_t bytes) {
  auto it = devices_.find(mac);
  if (it == devices_.end()) return;
  it->second.upload_bytes += bytes;
  dirty_devices_.insert(mac);
}

}  // namespace siterelay::files
