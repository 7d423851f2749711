#include "relay/http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include "relay/base/http_date.h"
#include "relay/base/listen.h"
#include "relay/base/log.h"
#include "relay/http/chunked.h"
#include "relay/http/limits.h"
#include "relay/net/stream_socket.h"
#include "siterelay_version.h"

namespace siterelay::http {
namespace {

// A chunk of a growing body of unknown size: one turn of the socket's file sending.
constexpr size_t kChunkBytes = 1 << 20;

std::string_view Reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "Status";
  }
}

// For the access log's durations: the real time, not the loop's cached uv_now(), which stands
// still while one callback runs long.
int64_t NowMs() { return static_cast<int64_t>(uv_hrtime() / 1'000'000); }

}  // namespace

// ---- Connection ------------------------------------------------------------------------------

class Connection {
 public:
  Connection(HttpServer* server, int fd, files::Peer peer)
      : server_(server), sock_(fd), peer_(std::move(peer)) {
    poll_.data = this;
    timer_.data = this;
  }

  // HTTPS: begins the TLS handshake once the server has a slot for it (tls::HandshakeSlots);
  // until then it waits, unread and with no TLS state. Before Start().
  void EnableTls() {
    slot_.Request(&server_->handshakes_, peer_.ip, [this] { BeginHandshake(); });
  }

  void BeginHandshake() {
    // It holds a slot from here on: the handshake's end, or Close(), gives it back.
    std::shared_ptr<tls::TlsContext> ctx = server_->tls_;
    if (ctx == nullptr || !sock_.EnableTls(*ctx)) {  // HTTPS turned off meanwhile (SIGHUP)
      tls_failed_ = true;
      if (open_handles_ > 0) Close();  // else Start() fails
      return;
    }
    if (open_handles_ > 0) UpdatePoll();  // Start() polls once it runs
  }

  Status Start() {
    int rc = uv_poll_init(server_->loop_, &poll_, sock_.fd());
    if (rc != 0) return UvError("uv_poll_init", rc);
    ++open_handles_;
    rc = uv_timer_init(server_->loop_, &timer_);
    if (rc != 0) return UvError("uv_timer_init", rc);
    ++open_handles_;
    if (tls_failed_) return Status::Unavailable("TLS: " + sock_.error());
    // A TLS client sends its ClientHello as soon as it connects: the handshake gets the header
    // timeout, counted from the connection and not reset by each byte, so silent or half-sent
    // handshakes (which cost the attacker nothing) do not hold a connection for the idle time.
    ArmTimer(sock_.tls() || slot_.waiting() ? server_->limits_.header_timeout_ms
                                            : server_->limits_.idle_timeout_ms);
    UpdatePoll();
    return Status::Ok();
  }

  // Begins closing; the server frees the connection once both handles are closed.
  void Close() {
    if (closing_) return;
    slot_.Reset();
    closing_ = true;
    *alive_ = false;
    if (sink_) {
      sink_->Abort();
      sink_.reset();
    }
    if (open_handles_ == 0) {
      server_->Closed(this);
      return;
    }
    auto on_close = [](uv_handle_t* h) noexcept {
      auto* c = static_cast<Connection*>(h->data);
      if (--c->open_handles_ == 0) c->server_->Closed(c);
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
  }

  // Nothing in flight: safe to close when stopping.
  bool idle() const { return !sending_ && in_.empty() && !reading_body_ && !awaiting_; }
  const files::Peer& peer() const { return peer_; }

 private:
  void UpdatePoll() {
    if (closing_) return;
    int events = 0;
    bool want_read = !slot_.waiting() && !sending_ && !awaiting_ && !peer_closed_ &&
                     (!reading_body_ || sink_->WantsMore());
    if (want_read) events |= UV_READABLE;
    if ((sending_ && !waiting_body_) || !interim_.empty() || sock_.want_write()) {
      events |= UV_WRITABLE;
    }
    // Each change costs epoll_ctl calls; most requests end where they began (readable only).
    if (events == poll_events_) return;
    poll_events_ = events;
    if (events == 0) {
      uv_poll_stop(&poll_);
      return;
    }
    int rc = uv_poll_start(&poll_, events, [](uv_poll_t* p, int status, int ev) noexcept {
      auto* c = static_cast<Connection*>(p->data);
      if (status < 0) {
        c->Close();
        return;
      }
      if ((ev & UV_WRITABLE) != 0) c->OnWritable();
      if ((ev & UV_READABLE) != 0 && !c->closing_) c->OnReadable();
    });
    if (rc != 0) Close();
  }

  void ArmTimer(int64_t ms) {
    if (closing_) return;
    uv_timer_start(
        &timer_,
        [](uv_timer_t* t) noexcept {
          auto* c = static_cast<Connection*>(t->data);
          // A slow or silent client is cut off (STYLE.md): a half-sent head gets 408, the rest
          // just a close.
          if (c->slot_.waiting() || c->Handshaking()) {
            SR_LOG(kInfo) << "https: " << c->peer_.ip << ": TLS handshake not finished in time";
            c->Close();
          } else if (c->reading_body_ && !c->sink_->WantsMore()) {
            // The relay holds the body back (the uploads' memory budget, the disk), not the
            // client: it is not cut off for that. Its time starts again when the relay reads.
            c->ArmTimer(c->server_->limits_.body_timeout_ms);
          } else if (!c->sending_ && !c->in_.empty()) {
            SR_LOG(kInfo) << "http: " << c->peer_.ip << " sent no complete request in time";
            c->Respond(ErrorResponse(408), "-", "-", "", /*close=*/true);
          } else {
            c->Close();
          }
        },
        static_cast<uint64_t>(ms), 0);
  }

  void OnReadable() {
    // An upload the budget refused since this turn's events were gathered: its bytes wait in
    // the socket until the sink asks for them (files::Uploads::kMemoryBytes).
    if (reading_body_ && !sink_->WantsMore()) {
      UpdatePoll();
      return;
    }
    std::string plain;
    net::StreamSocket::Io io = sock_.Receive(&plain);
    if (io == net::StreamSocket::Io::kError) {
      if (sock_.tls()) SR_LOG(kInfo) << "https: " << peer_.ip << ": " << sock_.error();
      Close();
      return;
    }
    if (io == net::StreamSocket::Io::kClosed) {
      peer_closed_ = true;
      Close();  // nothing is being sent (we only read when idle)
      return;
    }
    if (sock_.want_write()) UpdatePoll();  // a TLS handshake answer the socket did not take
    if (slot_.holding() && !Handshaking()) {
      slot_.Reset();  // the handshake is over: its slot goes back
      // Done: from now on a keep-alive connection waiting for its first request.
      if (plain.empty() && in_.empty()) ArmTimer(server_->limits_.idle_timeout_ms);
    }
    if (!plain.empty()) OnPlaintext(plain);
  }

  bool Handshaking() const { return sock_.tls() && !sock_.tls_stream()->handshake_done(); }

  void OnPlaintext(std::string_view data) {
    if (reading_body_) {
      in_.append(data);
      ArmTimer(server_->limits_.body_timeout_ms);  // progress
      FeedBody();
      UpdatePoll();
      return;
    }
    if (in_.empty()) ArmTimer(server_->limits_.header_timeout_ms);  // slowloris: no reset per byte
    in_.append(data);
    ProcessRequests();
  }

  // ---- sending: straight to the socket, or through the TLS filter ----

  // Sends plaintext. Returns the bytes taken (0: the socket is full), or -1 after closing the
  // connection on a fatal error. `more`: a file body follows (StreamSocket::Send).
  ssize_t Transmit(const char* data, size_t n, bool more = false) {
    ssize_t r = sock_.Send(data, n, more);
    if (r < 0) SocketFailed();
    return r;
  }

  // Sends waiting ciphertext; false after closing the connection on a fatal error.
  bool FlushTlsOut() {
    if (sock_.Flush()) return true;
    SocketFailed();
    return false;
  }

  void SocketFailed() {
    if (sock_.tls()) SR_LOG(kInfo) << "https: " << peer_.ip << ": " << sock_.error();
    Close();
  }

  // File body bytes up to `limit` (counted from file_offset); false after closing the connection.
  bool SendFileBody(uint64_t limit, bool* progress, bool* yielded) {
    uint64_t pos = resp_.file_offset + file_sent_;
    bool ok = sock_.SendFile(resp_.file.get(), resp_.file_offset + limit, &pos, progress, yielded);
    file_sent_ = pos - resp_.file_offset;
    if (!ok) {
      SR_LOG(kError) << ProtocolName(peer_.protocol) << ": sending " << log_target_ << " to "
                     << peer_.ip << " failed: " << sock_.error() << "; closing";
      Close();
    }
    return ok;
  }

  // File bytes that may be sent now, counted from file_offset.
  uint64_t SendLimit() const {
    if (!resp_.growing) return resp_.file_length;
    // A failed transfer may already be rewriting the file (an origin that changed it): not one
    // more byte of it.
    if (resp_.growing->failed()) return file_sent_;
    uint64_t r = resp_.growing->readable();
    return chunked_out_ ? std::min(r, chunk_end_) : r;
  }

  // A growing body has sent all it may for now: frames the next chunk or the last one into out_
  // (true: send it), or waits for the transfer, or closes when it failed (false).
  bool NextBodyPart() {
    cache::GrowingFile& g = *resp_.growing;
    if (g.failed()) {
      // Never end the body as if it were whole (no last chunk, short of Content-Length).
      SR_LOG(kWarning) << "http: " << log_target_ << " to " << peer_.ip << " cut off after "
                       << file_sent_ << " bytes: " << g.error().message();
      Close();
      return false;
    }
    if (chunked_out_) {
      static constexpr char kHex[] = "0123456789abcdef";
      uint64_t avail = g.readable();
      if (avail > file_sent_) {
        uint64_t n = std::min<uint64_t>(avail - file_sent_, kChunkBytes);
        out_ = file_sent_ > 0 ? "\r\n" : "";
        std::string hex;
        for (uint64_t v = n; v != 0; v >>= 4) hex.insert(hex.begin(), kHex[v & 0xf]);
        out_ += hex + "\r\n";
        out_off_ = 0;
        chunk_end_ = file_sent_ + n;
        return true;
      }
      if (g.complete() && !last_chunk_) {
        out_ = file_sent_ > 0 ? "\r\n0\r\n\r\n" : "0\r\n\r\n";
        out_off_ = 0;
        last_chunk_ = true;
        return true;
      }
    }
    if (g.complete()) return false;
    // Wait for the origin; the transfer's own timeouts bound this, so no send timer runs.
    waiting_body_ = true;
    uv_timer_stop(&timer_);
    std::weak_ptr<bool> alive = alive_;
    g.Wait(file_sent_, [this, alive] {
      if (alive.expired() || !*alive.lock()) return;
      waiting_body_ = false;
      ArmTimer(server_->limits_.send_timeout_ms);
      OnWritable();
    });
    return false;
  }

  bool BodyDone() const {
    if (out_off_ != out_.size() || sock_.want_write()) return false;
    if (resp_.file.get() < 0) return true;
    if (!resp_.growing) return file_sent_ == resp_.file_length;
    const cache::GrowingFile& g = *resp_.growing;
    return g.complete() && file_sent_ == g.written() && (!chunked_out_ || last_chunk_);
  }

  // ---- request bodies (uploads) ----

  void StartBody(Response r, const Request& req) {
    sink_ = std::move(r.sink);
    const std::string* ua = req.Header("user-agent");
    body_req_ = {req.method_text, req.target, ua != nullptr ? *ua : "", r.mac, req.keep_alive,
                 req.minor_version};
    chunked_ = req.chunked;
    decoder_ = ChunkedDecoder();
    body_remaining_ = req.content_length.value_or(0);
    reading_body_ = true;
    if (req.expect_continue) {
      interim_ = "HTTP/1.1 100 Continue\r\n\r\n";  // RFC 9110 section 10.1.1
      FlushInterim();
    }
    std::weak_ptr<bool> alive = alive_;
    sink_->OnWantsMore([this, alive] {
      if (alive.expired() || !*alive.lock()) return;
      // The client's time, from when the relay reads (not once the body is in: it is filing).
      if (reading_body_) ArmTimer(server_->limits_.body_timeout_ms);
      FeedBody();
      UpdatePoll();
    });
    ArmTimer(server_->limits_.body_timeout_ms);
    FeedBody();
    UpdatePoll();
  }

  void FlushInterim() {
    while (!interim_.empty()) {
      ssize_t n = Transmit(interim_.data(), interim_.size());
      if (n <= 0) return;
      interim_.erase(0, static_cast<size_t>(n));
    }
  }

  void FeedBody() {
    while (reading_body_ && !closing_ && sink_->WantsMore()) {
      if (!chunked_) {
        if (body_remaining_ == 0) {
          BodyComplete();
          return;
        }
        if (in_.empty()) return;
        size_t n = static_cast<size_t>(std::min<uint64_t>(body_remaining_, in_.size()));
        Status s = sink_->Write(std::string_view(in_).substr(0, n));
        in_.erase(0, n);
        body_remaining_ -= n;
        if (!s.ok()) return BodyError(s);
        continue;
      }
      std::string_view rest = in_, data;
      ChunkedDecoder::Step step = decoder_.Next(&rest, &data);
      Status s;
      if (step == ChunkedDecoder::kData) s = sink_->Write(data);
      in_.erase(0, in_.size() - rest.size());
      if (!s.ok()) return BodyError(s);
      if (step == ChunkedDecoder::kDone) {
        BodyComplete();
        return;
      }
      if (step == ChunkedDecoder::kInvalid) {
        return BodyError(Status::InvalidArgument("malformed chunked body"));
      }
      if (step == ChunkedDecoder::kNeedMore) return;
    }
  }

  void BodyError(const Status& s) {
    reading_body_ = false;
    sink_->Abort();
    sink_.reset();
    int code = s.Is(StatusCode::kResourceExhausted) ? 413
               : s.Is(StatusCode::kInvalidArgument) ? 400
                                                      : 500;
    SR_LOG(kInfo) << "http: " << peer_.ip << " " << body_req_.target << ": " << s.message();
    Respond(ErrorResponse(code), body_req_.method, body_req_.target, body_req_.ua, true);
  }

  void BodyComplete() {
    reading_body_ = false;
    awaiting_ = true;
    uv_timer_stop(&timer_);  // the client is done: its answer comes once the upload is filed
    // The body is the sink's now; while it is made durable (behind a storm's other uploads on
    // the pool), the connection need not keep what the body grew its buffer to.
    if (in_.empty()) in_.shrink_to_fit();
    std::weak_ptr<bool> alive = alive_;
    sink_->Finish([this, alive](Response resp) {
      if (alive.expired() || !*alive.lock()) return;
      awaiting_ = false;
      sink_.reset();
      if (resp.mac.empty()) resp.mac = body_req_.mac;
      Respond(std::move(resp), body_req_.method, body_req_.target, body_req_.ua,
              !body_req_.keep_alive, body_req_.minor_version);
    });
    UpdatePoll();
  }

  void Await(std::function<void(std::function<void(Response)>)> later, const Request& req,
             bool has_body) {
    const std::string* ua = req.Header("user-agent");
    body_req_ = {req.method_text, req.target, ua != nullptr ? *ua : "", "",
                 req.keep_alive && !has_body, req.minor_version};
    awaiting_ = true;
    uv_timer_stop(&timer_);  // the fetcher's own timeouts bound the wait
    UpdatePoll();
    std::weak_ptr<bool> alive = alive_;
    later([this, alive](Response resp) {
      if (alive.expired() || !*alive.lock()) return;
      awaiting_ = false;
      Respond(std::move(resp), body_req_.method, body_req_.target, body_req_.ua,
              !body_req_.keep_alive || peer_closed_, body_req_.minor_version);
    });
  }

  void ProcessRequests() {
    while (!sending_ && !closing_ && !reading_body_ && !awaiting_ && !in_.empty()) {
      Request req;
      ParseResult p = ParseRequestHead(in_, &req);
      if (p.status == ParseStatus::kNeedMore) return;
      if (p.status == ParseStatus::kInvalid) {
        SR_LOG(kInfo) << "http: " << peer_.ip << ": " << p.reason;
        Respond(ErrorResponse(p.http_status), "-", "-", "", /*close=*/true);
        return;
      }
      in_.erase(0, p.consumed);
      request_start_ms_ = NowMs();
      bool has_body = req.chunked || (req.content_length && *req.content_length > 0);
      Response r = server_->handler_->Handle(req, peer_);
      if (r.sink) {
        StartBody(std::move(r), req);
        return;
      }
      if (r.later) {
        Await(std::move(r.later), req, has_body);
        continue;  // answered at once: carry on with pipelined requests
      }
      const std::string* ua = req.Header("user-agent");
      // A body this server did not read cannot be skipped safely: close after answering.
      bool close = r.close || !req.keep_alive || has_body || peer_closed_;
      Respond(std::move(r), req.method_text, req.target, ua != nullptr ? *ua : "", close,
              req.minor_version);
    }
    if (!sending_ && !closing_ && !reading_body_ && !awaiting_ && in_.empty()) {
      // Waiting for the next request: give back what an upload's body grew the buffer to, or a
      // keep-alive connection holds it for as long as it stays (32 KiB each, a storm's 1,000
      // phones 32 MiB).
      in_.shrink_to_fit();
      ArmTimer(server_->limits_.idle_timeout_ms);
    }
  }

  void Respond(Response r, std::string_view method, std::string_view target, std::string_view ua,
               bool close, int minor_version = 1) {
    resp_ = std::move(r);
    close_after_ = close || resp_.close || !server_->accepting_;
    bool bodyless = resp_.status == 304 || resp_.status == 204 || resp_.status < 200;
    bool file_body = resp_.file.get() >= 0 || resp_.file_bytes;
    uint64_t length = file_body ? resp_.file_length : resp_.body.size();
    // A growing body of unknown size (a compressed transfer from the origin) goes chunked; an
    // HTTP/1.0 client gets it delimited by the close.
    chunked_out_ = false;
    if (resp_.growing && !resp_.growing->size() && !bodyless && !resp_.head_only) {
      if (minor_version >= 1) {
        chunked_out_ = true;
      } else {
        close_after_ = true;
      }
    }
    bool delimit_by_close = resp_.growing && !resp_.growing->size() && !chunked_out_;

    out_.clear();
    out_off_ = 0;
    out_ += "HTTP/1.1 ";
    out_ += std::to_string(resp_.status);
    out_ += ' ';
    out_ += Reason(resp_.status);
    out_ += "\r\nServer: siterelay/" SITERELAY_VERSION "\r\nDate: ";
    out_ += FormatHttpDate(static_cast<int64_t>(std::time(nullptr)));
    out_ += "\r\n";
    for (const auto& [name, value] : resp_.headers) {
      out_ += name;
      out_ += ": ";
      out_ += value;
      out_ += "\r\n";
    }
    if (chunked_out_) {
      out_ += "Transfer-Encoding: chunked\r\n";
    } else if (!bodyless && !delimit_by_close) {
      out_ += "Content-Length: ";
      out_ += std::to_string(length);
      out_ += "\r\n";
    }
    if (close_after_) {
      out_ += "Connection: close\r\n";
    } else if (minor_version == 0) {
      out_ += "Connection: keep-alive\r\n";
    }
    out_ += "\r\n";
    bool send_body = !bodyless && !resp_.head_only;
    if (send_body && resp_.file_bytes) {
      out_.append(*resp_.file_bytes, resp_.file_offset, resp_.file_length);  // one send(2)
    } else if (send_body && !file_body) {
      out_ += resp_.body;
    }
    resp_.file_bytes.reset();
    if (!send_body) {
      resp_.file.Reset();
      resp_.growing.reset();
    }
    file_sent_ = 0;
    chunk_end_ = 0;
    last_chunk_ = false;
    waiting_body_ = false;
    sock_.StartFile();
    body_bytes_ = send_body ? length : 0;

    log_method_ = std::string(method);
    log_target_ = std::string(target);
    log_ua_ = std::string(ua);
    sending_ = true;
    ArmTimer(server_->limits_.send_timeout_ms);
    OnWritable();  // try at once: most responses fit the socket buffer
    if (!closing_) UpdatePoll();
  }

  void OnWritable() {
    if (sock_.want_write() && !FlushTlsOut()) return;
    if (!interim_.empty()) FlushInterim();
    if (!sending_ || closing_ || !interim_.empty() || waiting_body_) {
      if (!closing_) UpdatePoll();
      return;
    }
    bool progress = false;
    bool has_file = resp_.file.get() >= 0;
    for (;;) {
      bool body_now = has_file && file_sent_ < SendLimit();
      while (out_off_ < out_.size()) {
        ssize_t n = Transmit(out_.data() + out_off_, out_.size() - out_off_, body_now);
        if (n < 0) return;
        if (n == 0) break;
        out_off_ += static_cast<size_t>(n);
        progress = true;
      }
      if (out_off_ < out_.size() || !has_file) break;
      uint64_t limit = SendLimit();
      if (file_sent_ < limit) {
        bool yielded = false;
        if (!SendFileBody(limit, &progress, &yielded)) return;
        if (file_sent_ < limit || yielded) break;  // the socket is full, or others' turn
      }
      if (!resp_.growing || !NextBodyPart()) break;
    }
    if (closing_) return;
    if (progress && !waiting_body_) ArmTimer(server_->limits_.send_timeout_ms);
    if (BodyDone()) {
      Finish();
    } else {
      UpdatePoll();
    }
  }

  void Finish() {
    if (resp_.growing) body_bytes_ = file_sent_;
    ++server_->responses_[resp_.status];
    int64_t ms = NowMs() - request_start_ms_;
    SR_ACCESS_LOG(kInfo) << ProtocolName(peer_.protocol) << " " << log_method_ << " " << log_target_
                  << " " << resp_.status << " " << body_bytes_ << " " << ms << "ms " << peer_.ip
                  << (resp_.mac.empty() ? "" : " mac=" + resp_.mac) << " ua=\"" << log_ua_
                  << "\"";
    sending_ = false;
    resp_ = Response();
    out_.clear();
    out_off_ = 0;
    if (close_after_) {
      sock_.ShutdownWrite();
      Close();
      return;
    }
    ProcessRequests();  // pipelined requests already received
    UpdatePoll();
  }

  HttpServer* server_;
  net::StreamSocket sock_;
  files::Peer peer_;
  uv_poll_t poll_{};
  int poll_events_ = -1;  // what poll_ watches now; -1: not started
  uv_timer_t timer_{};
  int open_handles_ = 0;
  bool closing_ = false;
  bool peer_closed_ = false;
  tls::HandshakeSlot slot_;  // TLS: a handshake slot, waited for or held (max_handshakes)
  bool tls_failed_ = false;
  std::string in_;
  std::string out_;
  size_t out_off_ = 0;
  Response resp_;
  bool sending_ = false;
  bool close_after_ = false;
  uint64_t file_sent_ = 0;
  // Growing bodies (cache/growing_file.h):
  bool chunked_out_ = false;   // framed with Transfer-Encoding: chunked
  uint64_t chunk_end_ = 0;     // file_sent_ at the end of the chunk being sent
  bool last_chunk_ = false;    // the terminating chunk is queued
  bool waiting_body_ = false;  // everything readable is sent; waiting for the origin
  uint64_t body_bytes_ = 0;
  int64_t request_start_ms_ = 0;
  std::string log_method_, log_target_, log_ua_;
  // Uploads:
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for callbacks that outlive us
  std::shared_ptr<BodySink> sink_;
  bool reading_body_ = false;
  bool awaiting_ = false;  // body read, the sink has not answered yet
  bool chunked_ = false;
  ChunkedDecoder decoder_;
  uint64_t body_remaining_ = 0;
  std::string interim_;  // "100 Continue", sent ahead of everything else
  struct {
    std::string method, target, ua, mac;
    bool keep_alive = true;
    int minor_version = 1;
  } body_req_;
};

Response ErrorResponse(int status) {
  Response r;
  r.status = status;
  r.body = std::to_string(status) + " " + std::string(Reason(status)) + "\n";
  r.headers.emplace_back("Content-Type", "text/plain");
  return r;
}

// ---- Listener and server ---------------------------------------------------------------------

HttpServer::HttpServer(uv_loop_t* loop, files::Protocol protocol, Handler* handler,
                       ServerLimits limits, const files::FileService* access)
    : loop_(loop),
      protocol_(protocol),
      handler_(handler),
      limits_(limits),
      access_(access),
      handshakes_(limits.max_handshakes, limits.max_handshakes_per_peer) {}

HttpServer::~HttpServer() = default;  // the owner stopped accepting and ran the loop first

Status HttpServer::Listen(const std::vector<ListenAddress>& addresses) {
  // Listeners no longer configured stop; connections they accepted carry on.
  return ReconcileListeners<net::TcpListener>(
      &listeners_, addresses,
      [this](const ListenAddress& a) {
        return net::OpenTcpListener(loop_, a, [this](net::TcpListener* l) { Accept(l); });
      },
      [](std::unique_ptr<net::TcpListener> l) { net::CloseTcpListener(std::move(l)); }, &bound_);
}

void HttpServer::Accept(net::TcpListener* l) {
  net::AcceptConnections(l, "http", [this] { return accepting_; },
                         [this](int fd, const sockaddr_storage& ss) {
    files::Peer peer = files::Peer::FromSockaddr(protocol_, reinterpret_cast<const sockaddr*>(&ss));
    if (access_ != nullptr && !access_->Allowed(peer)) {
      SR_LOG(kInfo) << "http: " << peer.ip << " refused by allow_from";
      ::close(fd);
      return;
    }
    if (connections_.size() >= limits_.max_connections ||
        per_peer_[peer.ip] >= limits_.max_connections_per_peer) {
      SR_LOG(kWarning) << "http: " << peer.ip << " refused: connection limit reached";
      ::close(fd);
      return;
    }
    ++per_peer_[peer.ip];
    auto c = std::make_unique<Connection>(this, fd, std::move(peer));
    Connection* raw = c.get();
    if (tls_) raw->EnableTls();
    connections_.emplace(raw, std::move(c));
    Status s = raw->Start();
    if (!s.ok()) {
      SR_LOG(kWarning) << "http: " << s.ToString();
      raw->Close();
    }
  });
}

void HttpServer::Closed(Connection* c) {
  auto it = per_peer_.find(c->peer().ip);
  if (it != per_peer_.end() && --it->second == 0) per_peer_.erase(it);
  connections_.erase(c);
  if (!accepting_ && connections_.empty() && on_drained_) {
    auto cb = std::move(on_drained_);
    on_drained_ = nullptr;
    cb();
  }
}

void HttpServer::StopAccepting() {
  if (!accepting_) return;
  accepting_ = false;
  for (auto& l : listeners_) net::CloseTcpListener(std::move(l));
  listeners_.clear();
  // Idle keep-alive connections go now.
  std::vector<Connection*> idle;
  for (auto& [raw, c] : connections_) {
    if (raw->idle()) idle.push_back(raw);
  }
  for (Connection* c : idle) c->Close();
  if (connections_.empty() && on_drained_) {
    auto cb = std::move(on_drained_);
    on_drained_ = nullptr;
    cb();
  }
}

void HttpServer::CloseAll() {
  std::vector<Connection*> all;
  for (auto& [raw, c] : connections_) all.push_back(raw);
  for (Connection* c : all) c->Close();
}

}  // namespace siterelay::http
