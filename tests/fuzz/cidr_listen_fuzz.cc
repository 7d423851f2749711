// libFuzzer target for the small address parsers of relay/base/config.h: Cidr::Parse,
// ListenAddress::Parse and TimeWindow::Parse. Their input is a TOML string from the config file,
// which may hold any byte including NUL (TOML's \u0000), so the whole input goes to each.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "relay/base/config.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using siterelay::Cidr;
using siterelay::ListenAddress;
using siterelay::TimeWindow;

void CheckCidr(std::string_view text) {
  auto cidr = Cidr::Parse(text);
  if (!cidr.ok()) return;
  const Cidr& c = *cidr;
  FUZZ_CHECK(c.prefix >= 0 && c.prefix <= (c.ipv6 ? 128 : 32));
  // The text is what the operator reads in the config; a NUL would end the address inet_pton
  // sees early, so "10.0.0.1\0junk" must not pass as 10.0.0.1.
  FUZZ_CHECK(text.find('\0') == std::string_view::npos);
  // A range contains its own network address, also when a peer shows it IPv4-mapped.
  FUZZ_CHECK(c.Contains(c.bytes, c.ipv6));
  if (!c.ipv6) {
    uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    std::memcpy(mapped + 12, c.bytes, 4);
    FUZZ_CHECK(c.Contains(mapped, true));
  }
}

void CheckListen(std::string_view text) {
  auto addr = ListenAddress::Parse(text);
  if (!addr.ok()) return;
  const ListenAddress& a = *addr;
  FUZZ_CHECK(!a.host.empty());
  // The host goes to bind() as a C string; a NUL in it means the relay binds elsewhere than
  // the address it prints.
  FUZZ_CHECK(a.host.find('\0') == std::string::npos);
  auto again = ListenAddress::Parse(a.ToString());
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == a);
}

void CheckWindow(std::string_view text) {
  auto window = TimeWindow::Parse(text);
  if (!window.ok()) return;
  const TimeWindow& w = *window;
  FUZZ_CHECK(w.any == text.empty());
  if (w.any) return;
  FUZZ_CHECK(w.start_minute >= 0 && w.start_minute < 1440);
  FUZZ_CHECK(w.end_minute >= 0 && w.end_minute < 1440);
  FUZZ_CHECK(w.start_minute != w.end_minute);
  // A window contains its first minute and not its end minute (it is half-open).
  FUZZ_CHECK(w.Contains(w.start_minute));
  FUZZ_CHECK(!w.Contains(w.end_minute));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  CheckCidr(text);
  CheckListen(text);
  CheckWindow(text);
  return 0;
}
