// Sender: what the relay sends upstream — the settings outbox's PUTs to the origin, the log
// shipper's POSTs to logs.upstream — on the loop's libcurl (CurlLoop), one connection pool per
// upstream, with the same connection settings as downloads (ConfigureEasy).
//
// Every request is background work in the WAN budget (CONTRACT.md origin.max_rate): its body is
// counted in the shared RateLimiter before it starts, and while phones' downloads run it waits
// (RateLimiter priorities), so uploads never slow a phone down.
//
// A request's body is in memory: settings files and log batches are small (uploads.max_bytes,
// logs.batch_bytes compressed). Ownership: bodies are the Sender's until `done` runs.
// Thread safety: loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "relay/base/status.h"
#include "sync/curl_loop.h"
#include "sync/origin.h"
#include "sync/rate_limiter.h"

namespace siterelay::sync {

struct SendRequest {
  std::string method;                // "PUT" or "POST"
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
};

struct SendReply {
  // Ok when an HTTP answer came (whatever its status); kUnavailable when none did (refused,
  // timed out, reset, TLS trust).
  Status status;
  long http_status = 0;
  std::optional<int64_t> retry_after_ms;  // Retry-After, when the answer had one
  std::string body;                        // the start of the answer, for the log
};

class Sender {
 public:
  // `limiter` (the Fetcher's, when there is an origin) may be null: no budget, no priorities.
  Sender(uv_loop_t* loop, RateLimiter* limiter);
  // Requests still running are dropped; their `done` never runs.
  ~Sender();
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  // Sends `request` to `upstream` (credentials, CA file; the pool is the upstream's name).
  // `done` runs exactly once on the loop thread, never before Send() returns.
  void Send(const Upstream& upstream, SendRequest request, std::function<void(SendReply)> done);

  size_t in_flight() const { return requests_.size(); }
  uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  struct Request;
  void Start(Request* r);
  void Finish(Request* r, CURLcode code);

  uv_loop_t* loop_;
  std::unique_ptr<RateLimiter> own_limiter_;  // when none was given: no cap
  RateLimiter* limiter_;
  std::map<std::string, std::unique_ptr<CurlLoop>> pools_;  // by upstream name
  std::map<Request*, std::unique_ptr<Request>> requests_;
  uint64_t bytes_sent_ = 0;
};

}  // namespace siterelay::sync
