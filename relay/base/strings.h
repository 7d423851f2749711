// Small string helpers shared by the parsers: ASCII case, quoting, trimming, strict UTF-8.
// Pure; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace siterelay {

constexpr char AsciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

// `s` in double quotes with '"', '\\' and every byte outside printable ASCII escaped (\n, \xNN), so
// text from a config file or a peer can go into a one-line message or a log line safely.
std::string Quote(std::string_view s);
// `s` with only the control characters escaped (\n, \xNN): for messages from libraries.
std::string EscapeControl(std::string_view s);

// Without leading and trailing spaces and tabs (HTTP's optional whitespace, RFC 9110 5.6.3).
constexpr std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

inline std::string AsciiToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

// The UTF-8 sequence at the start of `s`, strictly (RFC 3629): `length` 0 when there is none
// there: a stray continuation byte, an overlong form (so "\xC0\xAE" is never '.'), a surrogate,
// a code point past U+10FFFF, or a sequence cut short. ASCII is a sequence of length 1.
struct Utf8Char {
  size_t length = 0;
  uint32_t code_point = 0;
};
Utf8Char DecodeUtf8(std::string_view s);
// Whether all of `s` is such sequences.
bool ValidUtf8(std::string_view s);

}  // namespace siterelay
