#include "sync/fetcher.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "relay/base/http_date.h"
#include "relay/base/log.h"
#include "relay/base/mime.h"
#include "relay/base/strings.h"
#include "relay/base/uv.h"
#include "siterelay_version.h"
#include "sync/backoff.h"

namespace siterelay::sync {
namespace {

constexpr uint64_t kResumeBackoffMs = 500;  // doubled per attempt
// Readers hear of new bytes at most this often (the first bytes at once). libcurl hands the body
// over in 16 KiB pieces; waking a hundred readers for each, inside libcurl's callback, cost more
// sendfile(2) calls than bytes and starved the rest of the loop (docs/BENCHMARKS.md, boot storm).
constexpr uint64_t kReaderTickMs = 10;

bool IsFileUrl(std::string_view url) { return url.starts_with("file:"); }

// "bytes 100-199/1000" -> 100.
std::optional<uint64_t> ContentRangeStart(std::string_view v) {
  v = TrimOws(v);
  if (!v.starts_with("bytes ")) return std::nullopt;
  v.remove_prefix(6);
  uint64_t first = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), first);
  if (ec != std::errc() || p == v.data() || p == v.data() + v.size() || *p != '-') {
    return std::nullopt;
  }
  return first;
}

}  // namespace

struct Fetcher::Transfer {
  Fetcher* owner = nullptr;
  std::string key;  // in transfers_
  std::string path;
  // FetchObject(): the digest the body must have, and no entry published for it.
  std::optional<Digest> expected;
  std::function<void(Status)> object_done;
  Priority priority = Priority::kPhone;
  bool counted_foreground = false;  // in the limiter's count of phone-facing transfers
  bool queued = false;              // in its lane's queue for `priority`, at `queue_at`
  std::list<Transfer*>::iterator queue_at;
  bool has_slot = false;            // holds one of its lane's slots
  bool gated = false;  // a new body goes to the PublishGate, and no reader is streamed it
  size_t upstream = 0;
  std::string url;
  CURL* easy = nullptr;
  curl_slist* request_headers = nullptr;
  std::vector<Waiter> waiters;
  // The cached copy's validators, for a conditional request.
  bool conditional = false;
  std::string cached_etag, cached_last_modified;
  // The response being received (the last one, after redirects).
  size_t header_bytes = 0;
  std::string etag, last_modified, content_encoding, content_range, retry_after;
  bool body_started = false;
  bool storing = false;  // the body is the file (200/206), not an error page
  long status = 0;
  Status write_error;
  // The body, across resumes.
  std::unique_ptr<cache::BlobWriter> writer;
  std::shared_ptr<cache::GrowingFile> growing;  // shared with every reader streaming it
  std::string body_etag, body_last_modified;    // validators of the body being written
  bool body_encoded = false;
  int64_t modified = 0;
  int resumes = 0;
  int64_t retry_after_waited = 0;  // seconds this transfer waited out the origin's Retry-After
  std::unique_ptr<Timer> retry;
  std::unique_ptr<Timer> tick;  // tells readers of bytes written since the last tick
  char error[CURL_ERROR_SIZE] = {};  // libcurl's detail on a failure

  void ResetResponse() {
    header_bytes = 0;
    etag.clear();
    last_modified.clear();
    content_encoding.clear();
    content_range.clear();
    retry_after.clear();
    body_started = false;
    storing = false;
    status = 0;
    write_error = Status::Ok();
    error[0] = '\0';
  }
  void FreeHandle() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    easy = nullptr;
    if (request_headers != nullptr) curl_slist_free_all(request_headers);
    request_headers = nullptr;
  }
  ~Transfer() { FreeHandle(); }
};

struct Fetcher::Document {
  CURL* easy = nullptr;
  std::string url;
  std::string body;
  size_t max_bytes = 0;
  bool too_big = false;
  std::function<void(Result<std::string>)> done;
  char error[CURL_ERROR_SIZE] = {};
  ~Document() {
    if (easy != nullptr) curl_easy_cleanup(easy);
  }
};

Fetcher::Fetcher(uv_loop_t* loop, const OriginConfig& config, cache::Cache* cache, Clock* clock)
    : loop_(loop),
      cache_(cache),
      clock_(clock),
      config_(config),
      origins_(config),
      limiter_(loop, static_cast<uint64_t>(config.max_rate)) {
  for (size_t i = 0; i < origins_.upstreams().size(); ++i) {
    pools_.push_back(std::make_unique<CurlLoop>(loop));
  }
  busy_until_.assign(origins_.upstreams().size(), 0);
  lanes_.resize(origins_.upstreams().size());
  pump_ = std::make_unique<Timer>(loop);
}

Fetcher::~Fetcher() {
  *alive_ = false;
  for (auto& [path, t] : transfers_) {
    if (t->easy != nullptr) pools_[t->upstream]->Remove(t->easy);
  }
  transfers_.clear();
  for (auto& [d, doc] : documents_) pools_[0]->Remove(doc->easy);
  documents_.clear();
  pools_.clear();
}

bool Fetcher::KnownMissing(std::string_view path) {
  auto it = missing_.find(path);
  if (it == missing_.end()) return false;
  if (clock_->NowSeconds() < it->second) return true;
  missing_.erase(it);
  return false;
}

void Fetcher::Fetch(const std::string& path, Want want, std::function<void(FetchOutcome)> done,
                    Priority priority) {
  if (auto it = transfers_.find(path); it != transfers_.end()) {
    Transfer* t = it->second.get();
    Raise(t, priority);
    // Single flight: attach to the transfer already running for this path.
    if (want == Want::kBody && t->growing && !t->growing->failed() && !t->gated) {
      done(FetchOutcome{Status::Ok(), t->growing, t->modified});
      return;
    }
    t->waiters.push_back(Waiter{want, std::move(done)});
    if (t->queued && t->priority == Priority::kPhone && t->waiters.size() == 2) {
      // Several phones wait for it (a shared config, an image): ahead of the misses only one
      // phone waits for, which in a storm are a thousand <mac>.cfg 404s queued before it.
      auto& q = lanes_[t->upstream].queued[static_cast<int>(Priority::kPhone)];
      q.splice(q.begin(), q, t->queue_at);
    }
    return;
  }
  Transfer* t = NewTransfer(path, path, priority);
  const cache::Entry* e = cache_->Lookup(path);
  t->gated = gate_ != nullptr && e != nullptr && gate_->Gated(path);
  if (e != nullptr && e->source == cache::Source::kOrigin &&
      (!e->etag.empty() || !e->last_modified.empty())) {
    t->conditional = true;
    t->cached_etag = e->etag;
    t->cached_last_modified = e->last_modified;
  }
  t->waiters.push_back(Waiter{want, std::move(done)});
}

Fetcher::Transfer* Fetcher::NewTransfer(const std::string& key, const std::string& path,
                                        Priority priority) {
  auto owned = std::make_unique<Transfer>();
  Transfer* t = owned.get();
  t->owner = this;
  t->key = key;
  t->path = path;
  t->upstream = origins_.Route(path);
  t->url = origins_.UrlFor(t->upstream, path);
  t->retry = std::make_unique<Timer>(loop_);
  t->tick = std::make_unique<Timer>(loop_);
  transfers_.emplace(key, std::move(owned));
  t->priority = Priority::kBackground;
  Raise(t, priority);
  Enqueue(t);
  return t;
}

size_t Fetcher::queued(Priority p) const {
  size_t n = 0;
  for (const Lane& lane : lanes_) n += lane.queued[static_cast<int>(p)].size();
  return n;
}

void Fetcher::Enqueue(Transfer* t, bool first) {
  auto& q = lanes_[t->upstream].queued[static_cast<int>(t->priority)];
  t->queue_at = first ? q.insert(q.begin(), t) : q.insert(q.end(), t);
  t->queued = true;
  // From the next loop iteration: Fetch() may be called from inside a libcurl callback (a reader
  // finishing one body asks for the next file), where libcurl forbids adding handles.
  if (!pump_->active()) pump_->Start(0, [this] { Pump(); });
}

void Fetcher::Pump() {
  for (size_t u = 0; u < lanes_.size(); ++u) {
    Lane& lane = lanes_[u];
    for (int p = 0; p < kPriorities; ++p) {
      size_t limit = p == static_cast<int>(Priority::kPhone) ? kTransferSlots
                     : p == static_cast<int>(Priority::kSoon) ? kTransferSlots - kPhoneReserve
                                                               : kBackgroundSlots;
      auto& q = lane.queued[p];
      while (!q.empty() && lane.active < limit) {
        Transfer* t = q.front();
        q.pop_front();
        t->queued = false;
        t->has_slot = true;
        ++lane.active;
        Start(t);  // may end `t`, which gives the slot back
      }
    }
  }
}

void Fetcher::ReleaseSlot(Transfer* t) {
  if (!t->has_slot) return;
  t->has_slot = false;
  --lanes_[t->upstream].active;
  if (!pump_->active()) pump_->Start(0, [this] { Pump(); });
}

void Fetcher::Raise(Transfer* t, Priority priority) {
  if (priority >= t->priority) return;
  if (t->queued) {
    lanes_[t->upstream].queued[static_cast<int>(t->priority)].erase(t->queue_at);
    t->priority = priority;
    Enqueue(t);
  }
  t->priority = priority;
  if (priority == Priority::kBackground) return;
  limiter_.Promote(t);  // a paused body may take bytes now
  if (priority != Priority::kPhone || t->counted_foreground) return;
  t->counted_foreground = true;
  limiter_.ForegroundStarted();
}

void Fetcher::FetchObject(const std::string& path, const Digest& expected,
                          std::function<void(Status)> done) {
  std::string key = "\x01" + path;
  if (transfers_.count(key) != 0) {
    // The manifest pass asks once per path; a second ask is a caller bug, answered plainly.
    done(Status::AlreadyExists(path + " is already being fetched"));
    return;
  }
  Transfer* t = NewTransfer(key, path, Priority::kBackground);
  t->expected = expected;
  t->object_done = std::move(done);
}

void Fetcher::Configure(Transfer* t) {
  CURL* h = t->easy;
  ConfigureEasy(h, origins_.upstreams()[t->upstream], /*auth=*/true, t->error);
  curl_easy_setopt(h, CURLOPT_URL, t->url.c_str());
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &Fetcher::OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Fetcher::OnWrite);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, t);

  curl_slist* headers = nullptr;
  if (t->writer && t->writer->size() > 0) {
    // Resume after a cut (RFC 9110 section 14.2): the rest, but only if the file is still the
    // one we have the beginning of (If-Range); otherwise the origin sends all of it.
    std::string range = std::to_string(t->writer->size()) + "-";
    curl_easy_setopt(h, CURLOPT_RANGE, range.c_str());
    std::string validator = !t->body_etag.empty() ? t->body_etag : t->body_last_modified;
    headers = curl_slist_append(headers, ("If-Range: " + validator).c_str());
  } else if (t->conditional) {
    if (!t->cached_etag.empty()) {
      headers = curl_slist_append(headers, ("If-None-Match: " + t->cached_etag).c_str());
    }
    if (!t->cached_last_modified.empty()) {
      headers =
          curl_slist_append(headers, ("If-Modified-Since: " + t->cached_last_modified).c_str());
    }
  }
  t->request_headers = headers;
  if (headers != nullptr) curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
}

void Fetcher::Start(Transfer* t) {
  int64_t wait = busy_until_[t->upstream] - clock_->NowSeconds();
  if (wait > 0) {
    // A phone does not wait out an origin's Retry-After when there is a last good copy to give
    // it now, nor a long one. With nothing cached a short wait beats a 502: one 503 with
    // "Retry-After: 1" in a boot storm failed every phone asking for an uncached file in that
    // second, a 404-to-be included (tests/integration/origin_faults_test.sh).
    // In all: an origin that keeps answering 503 must not hold a phone for ever.
    bool phone_waits = t->retry_after_waited + wait <= kPhoneWaitsRetryAfterSeconds &&
                       cache_->Lookup(t->path) == nullptr;
    if (t->priority != Priority::kBackground && !phone_waits) {
      End(t, Status::Unavailable(origins_.upstreams()[t->upstream].name + " asked to wait " +
                                 std::to_string(wait) + " s (Retry-After)"));
      return;
    }
    ReleaseSlot(t);
    t->retry_after_waited += wait;
    // Back at the head of its queue: the transfers that came meanwhile must not push it past
    // another Retry-After.
    t->retry->Start(static_cast<uint64_t>(wait) * 1000, [this, t] { Enqueue(t, /*first=*/true); });
    return;
  }
  t->ResetResponse();
  t->easy = curl_easy_init();
  if (t->easy == nullptr) {
    End(t, Status::Internal("out of memory for a curl handle"));
    return;
  }
  Configure(t);
  ++stats_.transfers;
  if (t->conditional && !t->writer) ++stats_.revalidations;
  Status s = pools_[t->upstream]->Add(t->easy, [this, t](CURLcode code) { Done(t, code); });
  if (!s.ok()) End(t, s);
}

size_t Fetcher::OnHeader(char* data, size_t size, size_t n, void* userp) noexcept {
  auto* t = static_cast<Transfer*>(userp);
  size_t len = size * n;
  t->header_bytes += len;
  if (t->header_bytes > kMaxHeaderBytes) {
    t->write_error = Status::InvalidArgument("response headers over " +
                                             std::to_string(kMaxHeaderBytes) + " bytes");
    return 0;  // libcurl fails the transfer
  }
  std::string_view line(data, len);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    // A new response (after a redirect or a 100): forget the previous one's fields.
    size_t total = t->header_bytes;
    t->ResetResponse();
    t->header_bytes = total;
    return len;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return len;
  std::string_view name = line.substr(0, colon);
  std::string value(TrimOws(line.substr(colon + 1)));
  if (EqualsIgnoreCase(name, "etag")) {
    t->etag = value;
  } else if (EqualsIgnoreCase(name, "last-modified")) {
    t->last_modified = value;
  } else if (EqualsIgnoreCase(name, "content-encoding")) {
    t->content_encoding = value;
  } else if (EqualsIgnoreCase(name, "content-range")) {
    t->content_range = value;
  } else if (EqualsIgnoreCase(name, "retry-after")) {
    t->retry_after = value;
  }
  return len;
}

size_t Fetcher::OnWrite(char* data, size_t size, size_t n, void* userp) noexcept {
  auto* t = static_cast<Transfer*>(userp);
  size_t len = size * n;
  Fetcher* self = t->owner;
  if (!t->body_started) {
    t->body_started = true;
    if (!self->BeginBody(t)) return 0;
  }
  if (!t->storing) return len;  // an error page: not kept
  bool background = t->priority == Priority::kBackground;
  if (!self->limiter_.Take(len, background)) {
    // Over max_rate, or a background transfer while a phone waits for another: libcurl keeps
    // this chunk and delivers it again after the resume.
    self->limiter_.Wait(t, background, [t] { curl_easy_pause(t->easy, CURLPAUSE_CONT); });
    return CURL_WRITEFUNC_PAUSE;
  }
  Status s = t->writer->Append(std::span(reinterpret_cast<const uint8_t*>(data), len));
  if (!s.ok()) {
    t->write_error = s;
    return 0;
  }
  self->stats_.bytes_from_origin += len;
  self->stats_.bytes_by_class[static_cast<size_t>(ContentClassOf(t->path))] += len;
  if (t->growing->written() == 0) {
    t->growing->Grow(t->writer->size());  // the first bytes go out at once
  } else if (!t->tick->active()) {
    t->tick->Start(kReaderTickMs, [t] { t->growing->Grow(t->writer->size()); });
  }
  return len;
}

bool Fetcher::BeginBody(Transfer* t) {
  long code = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
  if (code == 0 && IsFileUrl(t->url)) code = 200;
  t->status = code;
  if (code == 206 && t->writer) {
    auto start = ContentRangeStart(t->content_range);
    if (!start || *start != t->writer->size()) {
      t->write_error = Status::Unavailable("resume answered with Content-Range \"" +
                                           t->content_range + "\", wanted byte " +
                                           std::to_string(t->writer->size()));
      return false;
    }
    t->storing = true;
    return true;
  }
  if (code != 200) return true;
  if (t->writer) {
    // The origin sent the whole file to a resume: it changed since the cut. Readers that were
    // sent the old beginning cannot be given the new end.
    Status s = t->writer->Restart();
    if (!s.ok()) {
      t->write_error = s;
      return false;
    }
    t->tick->Stop();
    t->growing->Fail(Status::Unavailable(t->path + " changed at the origin during the transfer"));
    t->growing.reset();
  } else {
    auto w = cache_->store().CreateStreaming();
    if (!w.ok()) {
      t->write_error = w.status();
      return false;
    }
    t->writer = std::move(w).value();
  }
  int raw = ::open(t->writer->tmp_path().c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) {
    t->write_error = PosixError("open " + t->writer->tmp_path(), errno);
    return false;
  }
  t->body_encoded = !t->content_encoding.empty() && !EqualsIgnoreCase(t->content_encoding,
                                                                      "identity");
  std::optional<uint64_t> size;
  curl_off_t length = -1;
  curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
  // With a Content-Encoding the length is the encoded one; the decoded size is known at the end.
  if (!t->body_encoded && length >= 0) size = static_cast<uint64_t>(length);
  t->growing = std::make_shared<cache::GrowingFile>(ScopedFd(FileSystem::Default(), raw), size);
  t->body_etag = t->etag.starts_with("W/") ? std::string() : t->etag;  // If-Range needs strong
  t->body_last_modified = t->last_modified;
  auto lm = ParseHttpDate(t->last_modified);
  t->modified = lm ? *lm : clock_->NowSeconds();
  t->storing = true;
  if (!t->gated) {
    Answer(t, FetchOutcome{Status::Ok(), t->growing, t->modified}, /*only_body_waiters=*/true);
  }
  return true;
}

void Fetcher::Done(Transfer* t, CURLcode code) {
  ReleaseSlot(t);  // off the wire, whatever comes next
  if (t->status == 0) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
  if (code == CURLE_OK && t->status == 0 && IsFileUrl(t->url)) t->status = 200;
  // A body already partly here (this attempt's or an earlier one's) is asked for again from where
  // it stopped, whatever ended this attempt: a cut, a refused connection, a 5xx.
  bool resumable = t->growing && !t->growing->failed() && t->writer && t->writer->size() > 0 &&
                   !t->body_encoded &&
                   (!t->body_etag.empty() || !t->body_last_modified.empty()) &&
                   t->resumes < kMaxResumes;
  if (code != CURLE_OK) {
    Status why = !t->write_error.ok() ? t->write_error : CurlError(t->url, code, t->error);
    if (why.Is(StatusCode::kNotFound)) {  // file:// origin without the file
      t->status = 404;
    } else {
      if (resumable && why.Is(StatusCode::kUnavailable)) {
        Retry(t, why);
        return;
      }
      End(t, why);
      return;
    }
  }
  if (t->status == 200 || t->status == 206) {
    if (!t->storing && !t->body_started) {
      // An empty file: no write callback ran.
      t->body_started = true;
      if (!BeginBody(t)) {
        End(t, t->write_error);
        return;
      }
    }
    if (!t->storing) {  // a 206 nobody asked for: not the file
      End(t, Status::Unavailable(t->url + ": origin answered 206 to a request without Range"));
      return;
    }
    Finish(t);
    return;
  }
  if (t->status == 304 && t->conditional) {
    ++stats_.not_modified;
    const cache::Entry* e = cache_->Lookup(t->path);
    if (e == nullptr) {
      End(t, Status::Unavailable("304 for " + t->path + ", which is no longer cached"));
      return;
    }
    cache::Entry fresh = *e;
    int64_t now = clock_->NowSeconds();
    fresh.fetched_at = now;
    fresh.fresh_until = now + config_.fresh_for;
    if (!t->etag.empty()) fresh.etag = t->etag;
    if (!t->last_modified.empty()) fresh.last_modified = t->last_modified;
    Publish(t, {std::move(fresh)});
    return;
  }
  if (t->status == 404 || t->status == 410) {
    ++stats_.not_found;
    if (missing_.size() >= kMaxNegativeEntries) {
      int64_t now = clock_->NowSeconds();
      std::erase_if(missing_, [now](const auto& kv) { return kv.second <= now; });
      if (missing_.size() >= kMaxNegativeEntries) missing_.clear();
    }
    missing_[t->path] = clock_->NowSeconds() + config_.negative_for;
    End(t, Status::NotFound(t->path + " is not on the origin"));
    return;
  }
  if ((t->status == 429 || t->status == 503) && !t->retry_after.empty()) {
    // The origin says when to come back (RFC 9110 section 10.2.3): nothing goes to it before.
    if (auto secs = ParseRetryAfter(t->retry_after, clock_->NowSeconds())) {
      busy_until_[t->upstream] = clock_->NowSeconds() + *secs;
    }
  }
  Status why = Status::Unavailable(t->url + ": origin answered " + std::to_string(t->status));
  if (resumable && t->status >= 500) {
    Retry(t, why);
    return;
  }
  End(t, why);
}

void Fetcher::Retry(Transfer* t, const Status& why) {
  ++stats_.resumes;
  limiter_.Cancel(t);
  uint64_t delay = Backoff(kResumeBackoffMs, t->resumes);
  ++t->resumes;
  SR_LOG(kWarning) << "sync: " << MaskSecrets(why.message()) << "; resuming " << t->path
                   << " at byte " << t->writer->size() << " in " << delay << " ms";
  t->FreeHandle();
  // Ahead of its priority's queue: readers are part-way through the body.
  t->retry->Start(delay, [this, t] { Enqueue(t, /*first=*/true); });
}

void Fetcher::Finish(Transfer* t) {
  uint64_t got = t->writer->size();
  if (t->growing->size() && *t->growing->size() != got) {
    End(t, Status::Unavailable(t->url + ": body ended at " + std::to_string(got) + " of " +
                               std::to_string(*t->growing->size()) + " bytes"));
    return;
  }
  // The data is all in the file (written through); sealing here only finishes the hash.
  auto sealed = t->writer->Seal(t->expected ? &*t->expected : nullptr, /*sync=*/false);
  if (!sealed.ok()) {
    End(t, sealed.status());
    return;
  }
  // Complete and correct as the origin sent it: readers may have the last byte now, while the
  // blob is made durable and published.
  t->tick->Stop();
  t->growing->Grow(got);
  t->growing->Complete();
  t->FreeHandle();
  cache::Entry e;
  e.path = t->path;
  e.sha256 = sealed->digest;
  e.size = sealed->size;
  e.content_type = std::string(ContentTypeForPath(t->path));
  e.etag = t->body_etag.empty() ? t->etag : t->body_etag;
  e.last_modified = t->body_last_modified;
  int64_t now = clock_->NowSeconds();
  e.fetched_at = now;
  e.fresh_until = now + config_.fresh_for;
  e.source = cache::Source::kOrigin;
  auto blob = std::make_shared<cache::SealedBlob>(*sealed);
  auto result = std::make_shared<Status>();
  cache::ObjectStore* store = &cache_->store();
  std::weak_ptr<bool> alive = alive_;
  Status q = QueueWork(
      loop_,
      [store, blob, result] {
        FileSystem* fs = store->fs();
        auto fd = fs->Open(blob->tmp_path, O_RDONLY | O_CLOEXEC, 0);
        Status s = fd.ok() ? fs->Fsync(*fd) : fd.status();
        if (fd.ok()) (void)fs->Close(*fd);
        std::vector<cache::SealedBlob> one{*blob};
        if (s.ok()) {
          s = store->Install(one, /*already_synced=*/true);
        } else {
          (void)fs->Unlink(blob->tmp_path);
        }
        *result = s;
      },
      [this, alive, t, result, e = std::move(e)]() mutable {
        if (alive.expired() || !*alive.lock()) return;
        if (!result->ok()) {
          End(t, *result);
          return;
        }
        if (t->expected) {  // a manifest's file: the pass publishes the set
          ++stats_.published;
          End(t, Status::Ok());
          return;
        }
        const cache::Entry* previous = cache_->Lookup(t->path);
        if (t->gated && gate_ != nullptr && previous != nullptr && previous->sha256 != e.sha256) {
          // The version in force stays, fresh again (as after a 304), and readers get it; the
          // gate is told once that is written, so whatever it publishes lands after it.
          cache::Entry kept = *previous;
          kept.fetched_at = e.fetched_at;
          kept.fresh_until = e.fresh_until;
          cache_->PublishAsync(loop_, {std::move(kept)},
                               [this, alive, t, e = std::move(e)](Status s) mutable {
                                 if (alive.expired() || !*alive.lock()) return;
                                 if (s.ok() && gate_ != nullptr) gate_->Arrived(std::move(e));
                                 End(t, s);
                               });
          return;
        }
        Publish(t, {std::move(e)});
      });
  if (!q.ok()) {
    (void)store->fs()->Unlink(blob->tmp_path);
    End(t, q);
  }
}

void Fetcher::Publish(Transfer* t, std::vector<cache::Entry> entries) {
  std::weak_ptr<bool> alive = alive_;
  bool body = t->status != 304;
  cache_->PublishAsync(loop_, std::move(entries), [this, alive, t, body](Status s) {
    if (alive.expired() || !*alive.lock()) return;
    if (s.ok() && body) ++stats_.published;
    End(t, s);
  });
}

void Fetcher::Answer(Transfer* t, const FetchOutcome& o, bool only_body_waiters) {
  std::vector<Waiter> now;
  std::vector<Waiter> keep;
  for (Waiter& w : t->waiters) {
    (only_body_waiters && w.want != Want::kBody ? keep : now).push_back(std::move(w));
  }
  t->waiters = std::move(keep);
  for (Waiter& w : now) w.done(o);
}

void Fetcher::End(Transfer* t, const Status& status) {
  if (!status.ok() && !status.Is(StatusCode::kNotFound)) {
    ++stats_.failures;
    SR_LOG(kWarning) << "sync: " << t->path << ": " << MaskSecrets(status.message());
  }
  if (t->growing && !t->growing->complete()) {
    t->growing->Fail(status.ok() ? Status::Internal("transfer ended early") : status);
  }
  if (t->easy != nullptr) pools_[t->upstream]->Remove(t->easy);
  if (t->queued) lanes_[t->upstream].queued[static_cast<int>(t->priority)].erase(t->queue_at);
  t->queued = false;
  ReleaseSlot(t);
  limiter_.Cancel(t);
  if (t->counted_foreground) limiter_.ForegroundEnded();
  // Out of the map before anyone is told, so a waiter asking again starts a new transfer.
  auto node = transfers_.extract(t->key);
  std::unique_ptr<Transfer> owned = std::move(node.mapped());
  std::vector<Waiter> waiters = std::move(t->waiters);
  FetchOutcome o{status, nullptr, t->modified};
  for (Waiter& w : waiters) w.done(o);
  if (t->object_done) t->object_done(status);
}

// ---- documents ---------------------------------------------------------------------------------


namespace {

// "https://host:port/a/b" -> "https://host:port/": where credentials may go.
std::string_view SiteOf(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return url;
  size_t slash = url.find('/', scheme + 3);
  return slash == std::string_view::npos ? url : url.substr(0, slash + 1);
}

}  // namespace

void Fetcher::FetchDocument(const std::string& url, size_t max_bytes,
                            std::function<void(Result<std::string>)> done) {
  auto owned = std::make_unique<Document>();
  Document* d = owned.get();
  d->url = url;
  d->max_bytes = max_bytes;
  d->done = std::move(done);
  d->easy = curl_easy_init();
  if (d->easy == nullptr) {
    d->done(Status::Internal("out of memory for a curl handle"));
    return;
  }
  const Upstream& up = origins_.upstreams()[0];
  ConfigureEasy(d->easy, up, /*auth=*/SiteOf(url) == SiteOf(up.url), d->error);
  curl_easy_setopt(d->easy, CURLOPT_URL, d->url.c_str());
  curl_easy_setopt(d->easy, CURLOPT_WRITEDATA, d);
  curl_easy_setopt(
      d->easy, CURLOPT_WRITEFUNCTION,
      +[](char* data, size_t size, size_t n, void* userp) noexcept -> size_t {
        auto* doc = static_cast<Document*>(userp);
        size_t len = size * n;
        if (doc->body.size() + len > doc->max_bytes) {
          doc->too_big = true;
          return 0;
        }
        doc->body.append(data, len);
        return len;
      });
  documents_.emplace(d, std::move(owned));
  ++stats_.transfers;
  Status s = pools_[0]->Add(d->easy, [this, d](CURLcode code) {
    auto node = documents_.extract(d);
    std::unique_ptr<Document> doc = std::move(node.mapped());
    long status = 0;
    curl_easy_getinfo(doc->easy, CURLINFO_RESPONSE_CODE, &status);
    if (code == CURLE_OK && status == 0 && IsFileUrl(doc->url)) status = 200;
    if (doc->too_big) {
      doc->done(Status::ResourceExhausted(doc->url + ": larger than " +
                                          std::to_string(doc->max_bytes) + " bytes"));
    } else if (code != CURLE_OK) {
      ++stats_.failures;
      doc->done(CurlError(doc->url, code, doc->error));
    } else if (status == 404 || status == 410) {
      doc->done(Status::NotFound(doc->url + ": origin answered " + std::to_string(status)));
    } else if (status != 200) {
      ++stats_.failures;
      doc->done(Status::Unavailable(doc->url + ": origin answered " + std::to_string(status)));
    } else {
      stats_.bytes_from_origin += doc->body.size();
      doc->done(std::move(doc->body));
    }
  });
  if (!s.ok()) {
    auto node = documents_.extract(d);
    node.mapped()->done(s);
  }
}

}  // namespace siterelay::sync
