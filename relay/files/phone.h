// What a phone's file names and User-Agent say about it (PHONES.md). Pure functions; any thread;
// fuzzed.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace siterelay::files {

// The upload names of CONTRACT.md, matched case-insensitively on the last path segment:
// <mac>-app.log, <mac>-boot.log (logs); <mac>-phone.cfg, -web.cfg, -local.cfg, -directory.xml,
// -calls.xml (settings). <mac> is 12 hex digits.
struct UploadName {
  enum Kind { kNone, kLog, kSettings };
  Kind kind = kNone;
  std::string mac;   // lower case
  std::string what;  // "app" or "boot" for logs; "phone.cfg", "directory.xml"... for settings
};
UploadName ClassifyUpload(std::string_view base_name);

// The MAC a file name starts with ("0004F282E824-web.cfg", "0004f282e824.cfg"), lower-cased;
// nullopt when there is none or it is the all-zero default name (000000000000.cfg names no phone).
std::optional<std::string> MacFromFileName(std::string_view base_name);

// The part number a split image name starts with ("3111-44500-001.sip.ld" -> "3111-44500-001",
// PHONES.md): Poly's four-five-three digits, then a '.'; nullopt otherwise.
std::optional<std::string> PartNumberFromFileName(std::string_view base_name);

// A master config's name (PHONES.md): "000000000000.cfg", or a phone's own "<mac>.cfg"
// (case-insensitively).
bool IsMasterConfigName(std::string_view base_name);

// `FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 (SN:0004f282e824) Type/Application`.
struct PhoneAgent {
  std::string model;     // "VVX_500", "Edge_E450", "SPIP_550"
  std::string firmware;  // "5.9.7.47435"
  std::string mac;       // from "(SN:...)" when present, lower case
};
std::optional<PhoneAgent> ParseUserAgent(std::string_view user_agent);

}  // namespace siterelay::files
