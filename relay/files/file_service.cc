#include "relay/files/file_service.h"

#include <netinet/in.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "relay/base/http_date.h"
#include "relay/base/log.h"
#include "relay/base/mime.h"
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
    : cache_(cache), clock_(clock), fetcher_(fetcher) {
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
    devices_.emplace(d.mac, d);
  }
}

void FileService::FlushDevices(uv_loop_t* loop, std::function<void(Status)> done) {
  if (dirty_devices_.empty()) {
    if (done) done(Status::Ok());
    return;
  }
  std::vector<cache::DeviceRecord> rows;
  for (const std::string& mac : dirty_devices_) {
    const Device& d = devices_.at(mac);
    rows.push_back({d.mac, d.model, d.firmware, d.ip, std::string(ProtocolName(d.protocol)),
                    d.first_seen, d.last_seen});
  }
  dirty_devices_.clear();
  cache_->WriteAsync(
      loop,
      [rows = std::move(rows)](cache::Catalog& catalog) { return catalog.UpsertDevices(rows); },
      [done = std::move(done)](Status s) {
        if (!s.ok()) SR_LOG(kWarning) << "devices: " << s.ToString();
        if (done) done(s);
      });
}

void FileService::Reload(const Config& config) {
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

void FileService::Open(std::string_view path, ReadMode mode, OpenCallback done) {
  if (ClassifyUpload(BaseName(path)).kind == UploadName::kLog || fetcher_ == nullptr ||
      !fetcher_->enabled()) {
    done(OpenCached(path));
    return;
  }
  // Local content (uploads, imports, manifest sets) and fresh pull-through copies are served as
  // they are; a miss or a stale copy goes to the origin (CONTRACT.md "Reads").
  const cache::Entry* e = cache_->Lookup(path);
  if (e != nullptr && (e->source != cache::Source::kOrigin || e->fresh_until == 0 ||
                       clock_->NowSeconds() < e->fresh_until)) {
    done(OpenCached(path));
    return;
  }
  if (fetcher_->KnownMissing(path)) {
    done(Status::NotFound(std::string(path) + " is not on the origin"));
    return;
  }
  std::string p(path);
  sync::Want want = mode == ReadMode::kStream ? sync::Want::kBody : sync::Want::kComplete;
  fetcher_->Fetch(p, want, [this, p, done = std::move(done)](sync::FetchOutcome o) {
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
      done(OpenCached(p));  // revalidated, or complete and published
    } else if (o.status.Is(StatusCode::kNotFound)) {
      done(o.status);  // the origin is the authority on what exists
    } else {
      done(OpenAfterFailure(p, o.status));
    }
  });
}

Result<OpenFile> FileService::OpenAfterFailure(std::string_view path, const Status& why) {
  auto f = OpenCached(path);
  if (f.ok()) {
    // Stale if error: a phone gets the last good copy rather than nothing.
    ++stale_serves_;
    SR_LOG(kWarning) << "serving the last good copy of " << path << ": origin failed: "
                     << why.message();
    return f;
  }
  return f.status().Is(StatusCode::kNotFound) ? why : f.status();
}

namespace {

int64_t EntryModified(const cache::Entry& e) {
  auto lm = ParseHttpDate(e.last_modified);
  return lm ? *lm : e.fetched_at;
}

}  // namespace

Result<std::vector<DirEntry>> FileService::List(std::string_view dir) const {
  std::string prefix(dir);
  if (!prefix.empty()) prefix += '/';
  std::vector<DirEntry> out;
  for (const cache::Entry* e : cache_->EntriesUnder(prefix)) {
    std::string_view rest = std::string_view(e->path).substr(prefix.size());
    size_t slash = rest.find('/');
    std::string_view name = rest.substr(0, slash);
    int64_t modified = EntryModified(*e);
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
  d.modified = EntryModified(*e);
  return d;
}

bool FileService::IsDirectory(std::string_view path) const {
  if (path.empty()) return true;
  std::string prefix(path);
  prefix += '/';
  return !cache_->EntriesUnder(prefix).empty();
}

Result<OpenFile> FileService::OpenCached(std::string_view path) {
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
  std::string file = cache_->store().PathOf(e->sha256);
  int raw = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) return PosixError("open " + file, errno);
  OpenFile f;
  f.fd = ScopedFd(FileSystem::Default(), raw);
  struct stat st;
  if (::fstat(raw, &st) != 0) return PosixError("fstat " + file, errno);
  if (static_cast<uint64_t>(st.st_size) != e->size) {
    // Damaged on disk: never serve bytes that do not match the catalog (cache verify repairs).
    SR_LOG(kError) << "cache: object " << e->sha256.Hex() << " for " << path << " has "
                   << st.st_size << " bytes, catalog says " << e->size << "; not serving it";
    return Status::Corruption("object size mismatch for " + std::string(path));
  }
  f.size = e->size;
  f.sha256 = e->sha256;
  f.content_type = e->content_type;
  f.path = e->path;
  f.modified = EntryModified(*e);
  if (f.modified == 0) f.modified = static_cast<int64_t>(st.st_mtime);
  cache_->Touch(e->sha256);
  return f;
}

void FileService::RecordSighting(const Peer& peer, std::string_view path,
                                 std::string_view user_agent) {
  auto agent = ParseUserAgent(user_agent);
  std::optional<std::string> mac = MacFromFileName(BaseName(path));
  if (!mac && agent && !agent->mac.empty()) mac = agent->mac;
  if (!mac) return;
  int64_t now = clock_->NowSeconds();
  auto [it, inserted] = devices_.try_emplace(*mac);
  Device& d = it->second;
  if (inserted) {
    d.mac = *mac;
    d.first_seen = now;
  }
  d.last_seen = now;
  d.ip = peer.ip;
  d.protocol = peer.protocol;
  if (agent) {
    d.model = agent->model;
    d.firmware = agent->firmware;
  }
  dirty_devices_.insert(*mac);
}

}  // namespace siterelay::files
