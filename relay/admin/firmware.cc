#include "relay/admin/firmware.h"

#include <unistd.h>

#include "relay/files/path.h"

namespace siterelay::admin {
namespace {

constexpr size_t kMaxVersionFileBytes = 4096;

// The whole of a cached file, nullopt past `max` or on a read error.
std::optional<std::string> ReadAll(const files::OpenFile& f, size_t max) {
  if (f.size > max) return std::nullopt;
  std::string bytes(f.size, '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = ::pread(f.fd.get(), bytes.data() + got, bytes.size() - got,
                        static_cast<off_t>(got));
    if (n <= 0) return std::nullopt;
    got += static_cast<size_t>(n);
  }
  return bytes;
}

}  // namespace

template <typename T, typename Parse>
const T* FirmwareExpectations::Read(std::map<std::string, Reading<T>>* memo,
                                    const std::string& path, size_t max, Parse parse) {
  // Catalog entries only (Stat, no I/O): never a phone's log from the spool. The file is opened
  // only when the catalog names other bytes than last time, so a device list of thousands of
  // phones costs lookups, not opens.
  std::optional<files::DirEntry> st = files_->Stat(path);
  if (!st) return nullptr;
  auto it = memo->find(path);
  if (it == memo->end() || it->second.sha256 != st->sha256) {
    Reading<T> r;
    r.sha256 = st->sha256;
    Result<files::OpenFile> f = files_->OpenCached(path);
    if (f.ok() && f->has_digest && f->sha256 == st->sha256) {
      if (std::optional<std::string> bytes = ReadAll(*f, max)) r.value = parse(*bytes);
    }
    it = memo->insert_or_assign(path, std::move(r)).first;
  }
  return it->second.value ? &*it->second.value : nullptr;
}

std::string FirmwareExpectations::For(const files::Device& d) {
  auto parse_config = [](const std::string& xml) -> std::optional<files::MasterConfig> {
    Result<files::MasterConfig> c = files::ParseMasterConfig(xml);
    if (!c.ok()) return std::nullopt;
    return std::move(c).value();
  };
  const files::MasterConfig* config =
      Read(&configs_, d.mac + ".cfg", files::kMaxMasterConfigBytes, parse_config);
  if (config == nullptr) {
    config = Read(&configs_, "000000000000.cfg", files::kMaxMasterConfigBytes, parse_config);
  }
  if (config == nullptr) return "";
  files::PhoneFacts facts;
  facts.mac = d.mac;
  facts.model = d.model;
  std::string image = files::ImageFor(*config, facts);
  if (image.empty()) return "";
  if (std::optional<std::string> v = files::VersionInPath(image)) return *v;
  if (files::IsUrl(image)) return "";
  // The master configs are at the root, so the image path is relative to it.
  Result<std::string> normal = files::NormalizePath(image);
  if (!normal.ok()) return "";
  size_t slash = normal->rfind('/');
  std::string dir = slash == std::string::npos ? "" : normal->substr(0, slash + 1);
  const std::string* v = Read(&version_files_, dir + "sip.ver", kMaxVersionFileBytes,
                              [](const std::string& text) { return files::ParseVersionFile(text); });
  return v != nullptr ? *v : "";
}

}  // namespace siterelay::admin
