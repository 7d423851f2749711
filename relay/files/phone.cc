#include "relay/files/phone.h"

#include <array>

#include "relay/base/strings.h"

namespace siterelay::files {
namespace {

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool IsMac(std::string_view s) {
  if (s.size() != 12) return false;
  for (char c : s) {
    if (!IsHex(c)) return false;
  }
  return true;
}

constexpr std::array<std::string_view, 2> kLogs = {"app.log", "boot.log"};
constexpr std::array<std::string_view, 5> kSettings = {"phone.cfg", "web.cfg", "local.cfg",
                                                       "directory.xml", "calls.xml"};

// A printable, bounded field for the device list: what a phone sends is not trusted.
std::string Field(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    auto u = static_cast<unsigned char>(c);
    if (u > 0x20 && u < 0x7f) out.push_back(c);
  }
  return out;
}

}  // namespace

UploadName ClassifyUpload(std::string_view base) {
  UploadName n;
  if (base.size() < 14 || base[12] != '-' || !IsMac(base.substr(0, 12))) return n;
  std::string_view rest = base.substr(13);
  for (std::string_view log : kLogs) {
    if (EqualsIgnoreCase(rest, log)) {
      n.kind = UploadName::kLog;
      n.what = std::string(log.substr(0, log.find('.')));
    }
  }
  for (std::string_view s : kSettings) {
    if (EqualsIgnoreCase(rest, s)) {
      n.kind = UploadName::kSettings;
      n.what = std::string(s);
    }
  }
  if (n.kind != UploadName::kNone) n.mac = AsciiToLower(base.substr(0, 12));
  return n;
}

std::optional<std::string> MacFromFileName(std::string_view base) {
  if (base.size() < 13 || !IsMac(base.substr(0, 12)) || (base[12] != '-' && base[12] != '.')) {
    return std::nullopt;
  }
  std::string mac = AsciiToLower(base.substr(0, 12));
  if (mac == "000000000000") return std::nullopt;
  return mac;
}

std::optional<std::string> PartNumberFromFileName(std::string_view base) {
  if (base.size() < 16 || base[4] != '-' || base[10] != '-' || base[14] != '.') return std::nullopt;
  for (size_t i : {0u, 1u, 2u, 3u, 5u, 6u, 7u, 8u, 9u, 11u, 12u, 13u}) {
    if (base[i] < '0' || base[i] > '9') return std::nullopt;
  }
  return std::string(base.substr(0, 14));
}

bool IsMasterConfigName(std::string_view base) {
  return base.size() == 16 && IsMac(base.substr(0, 12)) && EqualsIgnoreCase(base.substr(12), ".cfg");
}

std::optional<PhoneAgent> ParseUserAgent(std::string_view ua) {
  size_t marker = ua.find("-UA/");
  if (marker == std::string_view::npos) return std::nullopt;
  size_t start = ua.rfind(' ', marker);
  start = start == std::string_view::npos ? 0 : start + 1;
  std::string_view product = ua.substr(start, marker - start);  // "PolycomVVX-VVX_500"
  if (product.substr(0, 4) != "Poly") return std::nullopt;
  size_t dash = product.find('-');
  std::string_view model = dash == std::string_view::npos ? product.substr(4)
                                                          : product.substr(dash + 1);
  std::string_view after = ua.substr(marker + 4);
  std::string_view firmware = after.substr(0, after.find(' '));
  PhoneAgent a;
  a.model = Field(model);
  a.firmware = Field(firmware);
  size_t sn = ua.find("(SN:");
  if (sn != std::string_view::npos && sn + 16 <= ua.size() && IsMac(ua.substr(sn + 4, 12))) {
    a.mac = AsciiToLower(ua.substr(sn + 4, 12));
  }
  if (a.model.empty()) return std::nullopt;
  return a;
}

}  // namespace siterelay::files
