#include "tools/phone-fleet/fleet.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace siterelay::fleet {

struct Fleet::Socket {
  uv_poll_t poll{};
  Fleet* owner = nullptr;
  curl_socket_t fd = CURL_SOCKET_BAD;
};

struct Fleet::Phone {
  Fleet* fleet = nullptr;
  size_t index = 0;
  const PhoneSpec* spec = nullptr;
  std::vector<Step> plan;
  size_t next = 0;
  bool prev_missing = false;
  CURL* easy = nullptr;
  bool in_multi = false;
  char error[CURL_ERROR_SIZE] = {};
  std::string ua_app, ua_updater, interface;
  uint64_t start_ns = 0, step_ns = 0;
  uint64_t step_down = 0;
  std::string upload;
  size_t upload_off = 0;
  std::unique_ptr<Sha256> sha;
};

Fleet::Fleet(uv_loop_t* loop, std::vector<PhoneSpec> phones, FleetOptions options)
    : loop_(loop), specs_(std::move(phones)), options_(std::move(options)) {
  static const bool kCurlReady = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  multi_ = kCurlReady ? curl_multi_init() : nullptr;
  if (multi_ == nullptr) {
    std::fprintf(stderr, "phone_fleet: fatal: cannot initialise libcurl\n");
    std::abort();
  }
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &Fleet::OnSocket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &Fleet::OnTimer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  // Phones are independent devices: no cap on connections to the relay, and room in the
  // connection cache for one idle connection per phone.
  curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
  curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(specs_.size() + 16));
  uv_timer_init(loop_, &curl_timer_);
  uv_timer_init(loop_, &start_timer_);
  uv_timer_init(loop_, &kick_timer_);
  curl_timer_.data = this;
  start_timer_.data = this;
  kick_timer_.data = this;
  results_.resize(specs_.size());
  for (size_t i = 0; i < specs_.size(); ++i) {
    auto p = std::make_unique<Phone>();
    p->fleet = this;
    p->index = i;
    p->spec = &specs_[i];
    p->plan = BootPlan(specs_[i]);
    p->ua_app = UserAgent(specs_[i], false);
    p->ua_updater = UserAgent(specs_[i], true);
    if (options_.source_per_phone) {
      // 127.1.a.b, a and b in 1..250: up to 62,500 phones, none on a .0 or .255 address.
      char addr[48];
      std::snprintf(addr, sizeof addr, "host!127.1.%zu.%zu", 1 + i / 250, 1 + i % 250);
      p->interface = addr;
    }
    phone_.push_back(std::move(p));
    order_.push_back(i);
  }
  std::stable_sort(order_.begin(), order_.end(),
                   [&](size_t a, size_t b) { return specs_[a].start_s < specs_[b].start_s; });
}

Fleet::~Fleet() {
  if (!closed_) Close();
}

double Fleet::elapsed_ms() const {
  return t0_ == 0 ? 0 : static_cast<double>(uv_hrtime() - t0_) / 1e6;
}

void Fleet::Start(std::function<void()> done) {
  done_ = std::move(done);
  started_ = true;
  t0_ = uv_hrtime();
  bool ftp = std::any_of(specs_.begin(), specs_.end(), [](const PhoneSpec& p) {
    return p.proto == Proto::kFtp || p.proto == Proto::kFtps;
  });
  if (ftp) {
    // libcurl 7.88 sometimes starts an FTP data connection (after EPSV/PASV, when the reply was
    // already in) without asking for its socket to be watched: in socket_action mode nothing
    // then wakes that transfer until its connect timeout, 30 s later (the curl tool, which polls
    // with a 1 s timeout, loses 1 s each time). A periodic curl_multi_perform() drives every
    // transfer, so such a stall costs at most kKickMs.
    uv_timer_start(
        &kick_timer_,
        [](uv_timer_t* t) noexcept {
          auto* self = static_cast<Fleet*>(t->data);
          if (self->closed_ || self->ended_ || self->multi_ == nullptr) return;
          int running = 0;
          curl_multi_perform(self->multi_, &running);
          self->ReapDone();
        },
        kKickMs, kKickMs);
  }
  if (specs_.empty()) {
    ended_ = true;
    done_();
    return;
  }
  StartDue();
}

void Fleet::StartDue() {
  if (ended_) return;
  double now = elapsed_ms();
  while (next_start_ < order_.size() && specs_[order_[next_start_]].start_s * 1000 <= now) {
    waiting_.push_back(phone_[order_[next_start_++]].get());
  }
  while (waiting_head_ < waiting_.size() &&
         (options_.concurrency == 0 || running_ < options_.concurrency)) {
    Launch(waiting_[waiting_head_++]);
    if (ended_) return;
  }
  if (next_start_ < order_.size()) {
    double due = specs_[order_[next_start_]].start_s * 1000 - now;
    uv_timer_start(
        &start_timer_, [](uv_timer_t* t) noexcept { static_cast<Fleet*>(t->data)->StartDue(); },
        static_cast<uint64_t>(std::max(0.0, due)) + 1, 0);
  }
}

void Fleet::Launch(Phone* p) {
  ++running_;
  PhoneResult& r = results_[p->index];
  r.started = true;
  p->start_ns = uv_hrtime();
  r.start_ms = static_cast<double>(p->start_ns - t0_) / 1e6;
  p->easy = curl_easy_init();
  if (p->easy == nullptr) {
    r.errors.push_back("curl_easy_init failed");
    return Finish(p);
  }
  RunStep(p);
}

std::string Fleet::Url(const Phone& p, const Step& s) const {
  const Target& t = *options_.targets[static_cast<size_t>(p.spec->proto)];
  return std::string(ProtoName(p.spec->proto)) + "://" + t.host + ":" + std::to_string(t.port) +
         "/" + s.path;
}

void Fleet::RunStep(Phone* p) {
  while (p->next < p->plan.size() && p->plan[p->next].fallback && !p->prev_missing) ++p->next;
  if (p->next == p->plan.size()) {
    results_[p->index].completed = true;
    return Finish(p);
  }
  const Step& s = p->plan[p->next];
  CURL* h = p->easy;
  Proto proto = p->spec->proto;
  // A reset keeps the multi handle's idle connections: the next step reuses the phone's own.
  curl_easy_reset(h);
  std::string url = Url(*p, s);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, std::string(ProtoName(proto)).c_str());
  curl_easy_setopt(h, CURLOPT_PRIVATE, p);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, p->error);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, options_.receive_buffer);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Fleet::OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, p);
  curl_easy_setopt(h, CURLOPT_USERAGENT, (s.updater ? p->ua_updater : p->ua_app).c_str());
  if (!p->interface.empty()) curl_easy_setopt(h, CURLOPT_INTERFACE, p->interface.c_str());
  bool tls = proto == Proto::kHttps || proto == Proto::kFtps;
  if (tls) {
    if (options_.cacert.empty()) {
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
      curl_easy_setopt(h, CURLOPT_CAINFO, options_.cacert.c_str());
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);  // phones do not rely on names (PHONES.md)
    }
    // Phones are not known to resume TLS sessions (PHONES.md "FTPS"): every handshake is full.
    curl_easy_setopt(h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
  }
  switch (proto) {
    case Proto::kHttp:
    case Proto::kHttps:
      if (options_.http_auth) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
        curl_easy_setopt(h, CURLOPT_USERNAME, options_.user.c_str());
        curl_easy_setopt(h, CURLOPT_PASSWORD, options_.password.c_str());
      }
      break;
    case Proto::kTftp:
      curl_easy_setopt(h, CURLOPT_TFTP_BLKSIZE, options_.tftp_blksize);
      break;
    case Proto::kFtp:
    case Proto::kFtps:
      curl_easy_setopt(h, CURLOPT_USERNAME, options_.user.c_str());
      curl_easy_setopt(h, CURLOPT_PASSWORD, options_.password.c_str());
      if (proto == Proto::kFtps) {
        curl_easy_setopt(h, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
      }
      break;
  }
  p->step_down = 0;
  p->sha.reset();
  if (s.op == Op::kHead) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (s.op == Op::kPut) {
    p->upload = PhoneLog(*p->spec, s.kind == StepKind::kBootLogPut,
                         s.kind == StepKind::kBootLogPut ? p->spec->boot_log_bytes
                                                         : p->spec->app_log_bytes);
    p->upload_off = 0;
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(p->upload.size()));
    curl_easy_setopt(h, CURLOPT_READFUNCTION, &Fleet::OnUpload);
    curl_easy_setopt(h, CURLOPT_READDATA, p);
    if (s.append) curl_easy_setopt(h, CURLOPT_APPEND, 1L);
  } else if (options_.verify) {
    auto it = options_.expect.find(s.path);
    if (it != options_.expect.end() && it->second.second) p->sha = std::make_unique<Sha256>();
  }
  p->error[0] = '\0';
  p->step_ns = uv_hrtime();
  CURLMcode rc = curl_multi_add_handle(multi_, h);
  if (rc != CURLM_OK) {
    results_[p->index].errors.push_back(std::string("curl_multi_add_handle: ") +
                                        curl_multi_strerror(rc));
    return Finish(p);
  }
  p->in_multi = true;
}

size_t Fleet::OnBody(char* data, size_t size, size_t n, void* userp) noexcept {
  auto* p = static_cast<Phone*>(userp);
  size_t len = size * n;
  p->step_down += len;
  if (p->sha) p->sha->Update(std::string_view(data, len));
  return len;
}

size_t Fleet::OnUpload(char* data, size_t size, size_t n, void* userp) noexcept {
  auto* p = static_cast<Phone*>(userp);
  size_t len = std::min(size * n, p->upload.size() - p->upload_off);
  std::memcpy(data, p->upload.data() + p->upload_off, len);
  p->upload_off += len;
  return len;
}

void Fleet::StepDone(Phone* p, CURLcode code) {
  p->in_multi = false;
  const Step& s = p->plan[p->next];
  PhoneResult& r = results_[p->index];
  StepResult sr;
  sr.kind = s.kind;
  sr.ms = static_cast<double>(uv_hrtime() - p->step_ns) / 1e6;
  sr.down = p->step_down;
  sr.up = s.op == Op::kPut ? p->upload_off : 0;
  Proto proto = p->spec->proto;
  bool http = proto == Proto::kHttp || proto == Proto::kHttps;
  const char* method = s.op == Op::kGet ? "GET" : s.op == Op::kHead ? "HEAD" : "PUT";
  // Error texts name the path with the phone's MAC as <mac>, so that one fault seen by a
  // thousand phones is one distinct text.
  std::string path = s.path;
  if (size_t at = path.find(p->spec->mac); at != std::string::npos) {
    path.replace(at, p->spec->mac.size(), "<mac>");
  }
  std::string error;
  if (code == CURLE_OK) {
    long status = 0;
    if (http) curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
    if (!http || (s.op == Op::kPut ? status / 100 == 2 : status == 200)) {
      sr.ok = true;
    } else if (status == 404 && s.missing_ok) {
      sr.missing = true;
    } else {
      error = std::string(method) + " /" + path + ": HTTP " + std::to_string(status);
    }
  } else if ((code == CURLE_TFTP_NOTFOUND || code == CURLE_REMOTE_FILE_NOT_FOUND) &&
             s.missing_ok) {
    sr.missing = true;
  } else {
    // TFTP's error buffer says "getpeername() failed" for any error packet (curl 7.88): the
    // code's own text is the better one there.
    const char* detail = proto != Proto::kTftp && p->error[0] != '\0' ? p->error
                                                                       : curl_easy_strerror(code);
    error = std::string(method) + " /" + path + ": " + detail + " (curl " +
            std::to_string(static_cast<int>(code)) + ")";
  }
  if (sr.ok && s.op == Op::kGet) {
    auto it = options_.expect.find(s.path);
    if (it != options_.expect.end()) {
      if (sr.down != it->second.first) {
        sr.ok = false;
        error = "GET /" + path + ": " + std::to_string(sr.down) + " bytes, expected " +
                std::to_string(it->second.first);
      } else if (p->sha && it->second.second && p->sha->Finish() != *it->second.second) {
        sr.ok = false;
        error = "GET /" + path + ": sha256 differs from the origin's";
      }
    }
  }
  if (!error.empty()) r.errors.push_back(std::move(error));
  r.down += sr.down;
  r.up += sr.up;
  r.steps.push_back(sr);
  p->prev_missing = sr.missing;
  ++p->next;
  RunStep(p);
}

void Fleet::Finish(Phone* p) {
  PhoneResult& r = results_[p->index];
  uint64_t now = uv_hrtime();
  r.boot_ms = static_cast<double>(now - p->start_ns) / 1e6;
  r.end_ms = static_cast<double>(now - t0_) / 1e6;
  if (p->easy != nullptr) {
    if (p->in_multi) curl_multi_remove_handle(multi_, p->easy);
    curl_easy_cleanup(p->easy);
    p->easy = nullptr;
    p->in_multi = false;
  }
  p->upload.clear();
  p->upload.shrink_to_fit();
  --running_;
  ++finished_;
  if (ended_) return;
  if (finished_ == specs_.size()) {
    ended_ = true;
    uv_timer_stop(&start_timer_);
    uv_timer_stop(&kick_timer_);
    done_();
    return;
  }
  StartDue();
}

void Fleet::Abort() {
  if (!started_ || ended_) return;
  ended_ = true;
  uv_timer_stop(&start_timer_);
  uv_timer_stop(&kick_timer_);
  for (auto& p : phone_) {
    if (p->easy == nullptr) continue;
    PhoneResult& r = results_[p->index];
    r.completed = false;
    r.end_ms = elapsed_ms();
    r.boot_ms = static_cast<double>(uv_hrtime() - p->start_ns) / 1e6;
    if (p->in_multi) curl_multi_remove_handle(multi_, p->easy);
    curl_easy_cleanup(p->easy);
    p->easy = nullptr;
    p->in_multi = false;
  }
  done_();
}

void Fleet::Close() {
  if (closed_) return;
  closed_ = true;
  for (auto& p : phone_) {
    if (p->easy == nullptr) continue;
    if (p->in_multi) curl_multi_remove_handle(multi_, p->easy);
    curl_easy_cleanup(p->easy);
    p->easy = nullptr;
  }
  curl_multi_cleanup(multi_);
  multi_ = nullptr;
  while (!sockets_.empty()) Unwatch(*sockets_.begin());
  uv_close(reinterpret_cast<uv_handle_t*>(&curl_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&start_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&kick_timer_), nullptr);
}

// ---- libcurl on libuv (as sync/curl_loop.cc) ----------------------------------------------------

int Fleet::OnSocket(CURL*, curl_socket_t s, int what, void* userp, void* socketp) noexcept {
  auto* self = static_cast<Fleet*>(userp);
  auto* sock = static_cast<Socket*>(socketp);
  if (what == CURL_POLL_REMOVE) {
    if (sock != nullptr) {
      if (!self->closed_) curl_multi_assign(self->multi_, s, nullptr);
      self->Unwatch(sock);
    }
    return 0;
  }
  if (self->closed_) return 0;
  if (sock == nullptr) {
    sock = new Socket;
    sock->owner = self;
    sock->fd = s;
    sock->poll.data = sock;
    if (uv_poll_init_socket(self->loop_, &sock->poll, s) != 0) {
      delete sock;
      return -1;
    }
    curl_multi_assign(self->multi_, s, sock);
    self->sockets_.insert(sock);
  }
  int events = 0;
  if ((what & CURL_POLL_IN) != 0) events |= UV_READABLE;
  if ((what & CURL_POLL_OUT) != 0) events |= UV_WRITABLE;
  uv_poll_start(&sock->poll, events, [](uv_poll_t* poll, int status, int ev) noexcept {
    auto* so = static_cast<Socket*>(poll->data);
    if (so->owner == nullptr) return;
    int flags = 0;
    if (status < 0) flags |= CURL_CSELECT_ERR;
    if ((ev & UV_READABLE) != 0) flags |= CURL_CSELECT_IN;
    if ((ev & UV_WRITABLE) != 0) flags |= CURL_CSELECT_OUT;
    so->owner->Action(so->fd, flags);
  });
  return 0;
}

int Fleet::OnTimer(CURLM*, long timeout_ms, void* userp) noexcept {
  auto* self = static_cast<Fleet*>(userp);
  if (self->closed_) return 0;
  if (timeout_ms < 0) {
    uv_timer_stop(&self->curl_timer_);
    return 0;
  }
  uv_timer_start(
      &self->curl_timer_,
      [](uv_timer_t* t) noexcept { static_cast<Fleet*>(t->data)->Action(CURL_SOCKET_TIMEOUT, 0); },
      static_cast<uint64_t>(timeout_ms), 0);
  return 0;
}

void Fleet::Unwatch(Socket* sock) {
  sockets_.erase(sock);
  sock->owner = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&sock->poll),
           [](uv_handle_t* h) noexcept { delete static_cast<Socket*>(h->data); });
}

void Fleet::Action(curl_socket_t s, int events) {
  if (closed_ || multi_ == nullptr) return;
  int running = 0;
  curl_multi_socket_action(multi_, s, events, &running);
  ReapDone();
}

void Fleet::ReapDone() {
  std::vector<std::pair<CURL*, CURLcode>> finished;
  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
    if (m->msg == CURLMSG_DONE) finished.emplace_back(m->easy_handle, m->data.result);
  }
  for (auto [easy, code] : finished) {
    if (ended_) return;
    Phone* p = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p);
    if (p == nullptr || p->easy != easy || !p->in_multi) continue;
    curl_multi_remove_handle(multi_, easy);
    StepDone(p, code);
  }
}

}  // namespace siterelay::fleet
