// libFuzzer target for what a phone's request says about it (relay/files/phone.h): User-Agents
// and upload names come straight from the LAN. Whatever the parsers accept must be usable as the
// device inventory's key and as a spool file name: a MAC of exactly 12 lower-case hex digits, an
// upload kind with a known suffix, and fields without control characters or newlines that could
// forge a log line.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "relay/files/phone.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

bool Mac(std::string_view m) {
  if (m.size() != 12) return false;
  for (char c : m) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool NoControl(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace siterelay::files;

  if (auto agent = ParseUserAgent(text)) {
    FUZZ_CHECK(agent->mac.empty() || Mac(agent->mac));
    FUZZ_CHECK(NoControl(agent->model) && NoControl(agent->firmware));
    FUZZ_CHECK(agent->model.size() <= text.size() && agent->firmware.size() <= text.size());
  }
  if (auto mac = MacFromFileName(text)) {
    FUZZ_CHECK(Mac(*mac));
    FUZZ_CHECK(*mac != "000000000000");
  }
  UploadName up = ClassifyUpload(text);
  if (up.kind != UploadName::kNone) {
    FUZZ_CHECK(Mac(up.mac));
    FUZZ_CHECK(text.size() > 12);
    if (up.kind == UploadName::kLog) FUZZ_CHECK(up.what == "app" || up.what == "boot");
    FUZZ_CHECK(NoControl(up.what) && up.what.find('/') == std::string::npos);
  }
  return 0;
}
