#include "tools/phone-fleet/fleet.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace siterelay::fleet {

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
  // Phones are independent devices: no cap on connections to the relay, and room in the
  // connection cache for one idle connection per phone.
  sync::CurlLoopLimits limits;
  limits.max_host_connections = 0;
  limits.max_total_connections = 0;
  limits.max_cached_connections = static_cast<long>(specs_.size() + 16);
  curl_ = std::make_unique<sync::CurlLoop>(loop_, limits);
  uv_timer_init(loop_, &start_timer_);
  uv_timer_init(loop_, &kick_timer_);
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
    // with a 1 s timeout, loses 1 s each time). A periodic CurlLoop::Perform() drives every
    // transfer, so such a stall costs at most kKickMs.
    uv_timer_start(
        &kick_timer_,
        [](uv_timer_t* t) noexcept {
          auto* self = static_cast<Fleet*>(t->data);
          if (self->closed_ || self->ended_) return;
          self->curl_->Perform();
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
  Status added = curl_->Add(h, [this, p](CURLcode code) {
    p->in_multi = false;  // the loop took it out of the multi handle
    if (ended_) return;
    StepDone(p, code);
  });
  if (!added.ok()) {
    results_[p->index].errors.push_back(added.message());
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
        ++r.corrupt;
        error = "GET /" + path + ": " + std::to_string(sr.down) + " bytes, expected " +
                std::to_string(it->second.first);
      } else if (p->sha && it->second.second && p->sha->Finish() != *it->second.second) {
        sr.ok = false;
        ++r.corrupt;
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
    if (p->in_multi) curl_->Remove(p->easy);
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
    if (p->in_multi) curl_->Remove(p->easy);
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
    if (p->in_multi) curl_->Remove(p->easy);
    curl_easy_cleanup(p->easy);
    p->easy = nullptr;
  }
  curl_.reset();  // closes its sockets' and its timer's handles
  uv_close(reinterpret_cast<uv_handle_t*>(&start_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&kick_timer_), nullptr);
}

}  // namespace siterelay::fleet
