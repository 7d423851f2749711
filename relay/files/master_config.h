// What a Poly master config file (`<mac>.cfg`, `000000000000.cfg`) tells a phone to fetch
// (PHONES.md, "The master file is XML"). Pure functions over bytes; no I/O, no logging; any
// thread; fuzzed (tests/fuzz/master_config_fuzz.cc). Results are plain values owned by the caller.
//
// The console uses this to show which firmware image a phone's config points at; config-aware
// prefetch uses it to fetch every file a new master config names before the phones see it. The
// file comes from the origin or an operator, so it is read as hostile input: a strict reader for
// exactly the XML subset Poly's master files use, with every size bounded (the limits below).
//
// The XML subset (XML 1.0, and where this reader is narrower or looser than XML, it says so):
// - The input is UTF-8 (a UTF-8 byte order mark first is skipped; UTF-16 is refused with a hint
//   to re-save as UTF-8). Control characters other than tab, CR and LF are refused. A declared
//   encoding must be UTF-8 or US-ASCII; ISO-8859-1 is accepted only for files that are pure ASCII,
//   so no byte is ever decoded under the wrong charset.
// - An optional XML declaration (`<?xml version="1.0" standalone="yes"?>`) first; looser than
//   XML, whitespace may precede it. No other processing instruction anywhere.
// - Comments (`<!-- -->`, without "--" inside, as XML requires) before, inside and after the root.
// - NO DOCTYPE, anywhere: so no entity declarations, no entity expansion ("billion laughs"), no
//   external entities. A file with one is refused, not read with the DTD ignored.
// - Elements with attributes in single or double quotes, self-closing or with end tags, nested at
//   most kMaxMasterConfigDepth deep. Character data between elements is ignored (its references
//   must still be well formed); CDATA sections inside an element are skipped as character data.
//   Names are ASCII XML names (letters, digits, '_', ':', '-', '.').
// - In attribute values: the five predefined entities (&amp; &lt; &gt; &quot; &apos;) and
//   character references (&#NN; &#xNN;) to XML characters (no NUL, no surrogates, no U+FFFE/F),
//   written out as UTF-8. Literal tab, CR and LF in a value become spaces (XML 3.3.3); a
//   character reference to one stays as it is. A literal '<' in a value is refused.
// - Tag names are matched exactly (the root must be `APPLICATION`). Attribute names are matched
//   ASCII case-insensitively, so two names that differ only in case are a duplicate. Attributes
//   this reader does not know are ignored, as are elements other than the root's
//   `APPLICATION_<key>` children.
// Every error is InvalidArgument with a message that names the line and what is wrong.
//
// What a value means (Poly SoundPoint IP Administrator's Guide, "Master Configuration Files"):
// APP_FILE_PATH and each CONFIG_FILES entry is a path relative to the master config's directory
// or a URL with its own protocol, user and password (`http://usr:pwd@server/dir/sip.ld`). So:
// - A value may carry a password: pass it through MaskSecrets() (relay/base/log.h) before
//   logging or showing it.
// - Values are returned as written (trimmed, tokens substituted), NOT normalised: a value may say
//   "../x" or "/etc/x". A caller that turns one into a catalog path must check IsUrl() first, then
//   join it to the config's directory and run the result through NormalizePath()
//   (relay/files/path.h), which refuses anything that escapes the root. Token substitution itself
//   never adds a '/' or "..": facts that are not plain MACs, model names or part numbers count as
//   unknown.
//
// Unconfirmed (no source found; see PHONES.md): what an empty per-model attribute means (here: no
// override, the generic value applies); what [PHONE_MODEL] expands to (here: the model key,
// "VVX500"); whether the split image of an APP_FILE_PATH with a directory keeps the directory
// (here: yes, `fw/3111-44500-001.sip.ld`); whether the phone falls back to the name as written when
// the split image is missing (prefetch should fetch both); the format of sip.ver.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/base/status.h"

namespace siterelay::files {

// Limits (one place, as in the front-ends' limits.h). Each is the largest accepted value; one more
// is InvalidArgument. Poly's own files are a few KiB with a few dozen elements.
//
// The whole file. Master configs name files; they do not contain them.
inline constexpr size_t kMaxMasterConfigBytes = 1 << 20;
// Element nesting, the root being depth 1. Poly's files use 2.
inline constexpr size_t kMaxMasterConfigDepth = 8;
// Elements in the file, the root included (one per phone model in Poly's default file).
inline constexpr size_t kMaxMasterConfigElements = 1024;
// Attributes on one element (the root has about 13).
inline constexpr size_t kMaxMasterConfigAttributes = 64;
// An element or attribute name ("USER_PROFILES_DIRECTORY" is 23).
inline constexpr size_t kMaxMasterConfigNameBytes = 128;
// An attribute value after decoding. Poly caps a file name at 255 characters and the CONFIG_FILES
// list at 2047; twice that leaves room without letting one value grow without bound.
inline constexpr size_t kMaxMasterConfigValueBytes = 4096;

// One `<APPLICATION_VVX500 APP_FILE_PATH_VVX500="..." CONFIG_FILES_VVX500="..."/>`, or the same
// attributes on the root. Empty means "not given" (the generic value applies).
struct ModelOverride {
  std::string key;                        // as written after APP_FILE_PATH_/CONFIG_FILES_
  std::string app_file_path;              // trimmed
  std::vector<std::string> config_files;  // split at ',', trimmed, empties dropped
};

// The attributes of the root `APPLICATION` element, values as written (references decoded,
// leading and trailing whitespace trimmed). Lists are split at ',' with each entry trimmed and
// empty entries dropped.
struct MasterConfig {
  std::string app_file_path;              // APP_FILE_PATH: the firmware image
  std::string dect_file_path;             // DECT_FILE_PATH
  std::vector<std::string> config_files;  // CONFIG_FILES, in order (the first file wins per Poly)
  std::vector<std::string> misc_files;    // MISC_FILES
  // Where the phone uploads or looks for per-phone files; empty means the config's directory.
  std::string log_file_directory;       // LOG_FILE_DIRECTORY
  std::string overrides_directory;      // OVERRIDES_DIRECTORY
  std::string contacts_directory;       // CONTACTS_DIRECTORY
  std::string license_directory;        // LICENSE_DIRECTORY
  std::string user_profiles_directory;  // USER_PROFILES_DIRECTORY
  std::string call_lists_directory;     // CALL_LISTS_DIRECTORY
  std::string corefile_directory;       // COREFILE_DIRECTORY
  // In order of first appearance; keys unique ASCII case-insensitively. An attribute given twice
  // for one key (on the root and a child, or in two children) is an error; a child's attribute
  // for another model's key (APP_FILE_PATH_VVX600 on APPLICATION_VVX500) is ignored.
  std::vector<ModelOverride> models;
};

// Reads a master config. InvalidArgument for anything outside the subset above, past a limit, or
// whose root is not `APPLICATION` ("not a master config").
Result<MasterConfig> ParseMasterConfig(std::string_view xml);

// The key a model has in the XML: the User-Agent model without underscores ("VVX_500" ->
// "VVX500", "Edge_E450" -> "EdgeE450", "SSIP_7000" -> "SSIP7000"). Compare keys
// case-insensitively: Poly's own file writes "SSDuo".
std::string ModelKey(std::string_view ua_model);

// The override for `model_key` (case-insensitive), or nullptr.
const ModelOverride* FindModelOverride(const MasterConfig& config, std::string_view model_key);

// What one phone brings to its master config.
struct PhoneFacts {
  std::string mac;          // 12 hex digits, any case ("0004f282e824"); else unknown
  std::string model;        // the User-Agent model ("VVX_500"); else unknown
  std::string part_number;  // "3111-44500-001": letters, digits, '-', at most 32; else unknown
};

// `value` with the tokens a phone replaces (matched exactly, upper case): [PHONE_MAC_ADDRESS] ->
// the MAC in lower case (phones request lower-case names, PHONES.md), [PHONE_MODEL] -> the model
// key ("VVX500"), [PHONE_PART_NUMBER] -> the part number. nullopt when the value needs a fact that
// is unknown (empty or malformed): a guessed name is worse than none, since prefetch would fetch
// it. Anything else in brackets is left as written.
std::optional<std::string> SubstituteTokens(std::string_view value, const PhoneFacts& facts);

// The image path a phone will use: its model's APP_FILE_PATH_<key> if given, else APP_FILE_PATH;
// tokens substituted. A phone of unknown model gets APP_FILE_PATH. Empty when there is none or it
// needs an unknown fact.
std::string ImageFor(const MasterConfig& config, const PhoneFacts& facts);

// The split image name: `<part>.<basename>` in the image's directory ("fw/sip.ld" and
// "3111-44500-001" give "fw/3111-44500-001.sip.ld"; PHONES.md: part number + "." +
// APP_FILE_PATH). When the basename already starts with "<part>." the path is returned as it is
// rather than prefixed twice. Empty when either argument is empty.
std::string SplitImageName(std::string_view image_path, std::string_view part_number);
// SplitImageName(ImageFor(config, facts), part number); empty when the part number is unknown.
std::string SplitImageFor(const MasterConfig& config, const PhoneFacts& facts);

// The config files a phone will read, in order: its model's CONFIG_FILES_<key> if that has any
// entry, else CONFIG_FILES; tokens substituted; entries that need an unknown fact are left out.
std::vector<std::string> ConfigFilesFor(const MasterConfig& config, const PhoneFacts& facts);

// The small files a phone reads after its image, in the order it asks (PHONES.md, "Boot"): its
// config files (ConfigFilesFor), then its per-phone files, each in the directory the config names
// for it (empty: the config's own): <mac>-phone.cfg and <mac>-web.cfg in OVERRIDES_DIRECTORY,
// 000000000000-license.cfg and <mac>-license.cfg in LICENSE_DIRECTORY, <mac>-calls.xml in
// CALL_LISTS_DIRECTORY, <mac>-directory.xml and 000000000000-directory.xml in CONTACTS_DIRECTORY.
// The per-phone files only when the MAC is known. Values as written, relative to the config's
// directory or URLs (check IsUrl(), then NormalizePath(), as for every value).
std::vector<std::string> PhoneFilesFor(const MasterConfig& config, const PhoneFacts& facts);

// What a master config makes a site's phones fetch before they run (config-aware prefetch): for
// each of `phones` (model and part number; a MAC is not needed), its image, under the names the
// phone may ask for it in order (its split image, then the name as written: whether a phone falls
// back is unconfirmed), then its config files (those needing a MAC left out: they are per phone),
// then MISC_FILES. Without phones, what a phone of unknown model would fetch. One list of names
// per file, duplicates across phones removed, in first-seen order; values as written (IsUrl(),
// then NormalizePath(), are the caller's).
std::vector<std::vector<std::string>> SiteFilesFor(const MasterConfig& config,
                                                   const std::vector<PhoneFacts>& phones);

// Whether a value is a URL ("scheme://...") rather than a path relative to the master config.
bool IsUrl(std::string_view value);

// The first dotted version (3 or 4 runs of 1-10 digits, "5.9.7" or "5.9.7.47435", no more) in the
// file name of `image_path`, else in its directories from the nearest up: "fw/5.9.7.47435/sip.ld"
// -> "5.9.7.47435", "sip-6.4.2.ld" -> "6.4.2". A URL's scheme and host are skipped, so a host
// "10.1.2.3" is not a version. nullopt if there is none.
std::optional<std::string> VersionInPath(std::string_view image_path);

// The version in a sip.ver (or bootrom.ver) file: the first dotted version token (as above) on its
// first non-empty line, which may carry other text. nullopt if that line has none.
std::optional<std::string> ParseVersionFile(std::string_view sip_ver_contents);

}  // namespace siterelay::files
