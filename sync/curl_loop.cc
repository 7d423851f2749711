#include "sync/curl_loop.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "relay/base/log.h"
#include "siterelay_version.h"

namespace siterelay::sync {

Status CurlError(std::string_view what, CURLcode code, const char* detail) {
  std::string msg = std::string(what) + ": " +
                    (detail != nullptr && detail[0] != '\0' ? detail : curl_easy_strerror(code));
  switch (code) {
    case CURLE_FILE_COULDNT_READ_FILE:
      return Status::NotFound(msg);
    // Our own side: memory, options, a write the relay refused.
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_WRITE_ERROR:
      return Status::Internal(msg);
    // Everything else is the origin or the way to it (refused, timed out, reset, TLS trust,
    // HTTP/2 errors...): try later, serve the last good copy meanwhile.
    default:
      return Status::Unavailable(msg);
  }
}

// A watched socket: its poll handle is freed in the close callback (libuv's rule).
struct CurlLoop::Socket {
  uv_poll_t poll{};
  CurlLoop* owner = nullptr;
  curl_socket_t fd = CURL_SOCKET_BAD;
};

struct CurlLoop::Timer {
  uv_timer_t timer{};
  CurlLoop* owner = nullptr;
};

namespace {

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      std::fprintf(stderr, "fatal: curl_global_init failed\n");
      std::abort();
    }
  });
}

}  // namespace

CurlLoop::CurlLoop(uv_loop_t* loop, CurlLoopLimits limits) : loop_(loop) {
  InitCurlOnce();
  multi_ = curl_multi_init();
  if (multi_ == nullptr) {
    std::fprintf(stderr, "fatal: out of memory for a curl multi handle\n");
    std::abort();
  }
  timer_ = new Timer;
  timer_->owner = this;
  timer_->timer.data = timer_;
  uv_timer_init(loop_, &timer_->timer);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlLoop::OnSocket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlLoop::OnTimer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  // HTTP/2 to the origin multiplexes every transfer on one connection where it can.
  curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  // Bytes share the WAN through max_rate whatever the connection count, but small requests are
  // bound by the WAN's round trip: in a boot storm every phone's own files (<mac>.cfg,
  // -phone.cfg, ... mostly 404s) are misses, thousands of them. Over HTTP/1.1 each needs a
  // connection of its own for its round trip, so 8 connections made 6,000 misses at 40 ms take
  // 30 s (tools/phone-fleet); 96 resolve a 1,000-phone storm's <mac>.cfg 404s in 0.4 s while
  // staying far below the 1,000 connections the phones would open themselves. The Fetcher puts
  // at most this many transfers on the wire, each with a receive buffer of at most 64 KiB.
  curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, limits.max_host_connections);
  curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, limits.max_total_connections);
  if (limits.max_cached_connections > 0) {
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, limits.max_cached_connections);
  }
}

CurlLoop::~CurlLoop() {
  closing_ = true;
  for (auto& [easy, done] : done_) curl_multi_remove_handle(multi_, easy);
  done_.clear();
  curl_multi_cleanup(multi_);
  // Whatever curl did not report removed during the cleanup is unwatched here.
  while (!sockets_.empty()) Unwatch(*sockets_.begin());
  timer_->owner = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_->timer),
           [](uv_handle_t* h) noexcept { delete static_cast<Timer*>(h->data); });
}

Status CurlLoop::Add(CURL* easy, std::function<void(CURLcode)> done) {
  CURLMcode rc = curl_multi_add_handle(multi_, easy);
  if (rc != CURLM_OK) {
    return Status::Internal(std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc));
  }
  done_[easy] = std::move(done);
  return Status::Ok();
}

void CurlLoop::Remove(CURL* easy) {
  if (done_.erase(easy) != 0) curl_multi_remove_handle(multi_, easy);
}

int CurlLoop::OnSocket(CURL*, curl_socket_t s, int what, void* userp, void* socketp) noexcept {
  auto* self = static_cast<CurlLoop*>(userp);
  auto* sock = static_cast<Socket*>(socketp);
  if (what == CURL_POLL_REMOVE) {
    if (sock != nullptr) {
      if (!self->closing_) curl_multi_assign(self->multi_, s, nullptr);
      self->Unwatch(sock);
    }
    return 0;
  }
  if (self->closing_) return 0;
  if (sock == nullptr) {
    sock = new Socket;
    sock->owner = self;
    sock->fd = s;
    sock->poll.data = sock;
    if (uv_poll_init_socket(self->loop_, &sock->poll, s) != 0) {
      delete sock;
      return -1;  // curl fails this transfer
    }
    curl_multi_assign(self->multi_, s, sock);
    self->sockets_.insert(sock);
  }
  int events = 0;
  if ((what & CURL_POLL_IN) != 0) events |= UV_READABLE;
  if ((what & CURL_POLL_OUT) != 0) events |= UV_WRITABLE;
  uv_poll_start(&sock->poll, events, [](uv_poll_t* p, int status, int ev) noexcept {
    auto* so = static_cast<Socket*>(p->data);
    if (so->owner == nullptr) return;
    int flags = 0;
    if (status < 0) flags |= CURL_CSELECT_ERR;
    if ((ev & UV_READABLE) != 0) flags |= CURL_CSELECT_IN;
    if ((ev & UV_WRITABLE) != 0) flags |= CURL_CSELECT_OUT;
    so->owner->Action(so->fd, flags);
  });
  return 0;
}

int CurlLoop::OnTimer(CURLM*, long timeout_ms, void* userp) noexcept {
  auto* self = static_cast<CurlLoop*>(userp);
  if (self->timer_->owner == nullptr) return 0;
  if (timeout_ms < 0) {
    uv_timer_stop(&self->timer_->timer);
    return 0;
  }
  // libcurl: a timeout of 0 means "call socket_action soon", not from inside this callback.
  uv_timer_start(
      &self->timer_->timer,
      [](uv_timer_t* t) noexcept {
        auto* tm = static_cast<Timer*>(t->data);
        if (tm->owner != nullptr) tm->owner->Action(CURL_SOCKET_TIMEOUT, 0);
      },
      static_cast<uint64_t>(timeout_ms), 0);
  return 0;
}

void CurlLoop::Unwatch(Socket* sock) {
  sockets_.erase(sock);
  sock->owner = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&sock->poll),
           [](uv_handle_t* h) noexcept { delete static_cast<Socket*>(h->data); });
}

void CurlLoop::Perform() {
  if (closing_) return;
  int running = 0;
  curl_multi_perform(multi_, &running);
  ReapDone();
}

void CurlLoop::Action(curl_socket_t s, int events) {
  int running = 0;
  curl_multi_socket_action(multi_, s, events, &running);
  ReapDone();
}

void CurlLoop::ReapDone() {
  // Collect first: a done callback may add or remove transfers.
  std::vector<std::pair<CURL*, CURLcode>> finished;
  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
    if (m->msg == CURLMSG_DONE) finished.emplace_back(m->easy_handle, m->data.result);
  }
  for (auto [easy, code] : finished) {
    auto it = done_.find(easy);
    if (it == done_.end()) continue;
    std::function<void(CURLcode)> done = std::move(it->second);
    done_.erase(it);
    curl_multi_remove_handle(multi_, easy);
    done(code);
  }
}

void ConfigureEasy(CURL* h, const Upstream& up, bool auth, char* error) {
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,file");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);  // CDNs redirect to a nearby node
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  // Every encoding this libcurl decodes (zstd, br, gzip, deflate): configs and XML shrink
  // several times on the wire. What is stored is the decoded file.
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  curl_easy_setopt(h, CURLOPT_USERAGENT, "siterelay/" SITERELAY_VERSION);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutSeconds);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, kStallSeconds);
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, kReceiveBufferBytes);
  if (auth && !up.user.empty()) {
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl_easy_setopt(h, CURLOPT_USERNAME, up.user.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, up.password.c_str());
  }
  if (!up.ca_file.empty()) {
    // An extra trust anchor: the file, and the system's anchors next to it.
    curl_easy_setopt(h, CURLOPT_CAINFO, up.ca_file.c_str());
    curl_easy_setopt(h, CURLOPT_CAPATH, "/etc/ssl/certs");
  }
}

}  // namespace siterelay::sync
