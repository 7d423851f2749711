// The HTTP/1.1 request head parser: a pure function over bytes (no I/O, no logging), used by the
// connection code and fuzzed in tests/fuzz/http_request_fuzz.cc.
//
// ParseRequestHead() looks at everything received so far on a connection. It answers kNeedMore
// until a whole head (request line, fields, empty line) is there, then kComplete with the number
// of bytes the head took, or kInvalid with the status code to answer (400, 414, 417, 431, 501,
// 505)
// and a reason for the log. Limits are in limits.h. The parser is strict where leniency helps
// request smuggling (duplicate Content-Length, Content-Length with Transfer-Encoding, whitespace
// before the colon, obsolete line folding) and lenient where phones and old clients differ
// harmlessly (a bare LF ends a line, RFC 9112 section 2.2).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace siterelay::http {

enum class Method { kGet, kHead, kPut, kPost, kOther };

struct Request {
  Method method = Method::kOther;
  std::string method_text;  // as sent, e.g. "DELETE" for a 405
  std::string target;       // the path and query as sent (origin-form), never empty
  int minor_version = 1;    // HTTP/1.<minor>
  // Field names lower-cased; values with surrounding whitespace removed; in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;

  // Derived from the fields:
  bool keep_alive = true;
  std::optional<uint64_t> content_length;
  bool chunked = false;
  bool expect_continue = false;

  // The first field of that (lower-case) name, or nullptr.
  const std::string* Header(std::string_view lower_name) const;
};

enum class ParseStatus { kComplete, kNeedMore, kInvalid };

struct ParseResult {
  ParseStatus status = ParseStatus::kNeedMore;
  size_t consumed = 0;      // with kComplete: bytes of the head, body not included
  int http_status = 0;      // with kInvalid: 400, 414, 417, 431, 501 or 505
  std::string_view reason;  // with kInvalid: for the log, a static string
};

ParseResult ParseRequestHead(std::string_view bytes, Request* out);

}  // namespace siterelay::http
