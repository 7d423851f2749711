// Which firmware a phone's master config points it at (issue 8: "a phone whose firmware differs
// from the one its config points at is flagged"). The config is the phone's own <mac>.cfg when
// the relay has it, else 000000000000.cfg; the image is its model's APP_FILE_PATH (master_config.h);
// the version is the one in the image's path ("fw/5.9.7.47435/sip.ld"), else the first line of
// the sip.ver cached next to the image (its format is unconfirmed: PHONES.md). Only cached files
// are read: the origin is never asked. What is not known yields "", and nothing is flagged.
//
// What a file says is remembered by path and content digest (files::ParsedFiles), so the device
// list and /metrics open each file once per change. Loop thread (FileService's).
#pragma once

#include <string>

#include "relay/files/file_service.h"
#include "relay/files/parsed_files.h"

namespace siterelay::admin {

class FirmwareExpectations {
 public:
  explicit FirmwareExpectations(files::FileService* files);

  // The version `d`'s config points at; "" when unknown.
  std::string For(const files::Device& d);

 private:
  files::FileService* files_;
  files::ParsedFiles<std::string> version_files_;
};

}  // namespace siterelay::admin
