// What cached files say, read and parsed once per content. The catalog's digest of a path is
// compared on every ask (a lookup, no I/O); the file is opened and parsed again only when the
// catalog names other bytes than last time, so asking per device of thousands costs lookups.
// Only catalog entries are read (never a phone's log from the spool) and the origin is never
// asked. Loop thread (FileService's).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "relay/base/sha256.h"
#include "relay/files/file_service.h"
#include "relay/files/master_config.h"

namespace siterelay::files {

// The whole of a cached file, nullopt past `max` bytes or on a read error.
std::optional<std::string> ReadWhole(const OpenFile& f, size_t max);

template <typename T>
class ParsedFiles {
 public:
  // `parse` turns a file's bytes (at most `max_bytes`) into a T, or nullopt when it says nothing.
  using Parse = std::function<std::optional<T>(const std::string& bytes)>;
  ParsedFiles(FileService* files, size_t max_bytes, Parse parse)
      : files_(files), max_bytes_(max_bytes), parse_(std::move(parse)) {}

  // What the cached file at `path` says; nullptr when it is not cached, too big, or says nothing.
  // Valid until the next Get() of the same path.
  const T* Get(const std::string& path) {
    std::optional<DirEntry> st = files_->Stat(path);
    if (!st) return nullptr;
    auto it = memo_.find(path);
    if (it == memo_.end() || it->second.sha256 != st->sha256) {
      Reading r;
      r.sha256 = st->sha256;
      Result<OpenFile> f = files_->OpenCached(path);
      if (f.ok() && f->has_digest && f->sha256 == st->sha256) {
        if (std::optional<std::string> bytes = ReadWhole(*f, max_bytes_)) r.value = parse_(*bytes);
      }
      it = memo_.insert_or_assign(path, std::move(r)).first;
    }
    return it->second.value ? &*it->second.value : nullptr;
  }

 private:
  struct Reading {
    Digest sha256;
    std::optional<T> value;
  };
  FileService* files_;
  size_t max_bytes_;
  Parse parse_;
  std::map<std::string, Reading> memo_;
};

// The master config a phone reads (PHONES.md): its own <mac>.cfg when the relay has it, else
// 000000000000.cfg, both in `dir` ("" for the root, else ending in '/').
class MasterConfigs {
 public:
  explicit MasterConfigs(FileService* files);
  // nullptr when neither is cached or the one that is does not parse.
  const MasterConfig* For(std::string_view dir, std::string_view mac);
  // The cached master config at exactly `path`; nullptr when it is not cached or does not parse.
  const MasterConfig* Read(const std::string& path) { return files_.Get(path); }

 private:
  ParsedFiles<MasterConfig> files_;
};

}  // namespace siterelay::files
