#include "relay/http/request.h"

#include "relay/base/strings.h"
#include "relay/http/fields.h"
#include "relay/http/limits.h"

namespace siterelay::http {
namespace {

// RFC 9110 section 5.6.2: token characters.
bool IsTchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTchar(c)) return false;
  }
  return true;
}

// Splits off one line (without its CRLF or LF). Returns false when no line end is there yet.
bool NextLine(std::string_view& rest, std::string_view* line) {
  size_t lf = rest.find('\n');
  if (lf == std::string_view::npos) return false;
  std::string_view l = rest.substr(0, lf);
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  *line = l;
  rest.remove_prefix(lf + 1);
  return true;
}

ParseResult Invalid(int status, std::string_view reason) {
  ParseResult r;
  r.status = ParseStatus::kInvalid;
  r.http_status = status;
  r.reason = reason;
  return r;
}

// True when a comma-separated list field (Connection, Transfer-Encoding) holds `token`.
bool ListHas(std::string_view list, std::string_view token) {
  return AnyListItem(list, [&](std::string_view item) { return EqualsIgnoreCase(item, token); });
}

ParseResult ParseRequestLine(std::string_view line, Request* out) {
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Invalid(400, "malformed request line");
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Invalid(400, "malformed request line");
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return Invalid(400, "malformed method");
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return Invalid(400, "malformed HTTP version");
  }
  if (version[5] != '1') return Invalid(505, "unsupported HTTP version");
  out->minor_version = version[7] - '0';
  out->method_text = std::string(method);
  if (method == "GET") out->method = Method::kGet;
  else if (method == "HEAD") out->method = Method::kHead;
  else if (method == "PUT") out->method = Method::kPut;
  else if (method == "POST") out->method = Method::kPost;
  else out->method = Method::kOther;

  // origin-form "/path?query"; absolute-form "http://host/path" (RFC 9112 section 3.2.2) is
  // reduced to its path. "*" (OPTIONS) and authority-form (CONNECT) name no file.
  if (target.empty()) return Invalid(400, "empty request target");
  for (char c : target) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return Invalid(400, "control character in request target");
  }
  if (target.front() != '/') {
    size_t scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos) {
      if (out->method == Method::kOther) {
        out->target = "/";  // the method decides the answer (405/501)
        return ParseResult{};
      }
      return Invalid(400, "request target is not a path");
    }
    std::string_view after = target.substr(scheme_end + 3);
    size_t slash = after.find('/');
    target = slash == std::string_view::npos ? std::string_view("/") : after.substr(slash);
  }
  out->target = std::string(target);
  return ParseResult{};
}

}  // namespace

const std::string* Request::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

ParseResult ParseRequestHead(std::string_view bytes, Request* out) {
  *out = Request();
  // RFC 9112 section 2.2: ignore at least one empty line before the request line.
  size_t skipped = 0;
  while (skipped < bytes.size() && skipped < 4 &&
         (bytes[skipped] == '\r' || bytes[skipped] == '\n')) {
    ++skipped;
  }
  std::string_view rest = bytes.substr(skipped);

  std::string_view line;
  if (!NextLine(rest, &line)) {
    // A read may end between the CR and the LF of a line of exactly the limit.
    size_t pending = rest.size() - (!rest.empty() && rest.back() == '\r' ? 1 : 0);
    if (pending > kMaxRequestLineBytes) return Invalid(414, "request line too long");
    return ParseResult{};
  }
  if (line.size() > kMaxRequestLineBytes) return Invalid(414, "request line too long");
  ParseResult r = ParseRequestLine(line, out);
  if (r.status == ParseStatus::kInvalid) return r;

  bool saw_host = false;
  bool saw_transfer_encoding = false;
  for (;;) {
    if (!NextLine(rest, &line)) {
      if (bytes.size() > kMaxHeadBytes + skipped) return Invalid(431, "request head too large");
      return ParseResult{};
    }
    if (bytes.size() - rest.size() > kMaxHeadBytes + skipped) {
      return Invalid(431, "request head too large");
    }
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {
      return Invalid(400, "obsolete line folding");  // RFC 9112 section 5.2: may reject
    }
    if (out->headers.size() >= kMaxHeaderCount) return Invalid(431, "too many header fields");
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Invalid(400, "header field without colon");
    std::string_view name = line.substr(0, colon);
    if (!IsToken(name)) return Invalid(400, "malformed header field name");
    std::string_view value = TrimOws(line.substr(colon + 1));
    for (char c : value) {
      auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) return Invalid(400, "control character in field");
    }
    std::string lower = AsciiToLower(name);
    if (lower == "content-length") {
      uint64_t n = 0;
      if (value.empty() || value.size() > 19) return Invalid(400, "bad Content-Length");
      for (char c : value) {
        if (c < '0' || c > '9') return Invalid(400, "bad Content-Length");
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      if (out->content_length && *out->content_length != n) {
        return Invalid(400, "conflicting Content-Length");
      }
      out->content_length = n;
    } else if (lower == "transfer-encoding") {
      // Only "chunked" alone is understood (RFC 9112 section 6.1); a request with anything else
      // cannot be framed, so it is refused rather than guessed at.
      if (saw_transfer_encoding || !EqualsIgnoreCase(value, "chunked")) {
        return Invalid(501, "unsupported Transfer-Encoding");
      }
      saw_transfer_encoding = true;
      out->chunked = true;
    } else if (lower == "host") {
      if (saw_host) return Invalid(400, "duplicate Host");
      saw_host = true;
    } else if (lower == "connection") {
      if (ListHas(value, "close")) out->keep_alive = false;
      if (ListHas(value, "keep-alive") && out->minor_version == 0) out->keep_alive = true;
    } else if (lower == "expect") {
      if (!EqualsIgnoreCase(value, "100-continue")) return Invalid(417, "unsupported Expect");
      out->expect_continue = true;
    }
    out->headers.emplace_back(std::move(lower), std::string(value));
  }
  if (out->minor_version == 0) {
    const std::string* c = out->Header("connection");
    out->keep_alive = c != nullptr && ListHas(*c, "keep-alive") && !ListHas(*c, "close");
  }
  if (out->chunked && out->content_length) {
    return Invalid(400, "both Content-Length and Transfer-Encoding");  // smuggling defence
  }
  if (out->minor_version >= 1 && !saw_host) return Invalid(400, "missing Host");
  ParseResult done;
  done.status = ParseStatus::kComplete;
  done.consumed = bytes.size() - rest.size();
  return done;
}

}  // namespace siterelay::http
