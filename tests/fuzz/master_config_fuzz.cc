// libFuzzer target for ParseMasterConfig() and the per-phone functions of
// relay/files/master_config.h.
//
// A master config comes from the origin or an operator and decides what config-aware prefetch
// fetches, so beyond never crashing: an error is one InvalidArgument line naming the line; an
// accepted file stays within the limits, holds no NUL, and means the same after being written out
// and read again; substituting a phone's facts never adds a '/' or a '.' to a value (so no "..");
// versions found are dotted versions that occur in their input.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/base/strings.h"
#include "relay/files/master_config.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using siterelay::files::MasterConfig;
using siterelay::files::ModelOverride;
using siterelay::files::PhoneFacts;
namespace mc = siterelay::files;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// 3 or 4 runs of 1-10 digits joined by dots, taken from `source`.
void CheckVersion(const std::optional<std::string>& v, std::string_view source) {
  if (!v.has_value()) return;
  FUZZ_CHECK(source.find(*v) != std::string_view::npos);
  size_t runs = 0;
  size_t begin = 0;
  while (begin <= v->size()) {
    size_t dot = v->find('.', begin);
    if (dot == std::string::npos) dot = v->size();
    size_t len = dot - begin;
    FUZZ_CHECK(len >= 1 && len <= 10);
    for (size_t i = begin; i < dot; ++i) FUZZ_CHECK(IsDigit((*v)[i]));
    ++runs;
    begin = dot + 1;
  }
  FUZZ_CHECK(runs == 3 || runs == 4);
}

void CheckValue(std::string_view value) {
  FUZZ_CHECK(value.size() <= mc::kMaxMasterConfigValueBytes);
  FUZZ_CHECK(value.find('\0') == std::string_view::npos);
}

void CheckList(const std::vector<std::string>& list) {
  for (const std::string& item : list) {
    CheckValue(item);
    FUZZ_CHECK(!item.empty());
    FUZZ_CHECK(item.find(',') == std::string::npos);
    FUZZ_CHECK(item.front() != ' ' && item.back() != ' ');
  }
}

size_t Count(std::string_view s, char c) {
  size_t n = 0;
  for (char x : s) n += x == c ? 1 : 0;
  return n;
}

// Token values are letters, digits and '-': substitution keeps every '/' and '.' it had and adds
// none, so it cannot make a path escape or change its shape.
void CheckSubstituted(std::string_view value, const std::string& out) {
  FUZZ_CHECK(out.find('\0') == std::string::npos);
  FUZZ_CHECK(Count(out, '/') == Count(value, '/'));
  FUZZ_CHECK(Count(out, '.') == Count(value, '.'));
}

void CheckPhone(const MasterConfig& c, const PhoneFacts& facts) {
  std::string image = mc::ImageFor(c, facts);
  const ModelOverride* m = mc::FindModelOverride(c, mc::ModelKey(facts.model));
  const std::string& source =
      m != nullptr && !m->app_file_path.empty() ? m->app_file_path : c.app_file_path;
  if (!image.empty()) CheckSubstituted(source, image);
  std::string split = mc::SplitImageFor(c, facts);
  if (!split.empty()) {
    FUZZ_CHECK(!image.empty());
    FUZZ_CHECK(split.find('\0') == std::string::npos);
    FUZZ_CHECK(split.size() == image.size() ||
               split.size() == image.size() + facts.part_number.size() + 1);
    FUZZ_CHECK(Count(split, '/') == Count(image, '/'));
  }
  for (const std::string& file : mc::ConfigFilesFor(c, facts)) {
    FUZZ_CHECK(!file.empty() && file.find('\0') == std::string::npos);
  }
  CheckVersion(mc::VersionInPath(image), image);
}

// Writes `c` back out as a master config: every value escaped, each override as a child.
void AppendEscaped(std::string& xml, std::string_view value) {
  for (char ch : value) {
    switch (ch) {
      case '&':
        xml += "&amp;";
        break;
      case '<':
        xml += "&lt;";
        break;
      case '"':
        xml += "&quot;";
        break;
      case '\t':
        xml += "&#9;";
        break;
      case '\n':
        xml += "&#10;";
        break;
      case '\r':
        xml += "&#13;";
        break;
      default:
        xml.push_back(ch);
    }
  }
}

void AppendAttribute(std::string& xml, std::string_view name, std::string_view value) {
  xml += ' ';
  xml += name;
  xml += "=\"";
  AppendEscaped(xml, value);
  xml += '"';
}

std::string Join(const std::vector<std::string>& list) {
  std::string out;
  for (const std::string& item : list) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

std::string Write(const MasterConfig& c) {
  std::string xml = "<?xml version=\"1.0\" standalone=\"yes\"?>\n<APPLICATION";
  AppendAttribute(xml, "APP_FILE_PATH", c.app_file_path);
  AppendAttribute(xml, "DECT_FILE_PATH", c.dect_file_path);
  AppendAttribute(xml, "CONFIG_FILES", Join(c.config_files));
  AppendAttribute(xml, "MISC_FILES", Join(c.misc_files));
  AppendAttribute(xml, "LOG_FILE_DIRECTORY", c.log_file_directory);
  AppendAttribute(xml, "OVERRIDES_DIRECTORY", c.overrides_directory);
  AppendAttribute(xml, "CONTACTS_DIRECTORY", c.contacts_directory);
  AppendAttribute(xml, "LICENSE_DIRECTORY", c.license_directory);
  AppendAttribute(xml, "USER_PROFILES_DIRECTORY", c.user_profiles_directory);
  AppendAttribute(xml, "CALL_LISTS_DIRECTORY", c.call_lists_directory);
  AppendAttribute(xml, "COREFILE_DIRECTORY", c.corefile_directory);
  xml += ">\n";
  for (const ModelOverride& m : c.models) {
    xml += "  <APPLICATION_" + m.key;
    AppendAttribute(xml, "APP_FILE_PATH_" + m.key, m.app_file_path);
    AppendAttribute(xml, "CONFIG_FILES_" + m.key, Join(m.config_files));
    xml += "/>\n";
  }
  xml += "</APPLICATION>\n";
  return xml;
}

bool SameModels(const std::vector<ModelOverride>& a, const std::vector<ModelOverride>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].key != b[i].key || a[i].app_file_path != b[i].app_file_path ||
        a[i].config_files != b[i].config_files) {
      return false;
    }
  }
  return true;
}

bool Same(const MasterConfig& a, const MasterConfig& b) {
  return a.app_file_path == b.app_file_path && a.dect_file_path == b.dect_file_path &&
         a.config_files == b.config_files && a.misc_files == b.misc_files &&
         a.log_file_directory == b.log_file_directory &&
         a.overrides_directory == b.overrides_directory &&
         a.contacts_directory == b.contacts_directory &&
         a.license_directory == b.license_directory &&
         a.user_profiles_directory == b.user_profiles_directory &&
         a.call_lists_directory == b.call_lists_directory &&
         a.corefile_directory == b.corefile_directory && SameModels(a.models, b.models);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view xml(reinterpret_cast<const char*>(data), size);

  // The version scanners take any bytes.
  CheckVersion(mc::VersionInPath(xml), xml);
  CheckVersion(mc::ParseVersionFile(xml), xml);

  auto r = mc::ParseMasterConfig(xml);
  if (!r.ok()) {
    // One line for an operator's log, naming the line (or the size, the one error without one).
    const std::string& message = r.status().message();
    FUZZ_CHECK(r.status().Is(siterelay::StatusCode::kInvalidArgument));
    FUZZ_CHECK(message.starts_with("master config line ") ||
               (size > mc::kMaxMasterConfigBytes && message.starts_with("master config is ")));
    FUZZ_CHECK(message.find('\n') == std::string::npos && message.find('\0') == std::string::npos);
    FUZZ_CHECK(message.size() < 1024);
    return 0;
  }
  const MasterConfig& c = *r;
  FUZZ_CHECK(size <= mc::kMaxMasterConfigBytes);
  for (const std::string* v :
       {&c.app_file_path, &c.dect_file_path, &c.log_file_directory, &c.overrides_directory,
        &c.contacts_directory, &c.license_directory, &c.user_profiles_directory,
        &c.call_lists_directory, &c.corefile_directory}) {
    CheckValue(*v);
  }
  CheckList(c.config_files);
  CheckList(c.misc_files);
  FUZZ_CHECK(c.models.size() <= mc::kMaxMasterConfigElements + mc::kMaxMasterConfigAttributes);
  for (size_t i = 0; i < c.models.size(); ++i) {
    const ModelOverride& m = c.models[i];
    FUZZ_CHECK(!m.key.empty() && m.key.size() < mc::kMaxMasterConfigNameBytes);
    CheckValue(m.app_file_path);
    CheckList(m.config_files);
    FUZZ_CHECK(mc::FindModelOverride(c, m.key) == &m);  // keys unique, ignoring case
    for (size_t j = 0; j < i; ++j) FUZZ_CHECK(!siterelay::EqualsIgnoreCase(c.models[j].key, m.key));
  }

  // Deterministic, and the same after a round trip through a file written from the result.
  auto again = mc::ParseMasterConfig(xml);
  FUZZ_CHECK(again.ok() && Same(*again, c));
  // Written out, a key needs room for the longer prefix, APP_FILE_PATH_ (a key read after
  // CONFIG_FILES_ may be one byte longer than that allows), and the models one element each.
  bool writable = c.models.size() < mc::kMaxMasterConfigElements;
  for (const ModelOverride& m : c.models) {
    writable = writable && m.key.size() + 14 <= mc::kMaxMasterConfigNameBytes;
  }
  if (writable) {
    std::string written = Write(c);
    if (written.size() <= mc::kMaxMasterConfigBytes) {
      auto reread = mc::ParseMasterConfig(written);
      FUZZ_CHECK(reread.ok() && Same(*reread, c));
    }
  }

  CheckPhone(c, PhoneFacts{"0004F282E824", "VVX_500", "3111-44500-001"});
  CheckPhone(c, PhoneFacts{});
  for (const ModelOverride& m : c.models) {  // every model the file names, known facts or not
    CheckPhone(c, PhoneFacts{"0004f2aabbcc", m.key, "2345-12500-001"});
  }
  return 0;
}
