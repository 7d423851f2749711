// URL helpers that need no network: the DHCP option value of `siterelay dhcp-option`, and the
// machine's own addresses for the URLs phones are given.
// Pure functions; safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "relay/base/status.h"

namespace siterelay {

// Returns `url` with the user and password percent-encoded for DHCP option 160/66 (PHONES.md):
// the last '@' separates the credentials from the host, so `ftp://u:p@ss@10.0.0.5` becomes
// `ftp://u:p%40ss@10.0.0.5` and `DOMAIN\user` becomes `DOMAIN%5Cuser`. RFC 3986 sub-delimiters
// (`!$&'()*+,;=`) stay as they are; a '%' that already starts an escape (`%40`) is kept, so
// running the output through again changes nothing. The host must be a host name, an IPv4
// address or a bracketed IPv6 address with an optional port; other bytes that a URL cannot carry
// as they are (a backslash, non-ASCII) are escaped in the path too. Errors name what is wrong.
Result<std::string> DhcpOptionValue(std::string_view url);

// Percent-encodes every byte outside RFC 3986 unreserved and sub-delims, keeping valid escapes.
std::string PercentEncodeUserinfo(std::string_view text);

// This machine's addresses other than loopback and IPv6 link-local ones, IPv4 first, each once
// (getifaddrs; empty when it fails).
std::vector<std::string> LocalAddresses();

}  // namespace siterelay
