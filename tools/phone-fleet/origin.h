// OriginEmulator: the origin behind the relay under test, over a WAN phone_fleet emulates. A
// minimal HTTP/1.1 server on the caller's libuv loop that serves the generated tree of
// OriginTree() (tools/phone-fleet/model.h) and counts what it sent, per path.
//
// What it answers (what the relay's sync/ module asks, docs/sync.md):
// - GET and HEAD, with a strong ETag and a fixed Last-Modified; If-None-Match (or an equal
//   If-Modified-Since) -> 304; a single Range `bytes=a-b`, `bytes=a-`, `bytes=-n` -> 206 (416
//   when unsatisfiable), honoured only when an If-Range matches the ETag or Last-Modified; a path
//   outside the tree -> 404.
// - PUT and POST (the relay forwards settings uploads and log batches): the body, by
//   Content-Length or chunked, is read and dropped; 204. `Expect: 100-continue` is answered.
// - keep-alive (HTTP/1.1 default, `Connection: close` honoured); no pipelining: a request that
//   arrives while the previous answer is being sent waits for it.
//
// The WAN: every byte of every answer goes through one TokenBucket (`rate_bytes_per_s`, 0 = no
// cap), in chunks of at most kChunk, connections taking turns; and each answer's first byte waits
// `latency_ms`, the first answer on a connection twice that (the TCP handshake's round trip).
//
// Faults (issue 11, "origin faults under load"): with Options::faults, a GET of a tree file whose
// answer has a body (200 or 206) is, by one draw of a generator seeded with Options::fault_seed,
// - `error`: answered 503 with Retry-After: 1 instead (the connection stays usable);
// - `reset`: cut after a random part of the body (fewer bytes than Content-Length) with a TCP RST;
// - `short`: cut at the same kind of point with an orderly FIN (a clean EOF before the end);
// - `stall`: the head and a random part of the body, then nothing for Options::stall_ms, then a
//   FIN — an origin that stops sending, as the relay's stall timeout (sync/curl_loop.h
//   kStallSeconds) is meant to catch when stall_ms exceeds it;
// or served normally. The kinds exclude each other: each one's percent is its share of those
// requests. 404s, 304s, HEAD and uploads are never faulted. The draws follow request order, so a
// run is repeatable as far as the order in which requests arrive is.
//
// Bodies are never copied: firmware comes from PatternSpan(), small files from the tree's strings.
// Requests are distrusted like any peer input: a head over kMaxHead bytes, a malformed request
// line or a bad chunk size closes the connection.
//
// Ownership: the emulator owns its handles and frees each in its close callback; Close() starts
// closing them, and the object must stay alive until the loop has run those callbacks (destroy it
// after the loop is done). Thread safety: loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "relay/base/status.h"
#include "tools/phone-fleet/model.h"

namespace siterelay::fleet {

struct OriginPathStats {
  uint64_t get = 0, head = 0, put = 0, post = 0, other = 0;
  uint64_t full = 0;          // 200 answers with a body (GET)
  uint64_t partial = 0;       // 206
  uint64_t not_modified = 0;  // 304
  uint64_t not_found = 0;     // 404
  uint64_t body_bytes = 0;    // body bytes written (GET bodies; 404 texts excluded)
};

struct OriginTotals {
  uint64_t connections = 0;
  uint64_t requests = 0;
  uint64_t bytes = 0;       // everything written: heads and bodies
  uint64_t body_bytes = 0;  // bodies of 200/206 answers
  uint64_t uploaded = 0;    // request bodies received (PUT/POST)
};

// What Options::faults asks for: the percent (0-100) of eligible requests given each fault; the
// sum is at most 100.
struct OriginFaultSpec {
  double reset = 0, error = 0, stall = 0, short_body = 0, garble = 0;
  bool any() const { return reset > 0 || error > 0 || stall > 0 || short_body > 0 || garble > 0; }
};

// The faults injected so far, per kind (counted when the answer is chosen).
struct OriginFaultCounts {
  uint64_t reset = 0, error = 0, stall = 0, short_body = 0, garble = 0;
  uint64_t total() const { return reset + error + stall + short_body + garble; }
};

// Parses `kind=percent[,kind=percent...]`, kinds reset, error, stall, short and garble, percents from 0
// to 100 (fractions allowed) adding up to at most 100; "" and "none" are no faults.
Result<OriginFaultSpec> ParseOriginFaults(std::string_view text);

class OriginEmulator {
 public:
  // Sizes of the send path; see the header comment.
  static constexpr size_t kMaxHead = 64 * 1024;
  static constexpr size_t kChunk = 64 * 1024;

  struct Options {
    std::string host = "127.0.0.1";
    uint16_t port = 0;
    double rate_bytes_per_s = 0;
    uint64_t latency_ms = 0;
    OriginFaultSpec faults;
    uint64_t fault_seed = 1;
    // Longer than the relay's stall cut: below 1 byte/s for 30 s, as curl measures it over a
    // window of about 5 s (so 30-36 s after the last byte).
    uint64_t stall_ms = 40000;
  };

  OriginEmulator(uv_loop_t* loop, std::vector<OriginFile> tree, Options options);
  ~OriginEmulator();
  OriginEmulator(const OriginEmulator&) = delete;
  OriginEmulator& operator=(const OriginEmulator&) = delete;

  Status Start();
  uint16_t port() const { return port_; }
  // Closes the listener and every connection (answers in progress are cut).
  void Close();

  const std::map<std::string, OriginPathStats>& stats() const { return stats_; }
  const OriginTotals& totals() const { return totals_; }
  const OriginFaultCounts& faults() const { return fault_counts_; }
  const std::vector<OriginFile>& tree() const { return tree_; }

 private:
  struct Conn;
  static void OnConnection(uv_stream_t* server, int status) noexcept;
  void Process(Conn* c);
  void Respond(Conn* c);
  void Begin(Conn* c);
  void Pump();
  void OnWritten(Conn* c, int status);
  void CloseConn(Conn* c, bool reset = false);
  // One uniform draw in [0, 1) from the fault generator (splitmix64: the same sequence on every
  // standard library, unlike the std:: distributions).
  double Draw();

  uv_loop_t* loop_;
  std::vector<OriginFile> tree_;
  std::unordered_map<std::string, const OriginFile*> by_path_;
  Options options_;
  TokenBucket bucket_;
  uv_tcp_t listener_{};
  uv_timer_t pump_timer_{};
  bool started_ = false;
  bool closed_ = false;
  uint16_t port_ = 0;
  std::set<Conn*> conns_;
  std::deque<Conn*> ready_;  // connections with bytes to send and no write in flight
  std::map<std::string, OriginPathStats> stats_;
  OriginTotals totals_;
  uint64_t rng_state_;
  OriginFaultCounts fault_counts_;
};

}  // namespace siterelay::fleet
