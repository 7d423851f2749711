// libFuzzer target for MaskSecrets() (relay/base/log.h).
//
// Every log line passes through MaskSecrets(), so it sees peer bytes: it must never crash. The
// property that matters is that a URL password never reaches the log. The target builds a line
// that certainly holds one, surrounded by arbitrary text on both sides:
//   "x" + text + " https://u:" + pw + "@h/ " + text
// where `text` is the first half of the input and `pw` the [A-Za-z0-9] bytes of the second half
// (at least 6, so it cannot match by accident in "https" or "****"). The text around it may
// hold anything, including half-URLs and "Basic " tokens; pw must still not appear in the output.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "relay/base/log.h"
#include "relay/base/strings.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  // The raw input on its own: no crash, and text with nothing to mask comes back unchanged.
  // "Basic " is matched case-insensitively (RFC 7235), so look for it in a lower-case copy.
  std::string plain = siterelay::MaskSecrets(in);
  if (in.find("://") == std::string_view::npos &&
      siterelay::AsciiToLower(in).find("basic ") == std::string::npos) {
    FUZZ_CHECK(plain == in);
  }

  std::string_view text = in.substr(0, size / 2);
  std::string pw;
  for (char c : in.substr(size / 2)) {
    if (IsAlnum(c)) pw.push_back(c);
  }
  if (pw.size() < 6) return 0;
  std::string prefix = "x" + std::string(text);
  // The surrounding text may spell pw itself; that copy is not a secret, so the check would lie.
  // pw is alphanumeric and every separator below is not, so these are the only other copies.
  if (prefix.find(pw) != std::string::npos) return 0;

  std::string line = prefix + " https://u:" + pw + "@h/ " + std::string(text);
  std::string masked = siterelay::MaskSecrets(line);
  FUZZ_CHECK(masked.find(pw) == std::string::npos);
  return 0;
}
