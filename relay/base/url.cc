#include "relay/base/url.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>

#include "relay/base/strings.h"

namespace siterelay {
namespace {

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool KeepInUserinfo(char c) {
  if (IsAlpha(c) || IsDigit(c)) return true;
  switch (c) {
    case '-': case '.': case '_': case '~':                       // unreserved
    case '!': case '$': case '&': case '\'': case '(': case ')':  // sub-delims
    case '*': case '+': case ',': case ';': case '=':
      return true;
    default:
      return false;
  }
}

// RFC 3986 reg-name (letters, digits, '-', '.', '_', '~'), an IPv4 address, or "[IPv6]", then an
// optional ":port".
bool ValidHostPort(std::string_view host) {
  std::string_view port;
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    for (char c : host.substr(1, close - 1)) {
      if (!IsHex(c) && c != ':' && c != '.') return false;
    }
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
  } else {
    size_t colon = host.find(':');
    std::string_view name = host.substr(0, colon);
    if (name.empty()) return false;
    for (char c : name) {
      if (!IsAlpha(c) && !IsDigit(c) && c != '-' && c != '.' && c != '_' && c != '~') return false;
    }
    if (colon != std::string_view::npos) {
      port = host.substr(colon + 1);
      if (port.empty()) return false;
    }
  }
  if (port.size() > 5) return false;
  for (char c : port) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

// Percent-encodes every byte `keep` does not accept, keeping valid escapes ("%40") as they are,
// so that encoding twice changes nothing.
template <typename Keep>
std::string PercentEncode(std::string_view text, Keep keep) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool escape_start = c == '%' && i + 2 < text.size() && IsHex(text[i + 1]) && IsHex(text[i + 2]);
    if (escape_start || keep(c)) {
      out.push_back(c);
      continue;
    }
    auto u = static_cast<unsigned char>(c);
    out.push_back('%');
    out.push_back(kHex[u >> 4]);
    out.push_back(kHex[u & 0xf]);
  }
  return out;
}

// Path, query and fragment may keep RFC 3986 pchar, '/', '?' and '#'; anything else (a
// backslash, a quote, non-ASCII) is escaped.
std::string EncodePath(std::string_view path) {
  return PercentEncode(path, [](char c) {
    return KeepInUserinfo(c) || c == ':' || c == '@' || c == '/' || c == '?' || c == '#';
  });
}

constexpr std::array<std::string_view, 5> kSchemes = {"ftp", "ftps", "tftp", "http", "https"};

}  // namespace

std::string PercentEncodeUserinfo(std::string_view text) {
  return PercentEncode(text, KeepInUserinfo);
}

Result<std::string> DhcpOptionValue(std::string_view url) {
  size_t sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    return Status::InvalidArgument("URL needs a scheme, e.g. ftp://user:password@host");
  }
  std::string_view scheme = url.substr(0, sep);
  bool known = false;
  for (std::string_view s : kSchemes) known = known || EqualsIgnoreCase(scheme, s);
  if (!known) {
    return Status::InvalidArgument("unsupported scheme '" + std::string(scheme) +
                                   "' (phones use ftp, ftps, tftp, http or https)");
  }
  std::string_view rest = url.substr(sep + 3);
  for (char c : url) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ' ') {
      return Status::InvalidArgument("URL contains a space or control character");
    }
  }

  std::string out(url.substr(0, sep + 3));
  size_t at = rest.rfind('@');
  std::string_view host_and_path = rest;
  if (at != std::string_view::npos) {
    std::string_view creds = rest.substr(0, at);
    host_and_path = rest.substr(at + 1);
    size_t colon = creds.find(':');
    std::string_view user = creds.substr(0, colon);
    if (user.empty()) return Status::InvalidArgument("URL has credentials but no user name");
    out += PercentEncodeUserinfo(user);
    if (colon != std::string_view::npos) {
      out.push_back(':');
      out += PercentEncodeUserinfo(creds.substr(colon + 1));
    }
    out.push_back('@');
  }
  size_t host_end = host_and_path.find_first_of("/?#");
  std::string_view host = host_and_path.substr(0, std::min(host_end, host_and_path.size()));
  if (host.empty() || host.front() == ':') return Status::InvalidArgument("URL has no host");
  if (!ValidHostPort(host)) {
    return Status::InvalidArgument("URL host " + Quote(host) + " is not a host name or address");
  }
  out += host;
  if (host_end != std::string_view::npos) out += EncodePath(host_and_path.substr(host_end));
  return out;
}

std::vector<std::string> LocalAddresses() {
  std::vector<std::string> v4, v6;
  ifaddrs* ifs = nullptr;
  if (getifaddrs(&ifs) != 0) return {};
  for (ifaddrs* i = ifs; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    char buf[INET6_ADDRSTRLEN] = {};
    if (i->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
      if (std::string_view(buf).starts_with("127.")) continue;
      v4.push_back(buf);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      auto* a6 = reinterpret_cast<sockaddr_in6*>(i->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&a6->sin6_addr) || IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr)) continue;
      inet_ntop(AF_INET6, &a6->sin6_addr, buf, sizeof buf);
      v6.push_back(buf);
    }
  }
  freeifaddrs(ifs);
  v4.insert(v4.end(), v6.begin(), v6.end());
  std::vector<std::string> out;
  for (std::string& a : v4) {
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(std::move(a));
  }
  return out;
}

}  // namespace siterelay
