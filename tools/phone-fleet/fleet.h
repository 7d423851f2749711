// Fleet: N simulated phones booting against a relay (tools/phone-fleet/model.h BootPlan), each a
// libcurl easy handle that runs its boot's steps one after another, all on one curl multi handle
// driven by the caller's libuv loop.
//
// Why not sync::CurlLoop: it is the relay's upstream pool and caps connections per host at 8,
// which would make 1,000 phones queue behind 8 sockets. This is the same integration (socket and
// timer callbacks into uv_poll_t / uv_timer_t) without the cap.
//
// Phones look like phones to the relay: each its own source address when the relay is on
// loopback (127.1.x.y; a relay limits what one peer address may do, and phones have their own
// addresses), its own User-Agent, HTTP keep-alive (curl reuses an idle connection only for the
// same source address, so a phone reuses its own), FTP with PlcmSpIp and APPE for logs. Bodies
// are counted (and with `verify` hashed) in the write callback and dropped.
//
// Ownership: the Fleet owns its phones and their easy handles. Start() may be called once;
// `done` runs once on the loop thread when every phone has finished or Abort() cut the rest.
// Close() (after done) frees the curl and libuv resources; the object must outlive the loop run
// that follows it (handles are freed in their close callbacks). Thread safety: loop thread only.
#pragma once

#include <curl/curl.h>
#include <uv.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "relay/base/sha256.h"
#include "relay/base/status.h"
#include "sync/curl_loop.h"
#include "tools/phone-fleet/model.h"

namespace siterelay::fleet {

struct Target {
  std::string host;
  uint16_t port = 0;
};

struct FleetOptions {
  std::array<std::optional<Target>, kProtoCount> targets;  // by Proto
  // 127.1.x.y per phone (only meaningful when the relay listens on loopback).
  bool source_per_phone = true;
  long tftp_blksize = 1428;
  std::string cacert;          // "" = no peer verification (the relay's self-signed cert)
  bool http_auth = false;      // Basic PlcmSpIp:PlcmSpIp on HTTP/HTTPS
  std::string user = "PlcmSpIp", password = "PlcmSpIp";  // FTP/FTPS login (and HTTP with auth)
  size_t concurrency = 0;      // phones booting at once; 0 = no cap
  long receive_buffer = 128 * 1024;
  // What a GET of a path must deliver, when known (the emulated origin): size always checked,
  // sha256 with `verify`.
  std::map<std::string, std::pair<uint64_t, std::optional<Digest>>> expect;
  bool verify = false;
};

struct StepResult {
  StepKind kind;
  double ms = 0;
  uint64_t down = 0, up = 0;
  bool ok = false;
  bool missing = false;  // a 404 the phone expected
};

struct PhoneResult {
  bool started = false;
  bool completed = false;  // every step ran (errors or not)
  double start_ms = 0;     // from the common start
  double boot_ms = 0;      // from the phone's own start to its last step's end
  double end_ms = 0;       // from the common start
  std::vector<StepResult> steps;
  std::vector<std::string> errors;
  uint64_t corrupt = 0;  // GETs answered whole (200, curl OK) with the wrong size or sha256
  uint64_t down = 0, up = 0;
};

class Fleet {
 public:
  Fleet(uv_loop_t* loop, std::vector<PhoneSpec> phones, FleetOptions options);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Starts the clock (now is the common start) and the phones at their start offsets.
  void Start(std::function<void()> done);
  // Cuts every running boot (counted incomplete) and drops the ones not started yet.
  void Abort();
  // Frees the curl multi handle and the loop handles; call after `done` ran.
  void Close();

  const std::vector<PhoneSpec>& phones() const { return specs_; }
  const std::vector<PhoneResult>& results() const { return results_; }
  double elapsed_ms() const;

 private:
  struct Phone;
  static size_t OnBody(char* data, size_t size, size_t n, void* userp) noexcept;
  static size_t OnUpload(char* data, size_t size, size_t n, void* userp) noexcept;
  void StartDue();
  void Launch(Phone* p);
  void RunStep(Phone* p);
  void StepDone(Phone* p, CURLcode code);
  void Finish(Phone* p);
  std::string Url(const Phone& p, const Step& s) const;

  uv_loop_t* loop_;
  std::vector<PhoneSpec> specs_;
  FleetOptions options_;
  std::vector<std::unique_ptr<Phone>> phone_;
  std::vector<PhoneResult> results_;
  std::vector<size_t> order_;  // phone indices by start offset
  size_t next_start_ = 0;      // into order_
  size_t running_ = 0, finished_ = 0;
  std::vector<Phone*> waiting_;  // due, held back by the concurrency cap (FIFO)
  size_t waiting_head_ = 0;
  std::unique_ptr<sync::CurlLoop> curl_;
  uv_timer_t start_timer_{};
  uv_timer_t kick_timer_{};  // FTP only: see Start()
  static constexpr uint64_t kKickMs = 50;
  uint64_t t0_ = 0;
  bool started_ = false, ended_ = false, closed_ = false;
  std::function<void()> done_;
};

}  // namespace siterelay::fleet
