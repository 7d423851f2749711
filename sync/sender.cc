#include "sync/sender.h"

#include <ctime>

#include "relay/base/log.h"
#include "relay/base/strings.h"
#include "sync/backoff.h"

namespace siterelay::sync {
namespace {

// A whole upload, from the first byte to the answer: generous for a thin link, bounded so a
// black-holed request cannot hold its queue forever (the stall limit usually ends it first).
constexpr long kRequestTimeoutSeconds = 600;
// What of an answer's body is kept for the log.
constexpr size_t kKeptReplyBytes = 4096;

}  // namespace

struct Sender::Request {
  Upstream upstream;
  SendRequest request;
  std::function<void(SendReply)> done;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  char error[CURL_ERROR_SIZE] = {};
  SendReply reply;
  bool started = false;

  ~Request() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
  }
};

Sender::Sender(uv_loop_t* loop, RateLimiter* limiter)
    : loop_(loop),
      own_limiter_(limiter == nullptr ? std::make_unique<RateLimiter>(loop, 0) : nullptr),
      limiter_(limiter != nullptr ? limiter : own_limiter_.get()) {}

Sender::~Sender() {
  for (auto& [raw, r] : requests_) {
    limiter_->Cancel(raw);
    if (r->started) pools_[r->upstream.name]->Remove(r->easy);
  }
}

void Sender::Send(const Upstream& upstream, SendRequest request,
                  std::function<void(SendReply)> done) {
  auto owned = std::make_unique<Request>();
  Request* r = owned.get();
  r->upstream = upstream;
  r->request = std::move(request);
  r->done = std::move(done);
  requests_.emplace(r, std::move(owned));
  // Never before Send() returns (the limiter wakes waiters from its timer), and only once the
  // budget lets the body through.
  limiter_->Wait(r, /*background=*/true, [this, r] { Start(r); });
}

void Sender::Start(Request* r) {
  if (!limiter_->Take(r->request.body.size(), /*background=*/true)) {
    limiter_->Wait(r, /*background=*/true, [this, r] { Start(r); });
    return;
  }
  r->easy = curl_easy_init();
  if (r->easy == nullptr) {
    Finish(r, CURLE_OUT_OF_MEMORY);
    return;
  }
  CURL* h = r->easy;
  ConfigureEasy(h, r->upstream, /*auth=*/true, r->error);
  curl_easy_setopt(h, CURLOPT_URL, r->request.url.c_str());
  curl_easy_setopt(h, CURLOPT_TIMEOUT, kRequestTimeoutSeconds);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->request.method.c_str());
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->request.body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(r->request.body.size()));
  r->headers = curl_slist_append(r->headers, "Expect:");  // no 100-continue round trip
  for (const std::string& line : r->request.headers) {
    r->headers = curl_slist_append(r->headers, line.c_str());
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(
      h, CURLOPT_HEADERFUNCTION,
      +[](char* data, size_t size, size_t n, void* userp) noexcept -> size_t {
        auto* req = static_cast<Request*>(userp);
        std::string_view line(data, size * n);
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
        if (line.starts_with("HTTP/")) req->reply.retry_after_ms.reset();  // a new answer
        constexpr std::string_view kRetry = "retry-after:";
        if (line.size() > kRetry.size() && EqualsIgnoreCase(line.substr(0, kRetry.size()), kRetry)) {
          auto s = ParseRetryAfter(TrimOws(line.substr(kRetry.size())),
                                   static_cast<int64_t>(std::time(nullptr)));
          if (s) req->reply.retry_after_ms = *s * 1000;
        }
        return size * n;
      });
  curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(
      h, CURLOPT_WRITEFUNCTION,
      +[](char* data, size_t size, size_t n, void* userp) noexcept -> size_t {
        auto* req = static_cast<Request*>(userp);
        size_t keep = std::min(size * n, kKeptReplyBytes - std::min(kKeptReplyBytes,
                                                                     req->reply.body.size()));
        req->reply.body.append(data, keep);
        return size * n;
      });
  auto& pool = pools_[r->upstream.name];
  if (pool == nullptr) pool = std::make_unique<CurlLoop>(loop_);
  Status s = pool->Add(h, [this, r](CURLcode code) { Finish(r, code); });
  if (!s.ok()) {
    SR_LOG(kError) << "upstream: " << s.ToString();
    Finish(r, CURLE_FAILED_INIT);
    return;
  }
  r->started = true;
}

void Sender::Finish(Request* r, CURLcode code) {
  auto node = requests_.extract(r);
  std::unique_ptr<Request> req = std::move(node.mapped());
  if (code == CURLE_OK) {
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->reply.http_status);
    bytes_sent_ += req->request.body.size();
  } else {
    req->reply.status = CurlError(req->request.method + " " + req->request.url, code, req->error);
  }
  req->done(std::move(req->reply));
}

}  // namespace siterelay::sync
