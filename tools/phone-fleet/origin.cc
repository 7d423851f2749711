#include "tools/phone-fleet/origin.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>

namespace siterelay::fleet {
namespace {

constexpr std::string_view kLastModified = "Mon, 01 Jan 2024 00:00:00 GMT";
const std::string kNotFoundBody = "not found\n";
const std::string kUnavailableBody = "unavailable (injected fault)\n";
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string LowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool ParseU64(std::string_view s, uint64_t* out, int base = 10) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && end == s.data() + s.size();
}

struct Head {
  std::string method;
  std::string target;
  bool http10 = false;
  std::unordered_map<std::string, std::string> fields;  // lower-case names; repeats joined
  const std::string* Field(const char* name) const {
    auto it = fields.find(name);
    return it == fields.end() ? nullptr : &it->second;
  }
};

// Parses a request head (without its final empty line); nullopt when malformed.
std::optional<Head> ParseHead(std::string_view text) {
  Head h;
  size_t eol = text.find("\r\n");
  std::string_view line = text.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return std::nullopt;
  h.method = std::string(line.substr(0, sp1));
  h.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  std::string_view version = line.substr(sp2 + 1);
  if (version == "HTTP/1.0") {
    h.http10 = true;
  } else if (version != "HTTP/1.1") {
    return std::nullopt;
  }
  if (h.method.empty() || h.target.empty() || h.target[0] != '/') return std::nullopt;
  while (eol != std::string_view::npos) {
    text.remove_prefix(eol + 2);
    eol = text.find("\r\n");
    line = text.substr(0, eol);
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    std::string name = LowerCopy(line.substr(0, colon));
    std::string value(Trim(line.substr(colon + 1)));
    auto [it, fresh] = h.fields.emplace(name, value);
    if (!fresh) it->second += ", " + value;
  }
  return h;
}

}  // namespace

Result<OriginFaultSpec> ParseOriginFaults(std::string_view text) {
  OriginFaultSpec spec;
  if (text.empty() || text == "none") return spec;
  double sum = 0;
  for (bool more = true; more;) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    more = comma != std::string_view::npos;
    if (more) text.remove_prefix(comma + 1);
    size_t eq = item.find('=');
    double percent = 0;
    if (eq == std::string_view::npos || !ParseNumber(item.substr(eq + 1), &percent) ||
        percent > 100) {
      return Status::InvalidArgument("want kind=percent (0-100), got \"" + std::string(item) +
                                     "\"");
    }
    std::string_view kind = item.substr(0, eq);
    double* slot = kind == "reset"   ? &spec.reset
                   : kind == "error" ? &spec.error
                   : kind == "stall" ? &spec.stall
                   : kind == "short"  ? &spec.short_body
                   : kind == "garble" ? &spec.garble
                                      : nullptr;
    if (slot == nullptr) {
      return Status::InvalidArgument("unknown fault kind \"" + std::string(kind) +
                                     "\" (reset, error, stall, short, garble)");
    }
    sum += percent - *slot;
    *slot = percent;
  }
  if (sum > 100) return Status::InvalidArgument("fault percents add up to more than 100");
  return spec;
}

struct OriginEmulator::Conn {
  // kGarble: the whole body, one byte of it wrong (at `cut`): what no relay can notice without a
  // digest, and every phone that checks its download must.
  enum class Fault { kNone, kReset, kShort, kStall, kGarble };

  enum class State { kHead, kBody, kChunkSize, kChunkData, kChunkCrlf, kTrailer, kAnswer };

  uv_tcp_t tcp{};
  uv_timer_t latency{};
  uv_write_t write{};
  int open_handles = 2;
  bool closing = false;
  OriginEmulator* origin = nullptr;
  std::string in;
  State state = State::kHead;
  bool first = true;  // no answer sent yet on this connection
  Head request;
  uint64_t body_left = 0;  // Content-Length bytes, or the current chunk's
  bool keep_alive = true;

  // The answer being sent.
  std::string head;
  size_t head_off = 0;
  const OriginFile* file = nullptr;    // pattern or small body of a tree file
  const std::string* text = nullptr;  // a body that is not a tree file (404)
  uint64_t body_off = 0, body_end = 0;
  OriginPathStats* stats = nullptr;
  bool in_flight = false;
  size_t pending_head = 0, pending_body = 0;
  // A fault that ends this answer once body_off reaches `cut` (< body_end).
  Fault fault = Fault::kNone;
  uint64_t cut = 0;
  std::string garbled;  // the chunk being sent with its wrong byte (kGarble)
  // Where sending stops: the cut of a fault, else the end of the body.
  uint64_t SendEnd() const {
    return fault == Fault::kNone || fault == Fault::kGarble ? body_end : cut;
  }
};

OriginEmulator::OriginEmulator(uv_loop_t* loop, std::vector<OriginFile> tree, Options options)
    : loop_(loop),
      tree_(std::move(tree)),
      options_(std::move(options)),
      // A burst of 20 ms of the link, at least one chunk: short enough that the rate holds over
      // any interval a test or a phone would notice.
      bucket_(options_.rate_bytes_per_s,
              std::max(static_cast<double>(kChunk), options_.rate_bytes_per_s * 0.02),
              uv_hrtime()) {
  for (const OriginFile& f : tree_) by_path_[f.path] = &f;
  rng_state_ = options_.fault_seed;
}

double OriginEmulator::Draw() {
  uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

OriginEmulator::~OriginEmulator() = default;

Status OriginEmulator::Start() {
  sockaddr_in addr{};
  int rc = uv_ip4_addr(options_.host.c_str(), options_.port, &addr);
  if (rc != 0) return UvError("origin address " + options_.host, rc);
  uv_tcp_init(loop_, &listener_);
  uv_timer_init(loop_, &pump_timer_);
  listener_.data = this;
  pump_timer_.data = this;
  started_ = true;
  rc = uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 1024, &OnConnection);
  if (rc != 0) {
    return UvError("origin listen on " + options_.host + ":" + std::to_string(options_.port), rc);
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return Status::Ok();
}

void OriginEmulator::Close() {
  if (!started_ || closed_) return;
  closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&pump_timer_), nullptr);
  while (!conns_.empty()) CloseConn(*conns_.begin());
}

void OriginEmulator::OnConnection(uv_stream_t* server, int status) noexcept {
  auto* self = static_cast<OriginEmulator*>(server->data);
  if (status < 0 || self->closed_) return;
  auto* c = new Conn;
  c->origin = self;
  c->tcp.data = c;
  c->latency.data = c;
  uv_tcp_init(self->loop_, &c->tcp);
  uv_timer_init(self->loop_, &c->latency);
  self->conns_.insert(c);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    self->CloseConn(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  ++self->totals_.connections;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&c->tcp),
      [](uv_handle_t*, size_t, uv_buf_t* buf) noexcept {
        // One buffer for every connection: a read's bytes are appended to the connection's
        // own string before the next read can happen.
        static thread_local std::array<char, 64 * 1024> storage;
        *buf = uv_buf_init(storage.data(), static_cast<unsigned>(storage.size()));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
        auto* conn = static_cast<Conn*>(s->data);
        OriginEmulator* o = conn->origin;
        if (n < 0) {
          o->CloseConn(conn);
          return;
        }
        conn->in.append(buf->base, static_cast<size_t>(n));
        // Upload bodies are consumed as they come; only heads, and what a client sends while
        // its answer is on the way, accumulate.
        if (conn->state == Conn::State::kAnswer && conn->in.size() > 2 * kMaxHead) {
          o->CloseConn(conn);
          return;
        }
        if (conn->state != Conn::State::kAnswer) o->Process(conn);
      });
}

void OriginEmulator::CloseConn(Conn* c, bool reset) {
  if (c->closing) return;
  c->closing = true;
  conns_.erase(c);
  ready_.erase(std::remove(ready_.begin(), ready_.end(), c), ready_.end());
  auto closed = [](uv_handle_t* h) noexcept {
    auto* conn = static_cast<Conn*>(h->data);
    if (--conn->open_handles == 0) delete conn;
  };
  uv_timer_stop(&c->latency);
  // SO_LINGER 0: the peer sees ECONNRESET rather than an end of file. uv_tcp_close_reset() fails
  // only for a handle being shut down, which this one never is; a plain close then still closes.
  if (!reset || uv_tcp_close_reset(&c->tcp, closed) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), closed);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&c->latency), closed);
}

void OriginEmulator::Process(Conn* c) {
  using State = Conn::State;
  while (!c->closing) {
    switch (c->state) {
      case State::kHead: {
        size_t end = c->in.find("\r\n\r\n");
        if (end == std::string::npos) {
          if (c->in.size() > kMaxHead) CloseConn(c);
          return;
        }
        if (end + 4 > kMaxHead) return CloseConn(c);
        std::optional<Head> h = ParseHead(std::string_view(c->in).substr(0, end + 2));
        c->in.erase(0, end + 4);
        if (!h) return CloseConn(c);
        c->request = std::move(*h);
        const std::string* te = c->request.Field("transfer-encoding");
        const std::string* cl = c->request.Field("content-length");
        c->body_left = 0;
        if (te != nullptr && LowerCopy(*te).find("chunked") != std::string::npos) {
          c->state = State::kChunkSize;
        } else if (cl != nullptr) {
          if (!ParseU64(*cl, &c->body_left)) return CloseConn(c);
          c->state = State::kBody;
        } else {
          c->state = State::kBody;
        }
        const std::string* expect = c->request.Field("expect");
        if (expect != nullptr && LowerCopy(*expect) == "100-continue" &&
            (c->state != State::kBody || c->body_left > 0)) {
          auto* req = new uv_write_t;
          uv_buf_t b = uv_buf_init(const_cast<char*>(kContinue.data()),
                                   static_cast<unsigned>(kContinue.size()));
          if (uv_write(req, reinterpret_cast<uv_stream_t*>(&c->tcp), &b, 1,
                       [](uv_write_t* r, int) noexcept { delete r; }) != 0) {
            delete req;
            return CloseConn(c);
          }
        }
        break;
      }
      case State::kBody: {
        uint64_t n = std::min<uint64_t>(c->body_left, c->in.size());
        c->in.erase(0, static_cast<size_t>(n));
        c->body_left -= n;
        totals_.uploaded += n;
        if (c->body_left > 0) return;
        return Respond(c);
      }
      case State::kChunkSize: {
        size_t eol = c->in.find("\r\n");
        if (eol == std::string::npos) {
          if (c->in.size() > 1024) CloseConn(c);
          return;
        }
        std::string_view line = std::string_view(c->in).substr(0, eol);
        line = Trim(line.substr(0, line.find(';')));
        uint64_t size = 0;
        if (line.size() > 15 || !ParseU64(line, &size, 16)) return CloseConn(c);
        c->in.erase(0, eol + 2);
        c->body_left = size;
        c->state = size == 0 ? State::kTrailer : State::kChunkData;
        break;
      }
      case State::kChunkData: {
        uint64_t n = std::min<uint64_t>(c->body_left, c->in.size());
        c->in.erase(0, static_cast<size_t>(n));
        c->body_left -= n;
        totals_.uploaded += n;
        if (c->body_left > 0) return;
        c->state = State::kChunkCrlf;
        break;
      }
      case State::kChunkCrlf:
        if (c->in.size() < 2) return;
        if (c->in.compare(0, 2, "\r\n") != 0) return CloseConn(c);
        c->in.erase(0, 2);
        c->state = State::kChunkSize;
        break;
      case State::kTrailer: {
        size_t eol = c->in.find("\r\n");
        if (eol == std::string::npos) {
          if (c->in.size() > kMaxHead) CloseConn(c);
          return;
        }
        c->in.erase(0, eol + 2);
        if (eol == 0) return Respond(c);
        break;
      }
      case State::kAnswer:
        return;
    }
  }
}

void OriginEmulator::Respond(Conn* c) {
  c->state = Conn::State::kAnswer;
  const Head& r = c->request;
  ++totals_.requests;
  std::string path = r.target.substr(1, r.target.find_first_of("?#") - 1);
  OriginPathStats& st = stats_[path];
  c->stats = &st;
  c->file = nullptr;
  c->text = nullptr;
  c->body_off = c->body_end = 0;
  c->head_off = 0;
  c->fault = Conn::Fault::kNone;
  c->cut = 0;
  const std::string* conn_field = r.Field("connection");
  std::string conn_value = conn_field != nullptr ? LowerCopy(*conn_field) : "";
  c->keep_alive = r.http10 ? conn_value.find("keep-alive") != std::string::npos
                           : conn_value.find("close") == std::string::npos;
  std::string status;
  std::string fields;
  bool head_only = r.method == "HEAD";
  if (r.method == "PUT" || r.method == "POST") {
    ++(r.method == "PUT" ? st.put : st.post);
    status = "204 No Content";
  } else if (r.method == "GET" || head_only) {
    ++(head_only ? st.head : st.get);
    auto it = by_path_.find(path);
    if (it == by_path_.end()) {
      ++st.not_found;
      status = "404 Not Found";
      fields = "Content-Type: text/plain\r\n";
      c->text = &kNotFoundBody;
      c->body_end = kNotFoundBody.size();
    } else {
      const OriginFile* f = it->second;
      uint64_t size = f->firmware ? f->pattern_size : f->small_body.size();
      std::string etag = "\"fleet-" + std::to_string(f->pattern_id) + "-" +
                         std::to_string(std::hash<std::string>{}(f->path) % 1000000007) + "-" +
                         std::to_string(size) + "\"";
      fields = "ETag: " + etag + "\r\nLast-Modified: " + std::string(kLastModified) +
               "\r\nAccept-Ranges: bytes\r\nContent-Type: " +
               (f->firmware ? "application/octet-stream" : "application/xml") + "\r\n";
      const std::string* inm = r.Field("if-none-match");
      const std::string* ims = r.Field("if-modified-since");
      bool not_modified = inm != nullptr ? (inm->find(etag) != std::string::npos || *inm == "*")
                                         : (ims != nullptr && *ims == kLastModified);
      if (not_modified) {
        ++st.not_modified;
        status = "304 Not Modified";
        head_only = true;
        c->body_end = 0;
      } else {
        c->file = f;
        c->body_off = 0;
        c->body_end = size;
        status = "200 OK";
        const std::string* range = r.Field("range");
        const std::string* if_range = r.Field("if-range");
        bool use_range = range != nullptr &&
                         (if_range == nullptr || *if_range == etag || *if_range == kLastModified);
        std::string_view spec = use_range ? std::string_view(*range) : std::string_view();
        if (use_range && spec.substr(0, 6) == "bytes=" && spec.find(',') == std::string::npos) {
          spec.remove_prefix(6);
          size_t dash = spec.find('-');
          uint64_t a = 0, b = size == 0 ? 0 : size - 1;
          bool ok = dash != std::string_view::npos;
          if (ok && dash == 0) {  // suffix: the last n bytes
            uint64_t n = 0;
            ok = ParseU64(spec.substr(1), &n) && n > 0;
            a = size - std::min(n, size);
          } else if (ok) {
            ok = ParseU64(spec.substr(0, dash), &a);
            if (ok && dash + 1 < spec.size()) {
              uint64_t last = 0;
              ok = ParseU64(spec.substr(dash + 1), &last) && last >= a;
              b = std::min(b, last);
            }
          }
          if (ok && (a >= size)) {
            status = "416 Range Not Satisfiable";
            fields += "Content-Range: bytes */" + std::to_string(size) + "\r\n";
            c->file = nullptr;
            c->body_end = 0;
          } else if (ok) {
            status = "206 Partial Content";
            fields += "Content-Range: bytes " + std::to_string(a) + "-" + std::to_string(b) +
                      "/" + std::to_string(size) + "\r\n";
            c->body_off = a;
            c->body_end = b + 1;
            ++st.partial;
          }
        }
        if (!head_only && c->file != nullptr && c->body_end > c->body_off &&
            options_.faults.any()) {
          // One draw picks the fault (the kinds' percents laid end to end on [0, 100)), a
          // second where in the body it strikes.
          const OriginFaultSpec& fs = options_.faults;
          double u = Draw() * 100;
          double cut = Draw();
          if (u < fs.error) {
            ++fault_counts_.error;
            if (status != "200 OK") --st.partial;
            // RFC 9110 15.6.4: 503 with Retry-After, as an overloaded provisioning server says.
            status = "503 Service Unavailable";
            fields = "Retry-After: 1\r\nContent-Type: text/plain\r\n";
            c->file = nullptr;
            c->text = &kUnavailableBody;
            c->body_off = 0;
            c->body_end = kUnavailableBody.size();
          } else {
            // The body faults' percents stacked after the errors', in this order.
            const struct {
              double percent;
              Conn::Fault fault;
              uint64_t* count;
            } kinds[] = {{fs.reset, Conn::Fault::kReset, &fault_counts_.reset},
                         {fs.short_body, Conn::Fault::kShort, &fault_counts_.short_body},
                         {fs.stall, Conn::Fault::kStall, &fault_counts_.stall},
                         {fs.garble, Conn::Fault::kGarble, &fault_counts_.garble}};
            u -= fs.error;
            for (const auto& k : kinds) {
              if (u < k.percent) {
                c->fault = k.fault;
                ++*k.count;
                break;
              }
              u -= k.percent;
            }
          }
          if (c->fault != Conn::Fault::kNone) {
            c->cut =
                c->body_off + std::min(c->body_end - c->body_off - 1,
                                       static_cast<uint64_t>(
                                           cut * static_cast<double>(c->body_end - c->body_off)));
          }
        }
        if (status == "200 OK" && !head_only) ++st.full;
      }
    }
  } else {
    ++st.other;
    status = "405 Method Not Allowed";
    fields = "Allow: GET, HEAD, PUT, POST\r\n";
    c->keep_alive = false;
  }
  c->head = "HTTP/1.1 " + status + "\r\nServer: phone-fleet-origin\r\n" + fields +
            "Content-Length: " + std::to_string(c->body_end - c->body_off) + "\r\n" +
            (c->keep_alive ? "" : "Connection: close\r\n") + "\r\n";
  if (head_only) {
    c->file = nullptr;
    c->text = nullptr;
    c->body_off = c->body_end = 0;
  }
  // The WAN's round trip before the first byte, and the handshake's on a new connection.
  uint64_t delay = options_.latency_ms * (c->first ? 2 : 1);
  c->first = false;
  if (delay == 0) return Begin(c);
  uv_timer_start(
      &c->latency,
      [](uv_timer_t* t) noexcept {
        auto* conn = static_cast<Conn*>(t->data);
        conn->origin->Begin(conn);
      },
      delay, 0);
}

void OriginEmulator::Begin(Conn* c) {
  if (c->closing) return;
  ready_.push_back(c);
  Pump();
}

void OriginEmulator::Pump() {
  if (closed_) return;
  const size_t chunk = std::clamp<size_t>(static_cast<size_t>(options_.rate_bytes_per_s / 100),
                                          16 * 1024, kChunk);
  while (!ready_.empty()) {
    Conn* c = ready_.front();
    std::array<uv_buf_t, 2> bufs{};
    unsigned nbufs = 0;
    size_t head_n = c->head.size() - c->head_off;
    if (head_n > 0) {
      bufs[nbufs++] = uv_buf_init(c->head.data() + c->head_off, static_cast<unsigned>(head_n));
    }
    size_t body_n = 0;
    uint64_t want =
        std::min<uint64_t>(c->SendEnd() - c->body_off, chunk > head_n ? chunk - head_n : 0);
    if (want > 0) {
      const uint8_t* p = nullptr;
      if (c->file != nullptr && c->file->firmware) {
        auto span = PatternSpan(c->file->pattern_id, c->body_off, want);
        p = span.first;
        body_n = span.second;
      } else {
        const std::string& s = c->file != nullptr ? c->file->small_body : *c->text;
        p = reinterpret_cast<const uint8_t*>(s.data()) + c->body_off;
        body_n = static_cast<size_t>(want);
      }
      if (c->fault == Conn::Fault::kGarble && c->cut >= c->body_off &&
          c->cut < c->body_off + body_n) {
        c->garbled.assign(reinterpret_cast<const char*>(p), body_n);
        c->garbled[static_cast<size_t>(c->cut - c->body_off)] ^= 0x5a;
        p = reinterpret_cast<const uint8_t*>(c->garbled.data());
      }
      bufs[nbufs++] = uv_buf_init(reinterpret_cast<char*>(const_cast<uint8_t*>(p)),
                                  static_cast<unsigned>(body_n));
    }
    uint64_t now = uv_hrtime();
    if (!bucket_.TryTake(now, head_n + body_n)) {
      uint64_t wait_ms = std::max<uint64_t>(1, (bucket_.WaitNs(now) + 999999) / 1000000);
      if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&pump_timer_))) {
        uv_timer_start(
            &pump_timer_,
            [](uv_timer_t* t) noexcept { static_cast<OriginEmulator*>(t->data)->Pump(); },
            wait_ms, 0);
      }
      return;
    }
    ready_.pop_front();
    c->pending_head = head_n;
    c->pending_body = body_n;
    c->in_flight = true;
    c->write.data = c;
    int rc = uv_write(&c->write, reinterpret_cast<uv_stream_t*>(&c->tcp), bufs.data(), nbufs,
                      [](uv_write_t* w, int status) noexcept {
                        auto* conn = static_cast<Conn*>(w->data);
                        conn->origin->OnWritten(conn, status);
                      });
    if (rc != 0) {
      c->in_flight = false;
      CloseConn(c);
    }
  }
}

void OriginEmulator::OnWritten(Conn* c, int status) {
  c->in_flight = false;
  if (status == 0) {
    // Counted even when the peer hung up meanwhile (a client that read its whole answer and
    // closed, its FIN seen before this callback): the bytes went out.
    c->head_off += c->pending_head;
    c->body_off += c->pending_body;
    totals_.bytes += c->pending_head + c->pending_body;
    if (c->file != nullptr) {
      c->stats->body_bytes += c->pending_body;
      totals_.body_bytes += c->pending_body;
    }
  }
  if (c->closing) return;
  if (status < 0) return CloseConn(c);
  if (c->head_off < c->head.size() || c->body_off < c->SendEnd()) {
    ready_.push_back(c);
    return Pump();
  }
  switch (c->fault) {
    case Conn::Fault::kNone:
    case Conn::Fault::kGarble:
      break;
    case Conn::Fault::kReset:
      return CloseConn(c, /*reset=*/true);
    case Conn::Fault::kShort:
      return CloseConn(c);
    case Conn::Fault::kStall:
      // Nothing more is sent; reading goes on, so a relay that gives up is seen to hang up.
      uv_timer_start(
          &c->latency,
          [](uv_timer_t* t) noexcept {
            auto* conn = static_cast<Conn*>(t->data);
            conn->origin->CloseConn(conn);
          },
          options_.stall_ms, 0);
      return;
  }
  // The answer is complete.
  if (!c->keep_alive) return CloseConn(c);
  c->state = Conn::State::kHead;
  Process(c);
}

}  // namespace siterelay::fleet
