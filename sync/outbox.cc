#include "sync/outbox.h"

#include <algorithm>
#include <vector>

#include "relay/base/log.h"
#include "sync/backoff.h"

namespace siterelay::sync {
namespace {

// PUTs at once, over every upstream: settings files are small, and a thin link gains nothing
// from more.
constexpr size_t kMaxInFlight = 2;
// A settings file is at most uploads.max_bytes; this only guards memory against a damaged store.
constexpr size_t kMaxBodyBytes = 256u << 20;

bool TakesUploads(const Upstream& up) {
  return up.url.rfind("http://", 0) == 0 || up.url.rfind("https://", 0) == 0;
}

}  // namespace

Outbox::Outbox(uv_loop_t* loop, const OriginConfig& config, cache::Cache* cache, Sender* sender)
    : loop_(loop), origins_(config), cache_(cache), sender_(sender), timer_(loop) {}

Outbox::~Outbox() { *alive_ = false; }

void Outbox::Start() {
  for (const cache::Entry& e : cache_->List()) {
    if (e.source == cache::Source::kUpload && !e.forwarded) items_.try_emplace(e.path);
  }
  if (!items_.empty()) {
    SR_LOG(kInfo) << "outbox: " << items_.size() << " settings file(s) to send to the origin";
  }
  Kick();
}

void Outbox::Poke(const std::string& path) {
  auto [it, added] = items_.try_emplace(path);
  if (!added) {
    if (it->second.in_flight) it->second.again = true;
    it->second.not_before_ms = 0;  // a new version: no need to wait out the old one's backoff
    it->second.attempts = 0;
  }
  Kick();
}

// Runs Pump() from the loop, not from inside it or a callback it started.
void Outbox::Kick() {
  kicked_ = true;
  timer_.Start(0, [this] { Pump(); });
}

void Outbox::Pump() {
  kicked_ = false;
  uint64_t now = uv_now(loop_);
  std::vector<std::string> due;
  for (auto it = items_.begin(); it != items_.end();) {
    const cache::Entry* e = cache_->Lookup(it->first);
    if (!it->second.in_flight &&
        (e == nullptr || e->source != cache::Source::kUpload || e->forwarded)) {
      it = items_.erase(it);  // gone, replaced by the origin's copy, or sent already
      continue;
    }
    if (!TakesUploads(origins_.upstreams()[origins_.Route(it->first)])) {
      // No origin, or a file:// one: the upload stays here, and keeps winning for phones.
      SR_LOG(kInfo) << "outbox: " << it->first << " stays local: the origin takes no uploads";
      it = items_.erase(it);
      continue;
    }
    if (!it->second.in_flight && it->second.not_before_ms <= now &&
        in_flight_ + due.size() < kMaxInFlight) {
      due.push_back(it->first);
    }
    ++it;
  }
  for (const std::string& path : due) SendOne(path, &items_[path]);
  if (kicked_) return;  // something finished at once: the kick pumps again
  uint64_t next = 0;
  for (const auto& [path, item] : items_) {
    if (item.in_flight || item.not_before_ms <= now) continue;
    if (next == 0 || item.not_before_ms < next) next = item.not_before_ms;
  }
  if (next != 0) timer_.Start(next - now, [this] { Pump(); });
}

void Outbox::SendOne(const std::string& path, Item* item) {
  const cache::Entry* e = cache_->Lookup(path);
  size_t route = origins_.Route(path);
  const Upstream& up = origins_.upstreams()[route];
  item->in_flight = true;
  item->again = false;
  ++in_flight_;
  Digest digest = e->sha256;
  std::string content_type = e->content_type;
  std::string url = origins_.UrlFor(route, path);
  std::string file = cache_->store().PathOf(digest);
  auto body = std::make_shared<Result<std::string>>(Status::Internal("not read"));
  std::weak_ptr<bool> alive = alive_;
  Status q = QueueWork(
      loop_, [body, file] { *body = ReadWholeFile(file, kMaxBodyBytes); },
      [this, alive, body, path, digest, content_type, url, up] {
        if (alive.expired() || !*alive.lock()) return;
        if (!body->ok()) {
          Sent(path, digest, SendReply{body->status(), 0, std::nullopt, ""});
          return;
        }
        SendRequest req;
        req.method = "PUT";
        req.url = url;
        req.headers.push_back("Content-Type: " + content_type);
        req.body = std::move(*body).value();
        sender_->Send(up, std::move(req), [this, alive, path, digest](SendReply reply) {
          if (alive.expired() || !*alive.lock()) return;
          Sent(path, digest, std::move(reply));
        });
      });
  if (!q.ok()) Sent(path, digest, SendReply{q, 0, std::nullopt, ""});
}

void Outbox::Sent(const std::string& path, const Digest& digest, SendReply reply) {
  --in_flight_;
  auto it = items_.find(path);
  if (it != items_.end()) it->second.in_flight = false;
  if (!reply.status.ok()) {
    Failed(path, reply.status.message(), std::nullopt);
    return;
  }
  if (reply.http_status < 200 || reply.http_status > 299) {
    Failed(path, "the origin answered " + std::to_string(reply.http_status), reply.retry_after_ms);
    return;
  }
  ++stats_.sent;
  SR_LOG(kInfo) << "outbox: " << path << " is on the origin (" << reply.http_status << ")";
  std::weak_ptr<bool> alive = alive_;
  cache_->MarkForwardedAsync(loop_, path, digest, [this, alive, path](Status s) {
    if (alive.expired() || !*alive.lock()) return;
    if (!s.ok()) SR_LOG(kWarning) << "outbox: marking " << path << " sent: " << s.ToString();
    auto item = items_.find(path);
    const cache::Entry* e = cache_->Lookup(path);
    if (item != items_.end() && !item->second.in_flight && e != nullptr && e->forwarded) {
      items_.erase(item);  // done
    } else if (item != items_.end()) {
      item->second.attempts = 0;
      item->second.not_before_ms = 0;
    }
    Kick();  // a newer version of the file, if one came meanwhile, goes next
  });
}

void Outbox::Failed(const std::string& path, const std::string& why,
                    std::optional<int64_t> after_ms) {
  ++stats_.failures;
  stats_.last_error = path + ": " + why;
  auto it = items_.find(path);
  if (it != items_.end()) {
    Item& item = it->second;
    uint64_t delay = std::min(Backoff(retry_base_ms_, std::min(item.attempts, 20)), retry_max_ms_);
    if (after_ms && *after_ms > 0) delay = std::max(delay, static_cast<uint64_t>(*after_ms));
    if (item.again) delay = 0;  // a newer version came meanwhile
    ++item.attempts;
    item.not_before_ms = uv_now(loop_) + delay;
    // The first failure and then every tenth: a week-long outage does not flood the log.
    if (item.attempts == 1 || item.attempts % 10 == 0) {
      SR_LOG(kWarning) << "outbox: " << path << " not sent (attempt " << item.attempts
                       << "): " << why << "; next try in " << delay / 1000 << " s";
    }
  }
  Kick();
}

}  // namespace siterelay::sync
