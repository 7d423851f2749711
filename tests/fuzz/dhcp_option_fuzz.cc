// libFuzzer target for DhcpOptionValue() (relay/base/url.h).
//
// The output is pasted into a DHCP server as option 160 / 66 and parsed by phone firmware that
// splits on '@' and accepts few escapes (PHONES.md), so beyond never crashing it must be a
// fixed point (encoding twice changes nothing, as url.h promises), printable without quoting,
// and carry at most one '@': the one that ends the credentials.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "relay/base/url.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view url(reinterpret_cast<const char*>(data), size);
  auto value = siterelay::DhcpOptionValue(url);
  if (!value.ok()) {
    FUZZ_CHECK(!value.status().message().empty());
    return 0;
  }
  const std::string& out = *value;
  FUZZ_CHECK(!out.empty());
  size_t ats = 0;
  for (char c : out) {
    auto u = static_cast<unsigned char>(c);
    // No space or control character (DEL included): DHCP server configs and phone logs would
    // cut or mangle them. No '\': DOMAIN\user must reach the phone as DOMAIN%5Cuser.
    FUZZ_CHECK(u >= 0x21 && u != 0x7f);
    FUZZ_CHECK(c != '\\');
    if (c == '@') ++ats;
  }
  FUZZ_CHECK(ats <= 1);

  auto again = siterelay::DhcpOptionValue(out);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == out);
  return 0;
}
