// libFuzzer target for ParseRequestHead() (relay/http/request.h).
//
// The input is everything a phone (or anyone on the site network) has sent on a connection so
// far. The connection code calls the parser again each time bytes arrive and acts on the answer,
// so beyond never crashing the answer must be one it can act on safely:
//   - kComplete: the head ends inside the input (0 < consumed <= size); the target is a path the
//     file lookup can take ('/' first); field names are lower-cased tokens, as Request::Header()
//     expects; the version is HTTP/1.0..1.9; never both Content-Length and chunked (a request
//     framed two ways is the classic smuggling vector, RFC 9112 section 6.3).
//   - Prefix stability: the head alone parses to the same request, so pipelined bytes after it
//     change nothing; and a head cut short is never complete, whichever read it was split at.
//   - kInvalid: one of the status codes the header promises, with a reason for the log.
//   - kNeedMore: only while the input is within the head limit; past it the parser must have
//     decided, or a peer could make the connection buffer without end.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "relay/http/limits.h"
#include "relay/http/request.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using siterelay::http::kMaxHeadBytes;
using siterelay::http::ParseRequestHead;
using siterelay::http::ParseResult;
using siterelay::http::ParseStatus;
using siterelay::http::Request;

// RFC 9112 section 2.2 lets the parser skip up to four CR/LF bytes before the request line.
constexpr size_t kMaxSkippedBytes = 4;

bool SameRequest(const Request& a, const Request& b) {
  return a.method == b.method && a.method_text == b.method_text && a.target == b.target &&
         a.minor_version == b.minor_version && a.headers == b.headers &&
         a.keep_alive == b.keep_alive && a.content_length == b.content_length &&
         a.chunked == b.chunked && a.expect_continue == b.expect_continue;
}

void CheckProperPrefix(std::string_view head, size_t len) {
  if (len >= head.size()) return;
  Request req;
  ParseResult r = ParseRequestHead(head.substr(0, len), &req);
  FUZZ_CHECK(r.status == ParseStatus::kNeedMore || r.status == ParseStatus::kInvalid);
}

void CheckComplete(std::string_view in, const ParseResult& r, const Request& req) {
  FUZZ_CHECK(r.consumed > 0);
  FUZZ_CHECK(r.consumed <= in.size());
  FUZZ_CHECK(!req.target.empty());
  FUZZ_CHECK(req.target.front() == '/');
  FUZZ_CHECK(req.minor_version >= 0 && req.minor_version <= 9);
  FUZZ_CHECK(!(req.chunked && req.content_length.has_value()));
  for (const auto& field : req.headers) {
    const std::string& name = field.first;
    FUZZ_CHECK(!name.empty());
    for (char c : name) {
      FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
      FUZZ_CHECK(c != ':');
    }
  }
  // HTTP/1.1 without Host is refused (RFC 9112 section 3.2), so a complete 1.x head has one.
  if (req.minor_version >= 1) FUZZ_CHECK(req.Header("host") != nullptr);

  std::string_view head = in.substr(0, r.consumed);
  Request again;
  ParseResult r2 = ParseRequestHead(head, &again);
  FUZZ_CHECK(r2.status == ParseStatus::kComplete);
  FUZZ_CHECK(r2.consumed == r.consumed);
  FUZZ_CHECK(SameRequest(again, req));

  // Every proper prefix would be too slow at 16 KiB heads. These cut the final LF, the byte
  // before it (the CR of the last CRLF, or the LF of the last field line), and the middle.
  CheckProperPrefix(head, r.consumed - 1);
  CheckProperPrefix(head, r.consumed >= 2 ? r.consumed - 2 : 0);
  CheckProperPrefix(head, r.consumed / 2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Request req;
  ParseResult r = ParseRequestHead(in, &req);
  switch (r.status) {
    case ParseStatus::kComplete:
      CheckComplete(in, r, req);
      break;
    case ParseStatus::kInvalid:
      FUZZ_CHECK(r.http_status == 400 || r.http_status == 414 || r.http_status == 417 ||
                 r.http_status == 431 || r.http_status == 501 || r.http_status == 505);
      FUZZ_CHECK(!r.reason.empty());
      break;
    case ParseStatus::kNeedMore:
      FUZZ_CHECK(size <= kMaxHeadBytes + kMaxSkippedBytes);
      break;
  }
  return 0;
}
