// AskAhead: asks the origin for a phone's own files before the phone does (issue 9's boot storm).
//
// A booting phone reads its master config, its image, then a handful of small files of its own
// (PHONES.md, "Boot": <mac>-phone.cfg, -web.cfg, -license.cfg, -calls.xml, -directory.xml, its
// CONFIG_FILES), most of them 404s. Each is a miss and an origin round trip; in a power-cut storm
// of a thousand phones they all come at once, after the image, and queue for the origin's
// connections: 6,000 round trips after the image instead of during it. So once a device is
// seen and its master config is cached, the files that config names for it (PhoneFilesFor) are
// asked for at sync::Priority::kSoon while the phone is busy with its image: each answer, a body
// or a remembered 404, is here when the phone asks. kSoon comes after every phone's own ask and
// leaves slots free for them (sync/fetcher.h), so asking ahead never delays a phone.
//
// Once per device per boot (Device::last_boot); a device whose config is not cached yet is asked
// for at its next sighting. Files cached fresh, known missing or already on the way are skipped
// (FileService::FetchAhead). Loop thread (FileService's).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "relay/files/file_service.h"
#include "relay/files/parsed_files.h"

namespace siterelay::files {

class AskAhead {
 public:
  explicit AskAhead(FileService* files) : files_(files) {}

  // `d` was seen asking for or sending `path` (a catalog path).
  void Sighted(const Device& d, std::string_view path);
  // Files asked for ahead, in all.
  uint64_t asked() const { return asked_; }

 private:
  struct State {
    std::string dir;     // of the last master config it read ("" or ending in '/')
    int64_t boot = -1;   // the last_boot its files were asked for; -1: not yet
  };
  FileService* files_;
  std::map<std::string, State, std::less<>> devices_;  // by MAC
  uint64_t asked_ = 0;
};

}  // namespace siterelay::files
