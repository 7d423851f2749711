// CurlLoop: one libcurl multi handle driven by a libuv loop (DESIGN.md "Threads": one loop thread
// owns every socket, timer and curl handle). libcurl tells us which sockets to watch
// (CURLMOPT_SOCKETFUNCTION) and when to wake it (CURLMOPT_TIMERFUNCTION); we watch them with
// uv_poll_t and a uv_timer_t and hand readiness back with curl_multi_socket_action(). Nothing
// blocks the loop: name resolution runs in libcurl's resolver thread, bodies arrive through the
// easy handles' write callbacks on this thread.
//
// One CurlLoop is one connection pool: keep-alive connections and HTTP/2 multiplexing are shared
// by the transfers added to it. sync keeps one per upstream ([origin] and each [[origin.route]]),
// so each origin has its own pool and its own credentials.
//
// Ownership: the caller owns its easy handles; Add() lends them until `done` ran or Remove().
// Thread safety: loop thread only.
#pragma once

#include <curl/curl.h>
#include <uv.h>

#include <functional>
#include <map>
#include <set>
#include <string_view>

#include "relay/base/status.h"
#include "sync/origin.h"

namespace siterelay::sync {

// The one translation of libcurl's codes into a Status: failures of the origin or the way to it
// (refused, timed out, reset, TLS trust...) are kUnavailable (try later, serve the last good
// copy), a file:// origin without the file kNotFound, the relay's own failures kInternal.
// `detail`: the handle's CURLOPT_ERRORBUFFER, more precise than the code's text when set.
Status CurlError(std::string_view what, CURLcode code, const char* detail = nullptr);

// Connection set-up to an upstream; a stalled transfer is cut after kStallSeconds below 1 byte/s
// (a download then resumes: Fetcher's kMaxResumes).
constexpr long kConnectTimeoutSeconds = 10;
constexpr long kStallSeconds = 30;
// Connections to one origin host at once (HTTP/2 multiplexes on fewer).
constexpr long kMaxOriginConnections = 96;
// libcurl's receive buffer, one per transfer on the wire. libcurl's default: 96 x 64 KiB was 6 of
// a boot storm's 60 MiB peak (the buffers are separate mappings), for speed no origin needs
// (16 KiB a callback is 8,000 callbacks a second at 1 Gbit/s). It is also the rate limiter's
// step: at most one buffer's bytes past the budget.
constexpr long kReceiveBufferBytes = 16 * 1024;

// Options every request to `up` shares, downloads and uploads alike: protocols, redirects,
// encodings, timeouts, TLS trust, the error buffer (CURL_ERROR_SIZE bytes), the receive buffer
// (kReceiveBufferBytes) and, with `auth`, the upstream's credentials.
void ConfigureEasy(CURL* h, const Upstream& up, bool auth, char* error);

// Connection limits of one CurlLoop (0: libcurl's default, no cap for the first two).
struct CurlLoopLimits {
  long max_host_connections = kMaxOriginConnections;
  long max_total_connections = 0;
  // Idle connections kept for reuse. libcurl's default, 4x the transfers added at the moment,
  // shrinks whenever few are running (the Fetcher adds at most kMaxOriginConnections at once)
  // and closes the connections the next burst of misses needs, each new one costing a WAN
  // round trip more.
  long max_cached_connections = kMaxOriginConnections;
};

class CurlLoop {
 public:
  explicit CurlLoop(uv_loop_t* loop, CurlLoopLimits limits = {});
  // Removes every transfer still running (their callbacks never run) and frees the loop's
  // handles through their close callbacks.
  ~CurlLoop();
  CurlLoop(const CurlLoop&) = delete;
  CurlLoop& operator=(const CurlLoop&) = delete;

  // Starts `easy`. If this returns an error `done` never runs; otherwise it runs exactly once on
  // the loop thread when the transfer ends, after the handle was taken out of the multi handle.
  Status Add(CURL* easy, std::function<void(CURLcode)> done);
  // Stops a transfer early; its `done` does not run.
  void Remove(CURL* easy);
  // Drives every transfer once without waiting for a socket event (curl_multi_perform), then
  // reports those that ended. For transfers libcurl 7.88 forgets to ask a socket watch for (an
  // FTP data connection opened after EPSV when the reply was already in): tools/phone-fleet
  // calls it every 50 ms while FTP phones run.
  void Perform();
  size_t running() const { return done_.size(); }

 private:
  struct Socket;
  struct Timer;
  static int OnSocket(CURL* easy, curl_socket_t s, int what, void* userp, void* socketp) noexcept;
  static int OnTimer(CURLM* multi, long timeout_ms, void* userp) noexcept;
  void Action(curl_socket_t s, int events);
  void ReapDone();
  void Unwatch(Socket* sock);

  uv_loop_t* loop_;
  CURLM* multi_;
  Timer* timer_;  // freed in its close callback
  std::set<Socket*> sockets_;  // watched now; each freed in its close callback
  bool closing_ = false;
  std::map<CURL*, std::function<void(CURLcode)>> done_;
};

}  // namespace siterelay::sync
