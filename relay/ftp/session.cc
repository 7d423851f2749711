#include "relay/ftp/session.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "relay/base/log.h"
#include "relay/base/strings.h"
#include "relay/files/path.h"
#include "relay/files/phone.h"
#include "relay/ftp/command.h"
#include "relay/ftp/limits.h"
#include "relay/ftp/listing.h"

namespace siterelay::ftp {
namespace {

// After the last byte of a download the data socket is half-closed and kept this long to read
// what the client still sends (its close_notify), so closing it never resets the connection
// before the client has read everything.
constexpr uint64_t kLingerMs = 2000;
// Control input read ahead while a command runs (pipelined commands wait in it).
constexpr size_t kMaxWaitingInput = 16 * 1024;
// The data timeout's reason once the transfer runs (DataChannel::ArmStallTimer).
constexpr const char* kStalled = "the data connection stalled";

int64_t NowMs() { return static_cast<int64_t>(uv_hrtime() / 1'000'000); }

bool SameAddress(const sockaddr_storage& a, const sockaddr_storage& b) {
  auto v4 = [](const sockaddr_storage& s, uint8_t out[16]) {
    std::memset(out, 0, 16);
    if (s.ss_family == AF_INET) {  // as ::ffff:a.b.c.d
      out[10] = out[11] = 0xff;
      std::memcpy(out + 12, &reinterpret_cast<const sockaddr_in*>(&s)->sin_addr, 4);
    } else {
      std::memcpy(out, &reinterpret_cast<const sockaddr_in6*>(&s)->sin6_addr, 16);
    }
  };
  uint8_t x[16], y[16];
  v4(a, x);
  v4(b, y);
  return std::memcmp(x, y, 16) == 0;
}

// "-la", "-l /dir": the options clients put before LIST's path are not ours to honour.
std::string StripListOptions(std::string_view arg) {
  while (!arg.empty() && arg[0] == '-') {
    size_t sp = arg.find(' ');
    arg = sp == std::string_view::npos ? std::string_view() : arg.substr(sp + 1);
  }
  return std::string(arg);
}

std::string Quote(std::string_view path) {  // RFC 959 257: '"' inside is doubled
  std::string out = "\"";
  for (char c : path) {
    out += c;
    if (c == '"') out += '"';
  }
  return out + "\"";
}

}  // namespace

// ---- DataChannel ------------------------------------------------------------------------------

class DataChannel {
 public:
  // `opened`: the data connection was there (else the answer is 425, not 426).
  using Done = std::function<void(Status status, uint64_t bytes, bool opened)>;

  DataChannel(Session* owner, uv_loop_t* loop, const FtpLimits& limits)
      : owner_(owner), loop_(loop), limits_(limits) {
    listen_poll_.data = this;
    poll_.data = this;
    timer_.data = this;
  }

  // Passive: waits on `listener` for the control peer's connection.
  Status Listen(ScopedFd listener) {
    listen_fd_ = std::move(listener);
    int rc = uv_poll_init(loop_, &listen_poll_, listen_fd_.get());
    if (rc != 0) return UvError("uv_poll_init", rc);
    ++handles_;
    listening_ = true;
    rc = uv_poll_start(&listen_poll_, UV_READABLE, [](uv_poll_t* p, int status, int) noexcept {
      if (status == 0) static_cast<DataChannel*>(p->data)->OnAcceptable();
    });
    if (rc != 0) return UvError("uv_poll_start", rc);
    return InitTimer();
  }

  // Active: connects to `to` when a transfer starts.
  Status Target(const sockaddr_storage& to) {
    target_ = to;
    active_ = true;
    return InitTimer();
  }

  // The transfers. `tls`: protect the data connection (the client is the TLS client).
  void SendFile(files::OpenFile file, uint64_t offset, const tls::TlsContext* tls, Done done) {
    file_ = std::move(file);
    pos_ = offset;
    Begin(Job::kFile, tls, std::move(done));
  }
  void SendText(std::string text, const tls::TlsContext* tls, Done done) {
    text_ = std::move(text);
    Begin(Job::kText, tls, std::move(done));
  }
  void Receive(std::shared_ptr<files::UploadSink> sink, const tls::TlsContext* tls, Done done) {
    sink_ = std::move(sink);
    // Woken when the sink wants bytes again: its own pieces written, or the uploads' memory
    // budget freed (an upload refused before its first byte is woken that way too).
    std::weak_ptr<bool> alive = alive_;
    sink_->OnWantsMore([this, alive] {
      if (alive.expired() || !*alive.lock()) return;
      if (Receiving()) ArmStallTimer();  // the client's time, from when the relay reads
      UpdatePoll();
    });
    Begin(Job::kReceive, tls, std::move(done));
  }

  // A passive listener no transfer uses yet: the port it holds may go to another session.
  bool IdlePassive() const { return listening_ && job_ == Job::kNone && !closing_; }

  // Ends everything now; no callback runs after this. The channel frees itself.
  void Close() {
    if (closing_) return;
    closing_ = true;
    done_ = nullptr;
    *alive_ = false;
    if (sink_) {
      sink_->Abort();
      sink_.reset();
    }
    if (handles_ == 0) {
      delete this;
      return;
    }
    auto on_close = [](uv_handle_t* h) noexcept {
      auto* d = static_cast<DataChannel*>(h->data);
      if (--d->handles_ == 0) delete d;
    };
    if (listening_) {
      uv_close(reinterpret_cast<uv_handle_t*>(&listen_poll_), on_close);
      // The passive port is free at once for the next PASV (FtpServer::OpenPassive may be waiting
      // for exactly this one). Safe: closing a poll handle takes its fd out of epoll right away
      // (libuv's uv__poll_close), so the fd is not touched again.
      listen_fd_.Reset();
    }
    if (polling_) uv_close(reinterpret_cast<uv_handle_t*>(&poll_), on_close);
    if (timer_init_) uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
  }

 private:
  enum class Job { kNone, kFile, kText, kReceive };

  Status InitTimer() {
    int rc = uv_timer_init(loop_, &timer_);
    if (rc != 0) return UvError("uv_timer_init", rc);
    ++handles_;
    timer_init_ = true;
    return Status::Ok();
  }

  void ArmTimer(int64_t ms, const char* why) {
    timeout_why_ = why;
    uv_timer_start(
        &timer_,
        [](uv_timer_t* t) noexcept {
          auto* d = static_cast<DataChannel*>(t->data);
          if (d->lingering_) {
            d->Close();
            return;
          }
          if (d->Receiving() && !d->sink_->WantsMore()) {
            // The relay holds the upload back (the uploads' memory budget, the disk), not the
            // client: it is not cut off for that. Its time starts again when the relay reads.
            d->ArmStallTimer();
            return;
          }
          d->Finish(Status::Unavailable(d->timeout_why_));
        },
        static_cast<uint64_t>(ms), 0);
  }

  // The data timeout while the transfer runs: no progress for data_timeout_ms ends it.
  void ArmStallTimer() { ArmTimer(limits_.data_timeout_ms, kStalled); }
  // An upload's bytes are being read: connected, past the TLS handshake, not yet all in.
  bool Receiving() const {
    return job_ == Job::kReceive && timeout_why_ == kStalled && sock_ != nullptr &&
           !Handshaking() && sink_ != nullptr;
  }

  void Begin(Job job, const tls::TlsContext* tls, Done done) {
    job_ = job;
    tls_ctx_ = tls;
    done_ = std::move(done);
    if (sock_) {
      Connected();
      return;
    }
    if (active_) {
      Connect();
      return;
    }
    ArmTimer(limits_.accept_timeout_ms, "the client did not open the data connection in time");
  }

  void OnAcceptable() {
    for (;;) {
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      int fd = ::accept4(listen_fd_.get(), reinterpret_cast<sockaddr*>(&from), &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // EAGAIN, or EMFILE: the accept timeout covers it
      }
      // Only the control connection's peer may connect (RFC 2577: no data theft by a third
      // party racing to the passive port).
      if (!FromControlPeer(from)) {
        SR_LOG(kWarning) << "ftp: " << owner_->peer_.ip
                         << ": refused a data connection from another address";
        ::close(fd);
        continue;
      }
      StopListening();
      Adopt(fd);
      if (job_ != Job::kNone) {
        Connected();
      } else if (owner_->DataTls() != nullptr) {
        // The client starts TLS as soon as it is connected (curl does, before it even sends
        // RETR): answer the handshake now rather than when the command comes.
        if (!StartTls(owner_->DataTls())) return;
        StartPoll();
      }
      return;
    }
  }

  bool FromControlPeer(const sockaddr_storage& from) const {
    return SameAddress(from, owner_->remote_);
  }

  void StopListening() {
    if (!listening_) return;
    listening_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&listen_poll_), [](uv_handle_t* h) noexcept {
      auto* d = static_cast<DataChannel*>(h->data);
      d->listen_fd_.Reset();
      if (--d->handles_ == 0) delete d;
    });
  }

  void Adopt(int fd) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sock_ = std::make_unique<net::StreamSocket>(fd);
  }

  void Connect() {
    int fd = ::socket(target_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      Finish(PosixError("socket", errno));
      return;
    }
    socklen_t len = target_.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&target_), len) != 0 &&
        errno != EINPROGRESS) {
      Status s = PosixError("connect", errno);
      ::close(fd);
      Finish(s);
      return;
    }
    Adopt(fd);
    connecting_ = true;
    ArmTimer(limits_.accept_timeout_ms, "could not connect to the client's data port in time");
    StartPoll();
  }

  // TLS on the data connection, the client being the TLS client (RFC 4217 section 7). False
  // when it could not start (the channel is dead).
  bool StartTls(const tls::TlsContext* ctx) {
    if (ctx == nullptr || sock_->tls()) return true;
    if (!sock_->EnableTls(*ctx)) {
      Broken("TLS: " + sock_->error());
      return false;
    }
    sock_->tls_stream()->DisableTickets();
    return true;
  }

  // Something failed: report it to the job, or to the job that comes (none is running yet).
  void Broken(std::string why) {
    if (job_ == Job::kNone && !finished_) {
      broken_ = why;
      if (polling_) uv_poll_stop(&poll_);
      poll_events_ = 0;
      return;
    }
    Finish(Status::Unavailable(std::move(why)));
  }

  // The data connection is there and a job waits: TLS, then the bytes.
  void Connected() {
    if (!broken_.empty()) {
      Finish(Status::Unavailable(broken_));
      return;
    }
    if (!StartTls(tls_ctx_)) return;
    sock_->StartFile();
    ArmStallTimer();
    StartPoll();
    if (job_ != Job::kReceive) OnWritable();
  }

  void StartPoll() {
    if (!polling_) {
      int rc = uv_poll_init(loop_, &poll_, sock_->fd());
      if (rc != 0) {
        Finish(UvError("uv_poll_init", rc));
        return;
      }
      ++handles_;
      polling_ = true;
    }
    UpdatePoll();
  }

  bool Handshaking() const {
    return sock_->tls() && !sock_->tls_stream()->handshake_done();
  }

  void UpdatePoll() {
    if (closing_ || !polling_) return;
    int events = 0;
    if (connecting_) {
      events = UV_WRITABLE;
    } else if (!broken_.empty()) {
      events = 0;  // dead: the job that comes hears why
    } else {
      bool sending = (job_ == Job::kFile || job_ == Job::kText) && !waiting_file_ && !sent_all_;
      if (job_ == Job::kReceive && (sink_ == nullptr || sink_->WantsMore())) events |= UV_READABLE;
      if (Handshaking() || lingering_ || job_ == Job::kFile || job_ == Job::kText) {
        events |= UV_READABLE;  // the handshake, the client's close_notify, or its close
      }
      if (sending || sock_->want_write()) events |= UV_WRITABLE;
    }
    if (events == poll_events_) return;
    poll_events_ = events;
    if (events == 0) {
      uv_poll_stop(&poll_);
      return;
    }
    uv_poll_start(&poll_, events, [](uv_poll_t* p, int status, int ev) noexcept {
      auto* d = static_cast<DataChannel*>(p->data);
      if (status < 0) {
        // A reset (libuv reports POLLERR as EBADF) can come right behind the last bytes of an
        // upload and its close_notify: take what the kernel still holds before giving up.
        if (d->job_ == Job::kReceive) d->DrainAfterError();
        d->Broken("data connection: " + std::string(uv_strerror(status)));
        return;
      }
      if ((ev & UV_WRITABLE) != 0) d->OnWritable();
      if ((ev & UV_READABLE) != 0 && !d->closing_) d->OnReadable();
    });
  }

  void OnWritable() {
    if (closing_) return;
    if (connecting_) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(sock_->fd(), SOL_SOCKET, SO_ERROR, &err, &len);
      connecting_ = false;
      if (err != 0) {
        Finish(PosixError("connect to the client's data port", err));
        return;
      }
      Connected();
      return;
    }
    if (sock_->want_write() && !sock_->Flush()) return Failed();
    if (sent_all_) {
      if (!sock_->want_write()) Ended();
      else UpdatePoll();
      return;
    }
    if (Handshaking() || job_ == Job::kReceive || job_ == Job::kNone) {
      UpdatePoll();
      return;
    }
    bool progress = false;
    if (job_ == Job::kText) {
      while (text_off_ < text_.size()) {
        ssize_t n = sock_->Send(text_.data() + text_off_, text_.size() - text_off_);
        if (n < 0) return Failed();
        if (n == 0) break;
        text_off_ += static_cast<size_t>(n);
        progress = true;
      }
      bytes_ = text_off_;
      if (text_off_ == text_.size()) return AllSent();
    } else if (!SendFileNow(&progress)) {
      return;
    }
    if (progress) ArmStallTimer();
    UpdatePoll();
  }

  // Sends what the file has now; false when the channel finished or failed meanwhile.
  bool SendFileNow(bool* progress) {
    cache::GrowingFile* g = file_.growing.get();
    for (;;) {
      if (g != nullptr && g->failed()) {
        Finish(Status::Unavailable("origin transfer failed: " + g->error().message()));
        return false;
      }
      uint64_t limit = g != nullptr ? g->readable() : file_.size;
      bool yielded = false;
      if (pos_ < limit) {
        uint64_t before = pos_;
        if (!sock_->SendFile(file_.fd.get(), limit, &pos_, progress, &yielded)) {
          Failed();
          return false;
        }
        bytes_ += pos_ - before;
      }
      if (pos_ < limit || yielded) return true;  // the socket is full, or others' turn
      if (g == nullptr || g->complete()) {
        AllSent();
        return false;
      }
      // Wait for the origin; its transfer's own timeouts bound this.
      waiting_file_ = true;
      uv_timer_stop(&timer_);
      std::weak_ptr<bool> alive = alive_;
      g->Wait(pos_, [this, alive] {
        if (alive.expired() || !*alive.lock()) return;
        waiting_file_ = false;
        ArmStallTimer();
        OnWritable();
      });
      UpdatePoll();
      return true;
    }
  }

  // Every byte is handed to the socket: close_notify under TLS, then the FIN.
  void AllSent() {
    sent_all_ = true;
    if (!sock_->ShutdownTls()) return Failed();
    if (!sock_->want_write()) {
      Ended();
      return;
    }
    UpdatePoll();
  }

  void Ended() {
    sock_->ShutdownWrite();
    Finish(Status::Ok());
  }

  void OnReadable() {
    if (closing_) return;
    std::string plain;
    net::StreamSocket::Io io = sock_->Receive(&plain);
    if (io == net::StreamSocket::Io::kError) return Failed();
    if (job_ == Job::kNone && !lingering_) {  // the handshake, ahead of the command
      if (io == net::StreamSocket::Io::kClosed) Broken("the client closed the data connection");
      UpdatePoll();
      return;
    }
    if (lingering_) {
      if (io == net::StreamSocket::Io::kClosed) Close();
      return;
    }
    if (job_ != Job::kReceive) {
      // During a download the client sends nothing but the handshake and its close; a close
      // before the end is an abort.
      if (io == net::StreamSocket::Io::kClosed && !sent_all_) {
        Finish(Status::Unavailable("the client closed the data connection"));
        return;
      }
      if (!Handshaking() && !sent_all_) OnWritable();
      UpdatePoll();
      return;
    }
    if (!plain.empty()) {
      bytes_ += plain.size();  // received: past the cap, this tells the session it was the cap
      Status s = sink_->Write(plain);
      if (!s.ok()) {
        Finish(s);
        return;
      }
      ArmStallTimer();
    }
    if (io == net::StreamSocket::Io::kClosed) {
      if (sock_->tls() && !sock_->close_notify_received()) {
        Finish(Status::Unavailable(
            "the data connection closed without TLS close_notify: the upload may be cut short"));
        return;
      }
      FileUpload();
      return;
    }
    UpdatePoll();
  }

  void DrainAfterError() {
    for (int i = 0; i < 1024 && !closing_ && !finished_ && job_ == Job::kReceive; ++i) {
      std::string plain;
      net::StreamSocket::Io io = sock_->Receive(&plain);
      if (io == net::StreamSocket::Io::kAgain || io == net::StreamSocket::Io::kError) return;
      if (!plain.empty() && !sink_->Write(plain).ok()) return;
      bytes_ += plain.size();
      if (io == net::StreamSocket::Io::kClosed) {
        if (!sock_->tls() || sock_->close_notify_received()) FileUpload();
        return;
      }
    }
  }

  void FileUpload() {
    job_ = Job::kNone;
    uv_timer_stop(&timer_);
    UpdatePoll();
    std::weak_ptr<bool> alive = alive_;
    sink_->Finish([this, alive](Result<files::UploadResult> r) {
      if (alive.expired() || !*alive.lock()) return;
      sink_.reset();
      Finish(r.ok() ? Status::Ok() : r.status());
    });
  }

  void Failed() { Broken("data connection: " + sock_->error()); }

  // Reports once; then the channel lingers (a finished download) or closes.
  void Finish(Status s) {
    if (closing_ || finished_) return;
    finished_ = true;
    Done done = std::move(done_);
    done_ = nullptr;
    bool linger = s.ok() && sent_all_ && sock_ != nullptr;
    if (linger) {
      lingering_ = true;
      job_ = Job::kNone;
      poll_events_ = -1;
      ArmTimer(static_cast<int64_t>(kLingerMs), "linger");
      UpdatePoll();
    }
    bool opened = sock_ != nullptr && !connecting_;
    if (done) done(s, bytes_, opened);  // never deletes this channel
    if (!linger) Close();
  }

  Session* owner_;
  uv_loop_t* loop_;
  FtpLimits limits_;
  ScopedFd listen_fd_;
  uv_poll_t listen_poll_{};
  uv_poll_t poll_{};
  uv_timer_t timer_{};
  int handles_ = 0;
  bool listening_ = false;
  bool polling_ = false;
  bool timer_init_ = false;
  int poll_events_ = -1;
  bool active_ = false;
  bool connecting_ = false;
  sockaddr_storage target_{};
  std::unique_ptr<net::StreamSocket> sock_;
  const tls::TlsContext* tls_ctx_ = nullptr;
  Job job_ = Job::kNone;
  Done done_;
  files::OpenFile file_;
  uint64_t pos_ = 0;
  bool waiting_file_ = false;
  std::string text_;
  size_t text_off_ = 0;
  std::shared_ptr<files::UploadSink> sink_;
  uint64_t bytes_ = 0;
  bool sent_all_ = false;
  bool finished_ = false;
  bool lingering_ = false;
  bool closing_ = false;
  std::string broken_;  // why the connection failed before a job came
  const char* timeout_why_ = "";
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// ---- Session: the control connection ---------------------------------------------------------

Session::Session(FtpServer* server, int fd, files::Peer peer, bool implicit_tls,
                 const sockaddr_storage& remote, const sockaddr_storage& local)
    : server_(server), sock_(fd), peer_(std::move(peer)), implicit_tls_(implicit_tls),
      remote_(remote), local_(local) {
  poll_.data = this;
  timer_.data = this;
}

Session::~Session() = default;

Status Session::Start() {
  int rc = uv_poll_init(server_->loop_, &poll_, sock_.fd());
  if (rc != 0) return UvError("uv_poll_init", rc);
  ++open_handles_;
  rc = uv_timer_init(server_->loop_, &timer_);
  if (rc != 0) return UvError("uv_timer_init", rc);
  ++open_handles_;
  login_deadline_ms_ = NowMs() + server_->limits_.login_timeout_ms;
  ArmTimer();
  if (implicit_tls_) {
    WithHandshakeSlot(&Session::BeginImplicitTls);
    return Status::Ok();
  }
  Reply(220, "siterelay FTP ready");
  UpdatePoll();
  return Status::Ok();
}

void Session::WithHandshakeSlot(void (Session::*begin)()) {
  slot_.Request(&server_->handshakes_, peer_.ip, [this, begin] { (this->*begin)(); });
  if (slot_.waiting()) UpdatePoll();  // not read meanwhile
}

void Session::BeginImplicitTls() {
  if (server_->tls_ == nullptr || !sock_.EnableTls(*server_->tls_)) {
    SR_LOG(kInfo) << "ftp: " << peer_.ip << ": TLS: " << sock_.error();
    Close();
    return;
  }
  // The greeting waits in out_ until the handshake lets it through.
  Reply(220, "siterelay FTP ready");
  UpdatePoll();
}

void Session::BeginAuthTls() {
  auth_pending_ = false;
  std::string early = std::move(in_);  // the ClientHello, if it came right behind
  in_.clear();
  if (server_->tls_ == nullptr || !sock_.EnableTls(*server_->tls_, early)) {
    SR_LOG(kInfo) << "ftp: " << peer_.ip << ": AUTH TLS: " << sock_.error();
    Close();
    return;
  }
  peer_.protocol = files::Protocol::kFtps;
  Resume();
}

void Session::Close() {
  if (closing_) return;
  slot_.Reset();
  closing_ = true;
  *alive_ = false;
  CloseData();
  if (open_handles_ == 0) {
    server_->Closed(this);
    return;
  }
  auto on_close = [](uv_handle_t* h) noexcept {
    auto* s = static_cast<Session*>(h->data);
    if (--s->open_handles_ == 0) s->server_->Closed(s);
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
}

bool Session::idle() const { return !busy_ && in_.empty(); }

const tls::TlsContext* Session::DataTls() const {
  return DataProtected() ? server_->tls_.get() : nullptr;
}

void Session::CloseData() {
  if (data_ == nullptr) return;
  data_->Close();
  data_ = nullptr;
}

void Session::UpdatePoll() {
  if (closing_) return;
  // Lines that wait for a transfer are kept, up to a point: a client that floods its control
  // connection meanwhile is simply not read until they are done. Nor is one that does not read
  // its replies (Backlogged).
  int events = !slot_.waiting() && in_.size() < kMaxWaitingInput && !Backlogged() ? UV_READABLE : 0;
  if (out_off_ < out_.size() || sock_.want_write()) events |= UV_WRITABLE;
  if (events == poll_events_) return;
  poll_events_ = events;
  if (events == 0) {
    uv_poll_stop(&poll_);
    return;
  }
  int rc = uv_poll_start(&poll_, events, [](uv_poll_t* p, int status, int ev) noexcept {
    auto* s = static_cast<Session*>(p->data);
    if (status < 0) {
      s->Close();
      return;
    }
    if ((ev & UV_WRITABLE) != 0) s->OnWritable();
    if ((ev & UV_READABLE) != 0 && !s->closing_) s->OnReadable();
  });
  if (rc != 0) Close();
}

void Session::ArmTimer() {
  if (closing_ || delaying_) return;
  if (busy_ && account_ != nullptr) {  // a transfer: the data channel's own timeouts apply
    uv_timer_stop(&timer_);
    return;
  }
  bool login = account_ == nullptr;
  // The login deadline counts from the connection, whatever the client sends meanwhile.
  int64_t ms = login ? std::max<int64_t>(login_deadline_ms_ - NowMs(), 0)
                     : server_->limits_.idle_timeout_ms;
  uv_timer_start(
      &timer_,
      [](uv_timer_t* t) noexcept {
        auto* s = static_cast<Session*>(t->data);
        SR_LOG(kInfo) << "ftp: " << s->peer_.ip << ": "
                      << (s->account_ == nullptr ? "no login" : "idle") << " timeout";
        // A 421 would never reach a client that does not read its replies, nor one whose TLS
        // handshake (implicit FTPS, or after AUTH TLS) never finished: just close.
        bool handshaking =
            s->slot_.waiting() || (s->sock_.tls() && !s->sock_.tls_stream()->handshake_done());
        if (s->out_off_ < s->out_.size() || handshaking) {
          s->Close();
          return;
        }
        s->close_after_reply_ = true;
        s->Reply(421, "Timeout: closing control connection.");
      },
      static_cast<uint64_t>(ms), 0);
}

void Session::OnReadable() {
  std::string plain;
  net::StreamSocket::Io io = sock_.Receive(&plain);
  if (io == net::StreamSocket::Io::kError) {
    SR_LOG(kInfo) << "ftp: " << peer_.ip << ": " << sock_.error();
    Close();
    return;
  }
  if (io == net::StreamSocket::Io::kClosed) {
    Close();  // a transfer in flight is abandoned with its session (CloseData)
    return;
  }
  if (slot_.holding() && sock_.tls_stream()->handshake_done()) slot_.Reset();  // over: it goes back
  if (!plain.empty()) {
    in_ += plain;
    ProcessLines();
  }
  FlushOut();  // the greeting, once an implicit TLS handshake lets it through
}

void Session::OnWritable() {
  if (sock_.want_write() && !sock_.Flush()) {
    Close();
    return;
  }
  bool was_backlogged = Backlogged();
  FlushOut();
  // The client read its replies: the commands that waited for that run now. (Only from here,
  // never from FlushOut, which Reply calls from inside ProcessLines.)
  if (was_backlogged && !closing_ && !Backlogged()) {
    ProcessLines();
    FlushOut();
  }
}

bool Session::Backlogged() const { return out_.size() - out_off_ >= kMaxPendingReplyBytes; }

void Session::Reply(int code, std::string_view text) {
  out_ += std::to_string(code);
  out_ += ' ';
  out_ += text;
  out_ += "\r\n";
  FlushOut();
}

void Session::ReplyLines(int code, const std::vector<std::string>& lines) {
  // RFC 959 4.2: "211-First line", then the lines (each starting with a space), "211 End".
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    out_ += i == 0 ? std::to_string(code) + "-" : std::string(" ");
    out_ += lines[i];
    out_ += "\r\n";
  }
  Reply(code, lines.empty() ? "" : lines.back());
}

void Session::FlushOut() {
  if (closing_) return;
  while (out_off_ < out_.size()) {
    ssize_t n = sock_.Send(out_.data() + out_off_, out_.size() - out_off_);
    if (n < 0) {
      SR_LOG(kInfo) << "ftp: " << peer_.ip << ": " << sock_.error();
      Close();
      return;
    }
    if (n == 0) break;
    out_off_ += static_cast<size_t>(n);
  }
  if (out_off_ == out_.size() && !sock_.want_write()) {
    out_.clear();
    out_off_ = 0;
    if (close_after_reply_) {
      Close();
      return;
    }
    if (auth_pending_ && !slot_.waiting()) {  // the 234 is out in plaintext: TLS from the next byte
      WithHandshakeSlot(&Session::BeginAuthTls);
      if (closing_) return;
    }
  }
  UpdatePoll();
}

void Session::ProcessLines() {
  while (!closing_ && !auth_pending_ && !close_after_reply_ && !Backlogged()) {
    std::string line;
    LineStatus ls = TakeLine(&in_, &line);
    if (ls == LineStatus::kNeedMore) return;
    if (ls == LineStatus::kTooLong) {
      SR_LOG(kInfo) << "ftp: " << peer_.ip << ": command line too long";
      close_after_reply_ = true;
      Reply(500, "Command line too long.");
      return;
    }
    auto cmd = ParseCommand(line);
    if (!cmd.ok()) {
      Reply(500, "Syntax error, command unrecognized.");
      continue;
    }
    if (busy_ || delaying_) {
      // One command at a time; ABOR and QUIT act at once.
      if (cmd->verb == "ABOR") {
        DoAbor();
        continue;
      }
      if (cmd->verb == "QUIT") {
        CloseData();
        close_after_reply_ = true;
        Reply(221, "Goodbye.");
        return;
      }
      // Put it back for later (it had a line end, so re-add one).
      in_.insert(0, line + "\r\n");
      return;
    }
    Execute(*cmd);
  }
}

void Session::Resume() {
  if (closing_) return;
  ArmTimer();
  ProcessLines();
  FlushOut();
}

void Session::Execute(const Command& c) {
  const std::string& v = c.verb;
  command_start_ms_ = NowMs();
  ArmTimer();
  // Before login: only what it takes to log in (and to protect the login).
  if (v == "USER") return DoUser(c.arg);
  if (v == "PASS") return DoPass(c.arg);
  if (v == "AUTH") return DoAuth(c.arg);
  if (v == "PBSZ") return DoPbsz(c.arg);
  if (v == "PROT") return DoProt(c.arg);
  if (v == "CCC") return Reply(534, "CCC refused: the control connection stays protected.");
  if (v == "FEAT") {
    std::vector<std::string> lines = {"Features:"};
    if (server_->tls_ != nullptr) {
      lines.insert(lines.end(), {"AUTH TLS", "PBSZ", "PROT"});
    }
    lines.insert(lines.end(), {"EPRT", "EPSV", "MDTM", "MLST type*;size*;modify*;perm*;",
                               "REST STREAM", "SIZE", "TVFS", "UTF8", "End"});
    return ReplyLines(211, lines);
  }
  if (v == "SYST") return Reply(215, "UNIX Type: L8");
  if (v == "NOOP") return Reply(200, "NOOP ok.");
  if (v == "QUIT") {
    close_after_reply_ = true;
    return Reply(221, "Goodbye.");
  }
  if (v == "OPTS") {
    std::string arg = c.arg;
    for (char& ch : arg) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (arg == "UTF8 ON" || arg == "UTF-8 ON") return Reply(200, "Always in UTF8 mode.");
    if (arg.rfind("MLST", 0) == 0) return Reply(200, "MLST OPTS type;size;modify;perm;");
    return Reply(501, "Option not understood.");
  }
  if (v == "ABOR") return DoAbor();
  if (account_ == nullptr) return Reply(530, "Please login with USER and PASS.");

  if (v == "PWD" || v == "XPWD") return Reply(257, Quote(cwd_) + " is the current directory");
  if (v == "CWD" || v == "XCWD") return DoCwd(c.arg);
  if (v == "CDUP" || v == "XCUP") return DoCwd("..");
  if (v == "TYPE") {
    auto t = ParseType(c.arg);
    if (!t.ok()) {
      return Reply(t.status().Is(kUnimplemented) ? 504 : 501, "Unsupported TYPE.");
    }
    // Bytes go out as stored in either type (as vsftpd does by default): phones use TYPE I.
    return Reply(200, *t == 'A' ? "Switching to ASCII mode." : "Switching to Binary mode.");
  }
  if (v == "MODE") {
    return EqualsIgnoreCase(c.arg, "S") ? Reply(200, "Mode set to S.")
                                        : Reply(504, "Only stream mode is supported.");
  }
  if (v == "STRU") {
    return EqualsIgnoreCase(c.arg, "F") ? Reply(200, "Structure set to F.")
                                        : Reply(504, "Only file structure is supported.");
  }
  if (v == "PASV") return DoPasv(false, c.arg);
  if (v == "EPSV") return DoPasv(true, c.arg);
  if (v == "PORT") return DoPort(false, c.arg);
  if (v == "EPRT") return DoPort(true, c.arg);
  if (v == "REST") {
    auto off = ParseRestOffset(c.arg);
    if (!off.ok()) return Reply(501, "REST needs a byte offset.");
    rest_ = *off;
    return Reply(350, "Restart position accepted (" + std::to_string(rest_) + ").");
  }
  if (v == "SIZE") return DoSize(c.arg, false);
  if (v == "MDTM") return DoSize(c.arg, true);
  if (v == "RETR") return DoRetr(c.arg);
  if (v == "STOR") return DoStore(c.arg, false);
  if (v == "APPE") return DoStore(c.arg, true);
  if (v == "LIST" || v == "NLST" || v == "MLSD") return DoList(v, c.arg);
  if (v == "MLST") return DoMlst(c.arg);
  Reply(502, "Command not implemented.");
}

// ---- login ----

void Session::DoUser(const std::string& arg) {
  if (account_ != nullptr) return Reply(530, "Already logged in.");
  if (arg.empty()) return Reply(501, "USER needs a name.");
  user_ = arg;
  Reply(331, "Please specify the password.");
}

void Session::DoPass(const std::string& arg) {
  if (account_ != nullptr) return Reply(230, "Already logged in.");
  if (user_.empty()) return Reply(503, "Login with USER first.");
  // While a failed login from this address is being held back, no password from it is checked,
  // the right one included: otherwise an attacker would open many sessions, guess in all of them
  // at once and take any quick answer for a hit, and the backoff would slow down nothing.
  if (int64_t wait = server_->LoginWaitMs(peer_.ip); wait > 0) return HoldPass(arg, wait);
  const files::FileService& fs = *server_->files_;
  const Account* a = fs.RequiresCredentials() ? fs.Authenticate(user_, arg) : fs.Anonymous();
  if (a != nullptr) {
    account_ = a;
    server_->LoginSucceeded(peer_.ip, user_);
    SR_LOG(kInfo) << "ftp: " << peer_.ip << ": logged in as '" << EscapeControl(user_) << "'"
                  << (sock_.tls() ? " (" + sock_.tls_stream()->Describe() + ")" : "");
    ArmTimer();
    return Reply(230, "Login successful.");
  }
  // Wrong: the 530 waits, longer with every failure from this address (brute force gets slow),
  // and the session ends after a few. The password never reaches the log.
  ++login_failures_;
  int64_t delay = server_->LoginFailed(peer_.ip, user_);
  SR_LOG(kWarning) << "ftp: " << peer_.ip << ": login as '" << EscapeControl(user_)
                   << "' failed (" << login_failures_ << " in this session)";
  user_.clear();
  delaying_ = true;
  uv_timer_start(
      &timer_,
      [](uv_timer_t* t) noexcept {
        auto* s = static_cast<Session*>(t->data);
        s->delaying_ = false;
        if (s->login_failures_ >= s->server_->limits_.max_login_failures) {
          s->close_after_reply_ = true;
        }
        s->Reply(530, "Login incorrect.");
        s->Resume();
      },
      static_cast<uint64_t>(delay), 0);
}

void Session::HoldPass(const std::string& password, int64_t wait_ms) {
  held_password_ = password;
  delaying_ = true;
  // The login deadline still holds: a session waiting behind failures gets its 421 then.
  int64_t ms = std::clamp<int64_t>(wait_ms, 0, std::max<int64_t>(login_deadline_ms_ - NowMs(), 0));
  uv_timer_start(
      &timer_,
      [](uv_timer_t* t) noexcept {
        auto* s = static_cast<Session*>(t->data);
        s->delaying_ = false;
        std::string held = std::move(s->held_password_);
        s->held_password_.clear();
        if (NowMs() >= s->login_deadline_ms_) {
          SR_LOG(kInfo) << "ftp: " << s->peer_.ip << ": no login timeout (waiting behind failed "
                        << "logins from this address)";
          s->close_after_reply_ = true;
          s->Reply(421, "Timeout: closing control connection.");
          return;
        }
        s->DoPass(held);
        s->Resume();
      },
      static_cast<uint64_t>(ms), 0);
}

// ---- TLS (RFC 4217) ----

void Session::DoAuth(const std::string& arg) {
  if (sock_.tls()) return Reply(534, "Already protected by TLS.");
  if (!EqualsIgnoreCase(arg, "TLS") && !EqualsIgnoreCase(arg, "SSL") &&
      !EqualsIgnoreCase(arg, "TLS-C")) {
    return Reply(504, "Only AUTH TLS is supported.");
  }
  if (server_->tls_ == nullptr) return Reply(431, "TLS is not available.");
  auth_pending_ = true;
  Reply(234, "Proceed with negotiation.");
}

void Session::DoPbsz(const std::string& arg) {
  if (!sock_.tls()) return Reply(503, "PBSZ needs a protected session (AUTH TLS).");
  pbsz_ = true;
  (void)arg;  // RFC 4217: the value is 0 for TLS, whatever the client asked
  Reply(200, "PBSZ=0");
}

void Session::DoProt(const std::string& arg) {
  if (!sock_.tls()) return Reply(503, "PROT needs a protected session (AUTH TLS).");
  if (EqualsIgnoreCase(arg, "P")) {
    prot_p_ = true;
    prot_c_ = false;
    return Reply(200, "PROT now Private.");
  }
  if (EqualsIgnoreCase(arg, "C")) {
    prot_p_ = false;
    prot_c_ = true;
    return Reply(200, "PROT now Clear.");
  }
  if (EqualsIgnoreCase(arg, "S") || EqualsIgnoreCase(arg, "E")) {
    return Reply(536, "Only PROT C and P are supported.");
  }
  Reply(504, "PROT needs C or P.");
}

// ---- paths ----

bool Session::ResolveArg(const std::string& arg, std::string* ftp_path,
                         std::string* catalog_path) {
  auto joined = JoinPath(cwd_, arg);
  if (joined.ok()) {
    auto resolved = server_->files_->Resolve(*account_, *joined, /*encoded=*/false);
    if (resolved.ok()) {
      *ftp_path = *joined;
      *catalog_path = *resolved;
      return true;
    }
    SR_LOG(kInfo) << "ftp: " << peer_.ip << ": refused path: " << resolved.status().message();
  } else {
    SR_LOG(kInfo) << "ftp: " << peer_.ip << ": refused path: " << joined.status().message();
  }
  Reply(550, "Permission denied.");
  return false;
}

void Session::DoCwd(const std::string& arg) {
  std::string path, catalog;
  if (arg == ".." && cwd_ == "/") return Reply(250, "Directory successfully changed.");
  if (!ResolveArg(arg, &path, &catalog)) return;
  // The namespace is the origin's, most of it not cached: any path that is not a cached file
  // may be a directory (a later RETR asks the origin).
  if (!catalog.empty() && server_->files_->Stat(catalog) &&
      !server_->files_->IsDirectory(catalog)) {
    return Reply(550, "Not a directory.");
  }
  cwd_ = path;
  Reply(250, "Directory successfully changed.");
}

// ---- data connections ----

void Session::DoPasv(bool extended, const std::string& arg) {
  if (extended && EqualsIgnoreCase(arg, "ALL")) {
    epsv_all_ = true;  // RFC 2428: from now on only EPSV
    return Reply(200, "EPSV ALL ok.");
  }
  if (!extended && epsv_all_) return Reply(503, "EPSV ALL in effect: use EPSV.");
  bool v6 = local_.ss_family == AF_INET6;
  if (extended && !arg.empty() && arg != (v6 ? "2" : "1")) {
    return Reply(522, v6 ? "Network protocol not supported, use (2)"
                         : "Network protocol not supported, use (1)");
  }
  if (!extended && v6) return Reply(425, "PASV is IPv4 only: use EPSV.");
  CloseData();
  uint16_t port = 0;
  auto fd = server_->OpenPassive(local_, peer_.ip, &port);
  if (!fd.ok()) {
    SR_LOG(kWarning) << "ftp: " << peer_.ip << ": " << fd.status().message();
    return Reply(425, "No passive port free; try again.");
  }
  auto* d = new DataChannel(this, server_->loop_, server_->limits_);
  Status s = d->Listen(std::move(fd).value());
  if (!s.ok()) {
    d->Close();
    return Reply(425, "Cannot open a data connection.");
  }
  data_ = d;
  passive_order_ = ++server_->passive_opened_;
  if (extended) return Reply(229, EpsvReply(port).substr(4));
  sockaddr_in a = *reinterpret_cast<const sockaddr_in*>(&local_);
  a.sin_port = htons(port);
  Reply(227, PasvReply(a).substr(4));
}

void Session::DoPort(bool extended, const std::string& arg) {
  if (epsv_all_) return Reply(503, "EPSV ALL in effect: use EPSV.");
  auto to = extended ? ParseEprt(arg) : ParsePort(arg);
  if (!to.ok()) {
    if (to.status().Is(kUnimplemented)) return Reply(522, "Network protocol not supported, use (1,2)");
    return Reply(501, "Syntax error in the address.");
  }
  // Only to the control peer itself: no bounce attacks through the relay (RFC 2577).
  if (!SameAddress(remote_, *to)) {
    SR_LOG(kWarning) << "ftp: " << peer_.ip << ": " << (extended ? "EPRT" : "PORT")
                     << " to another address refused";
    return Reply(504, "Data connections go to your own address only.");
  }
  // Nor to a privileged port of it (RFC 2577 section 3, as vsftpd): the relay would otherwise
  // connect, from its own address and with bytes a phone may have uploaded, to the SSH, SMTP or
  // admin port of whatever stands at that address, a NAT router above all.
  uint16_t port =
      ntohs(to->ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&*to)->sin6_port
                                      : reinterpret_cast<const sockaddr_in*>(&*to)->sin_port);
  if (port < 1024) {
    SR_LOG(kWarning) << "ftp: " << peer_.ip << ": " << (extended ? "EPRT" : "PORT")
                     << " to privileged port " << port << " refused";
    return Reply(504, "Data connections go to ports 1024 and above only.");
  }
  CloseData();
  auto* d = new DataChannel(this, server_->loop_, server_->limits_);
  Status s = d->Target(*to);
  if (!s.ok()) {
    d->Close();
    return Reply(425, "Cannot open a data connection.");
  }
  data_ = d;
  Reply(200, extended ? "EPRT command successful." : "PORT command successful.");
}

bool Session::HoldsIdlePassive(uint64_t* order) const {
  if (busy_ || closing_ || data_ == nullptr || !data_->IdlePassive()) return false;
  if (order != nullptr) *order = passive_order_;
  return true;
}

void Session::GiveUpPassive() {
  SR_LOG(kInfo) << "ftp: " << peer_.ip << ": an unused passive port goes to another address "
                << "(the range is full)";
  CloseData();  // its next RETR hears 425 and, like any client after a 425, asks again
}

DataChannel* Session::TakeData() {
  DataChannel* d = data_;
  data_ = nullptr;
  if (d == nullptr) Reply(425, "Use PORT or PASV first.");
  return d;
}

void Session::TransferEnded(const std::string& verb, const std::string& path, int code,
                            std::string_view text, uint64_t bytes) {
  int64_t ms = NowMs() - command_start_ms_;
  SR_ACCESS_LOG(kInfo) << files::ProtocolName(peer_.protocol) << " " << verb << " " << EscapeControl(path) << " "
                << code << " " << bytes << " " << ms << "ms " << peer_.ip
                << (mac_.empty() ? "" : " mac=" + mac_) << " user='" << EscapeControl(user_)
                << "'" << (DataProtected() ? " tls" : "");
  busy_ = false;
  ++server_->replies_[code];
  Reply(code, text);
  Resume();
}

void Session::DataFailed(const std::string& verb, const std::string& path, const Status& s,
                         uint64_t bytes, bool opened) {
  SR_LOG(kInfo) << "ftp: " << peer_.ip << ": " << verb << " " << EscapeControl(path) << ": "
                << s.message();
  if (!opened) return TransferEnded(verb, path, 425, "Cannot open data connection.", bytes);
  // RFC 959: 552 for a file past its allowance (uploads.max_bytes: the client sent more than it
  // may), 452 for a relay short of space (a full disk), which a client may try again later.
  if (s.Is(StatusCode::kResourceExhausted) && bytes > server_->limits_.max_upload_bytes) {
    return TransferEnded(verb, path, 552, "Exceeded storage allocation.", bytes);
  }
  if (s.Is(StatusCode::kResourceExhausted)) {
    return TransferEnded(verb, path, 452, "Insufficient storage space in system.", bytes);
  }
  if (s.Is(StatusCode::kUnavailable)) {
    return TransferEnded(verb, path, 426, "Connection closed; transfer aborted.", bytes);
  }
  TransferEnded(verb, path, 451, "Local error: could not store the file.", bytes);
}

void Session::DoSize(const std::string& arg, bool mdtm) {
  std::string path, catalog;
  if (!ResolveArg(arg, &path, &catalog)) return;
  busy_ = true;
  ArmTimer();
  std::weak_ptr<bool> alive = alive_;
  // A stream: a file still arriving answers as soon as the origin said its size, and the pull it
  // starts serves the RETR that usually follows.
  server_->files_->Open(catalog, files::ReadMode::kStream,
                        [this, alive, mdtm](Result<files::OpenFile> f) {
    if (alive.expired() || !*alive.lock()) return;
    busy_ = false;
    if (!f.ok()) {
      Reply(550, f.status().Is(StatusCode::kNotFound) ? "No such file." : "File not available.");
    } else if (mdtm) {
      if (f->modified <= 0) {
        Reply(550, "Modification time not known yet.");
      } else {
        Reply(213, FormatFtpTime(f->modified));
      }
    } else {
      uint64_t size = f->growing ? f->growing->size().value_or(0) : f->size;
      if (f->growing && !f->growing->size()) {
        Reply(550, "Size not known yet.");
      } else {
        Reply(213, std::to_string(size));
      }
    }
    Resume();
  });
}

void Session::DoRetr(const std::string& arg) {
  std::string path, catalog;
  uint64_t offset = rest_;
  rest_ = 0;
  if (!ResolveArg(arg, &path, &catalog)) return;
  DataChannel* d = TakeData();
  if (d == nullptr) return;
  if (auto mac = files::MacFromFileName(files::BaseName(catalog))) mac_ = *mac;
  server_->files_->RecordSighting(peer_, catalog, "");
  busy_ = true;
  ArmTimer();
  std::weak_ptr<bool> alive = alive_;
  data_ = d;  // held while FileService answers, so ABOR or a close can end it
  server_->files_->Open(catalog, files::ReadMode::kStream, [this, alive, d, path, catalog,
                                                            offset](Result<files::OpenFile> f) {
    if (alive.expired() || !*alive.lock() || data_ != d) return;
    data_ = nullptr;
    if (!f.ok()) {
      d->Close();
      bool missing = f.status().Is(StatusCode::kNotFound);
      bool denied = f.status().Is(StatusCode::kPermissionDenied);
      if (!missing) server_->files_->CountFailed(peer_, catalog);
      TransferEnded("RETR", path, missing || denied ? 550 : 451,
                    missing ? "No such file." : denied ? "Permission denied."
                                                       : "File not available (origin unreachable).",
                    0);
      return;
    }
    std::optional<uint64_t> size = f->growing ? f->growing->size() : std::optional(f->size);
    if (size && offset > *size) {
      d->Close();
      TransferEnded("RETR", path, 554, "Restart offset beyond the end of the file.", 0);
      return;
    }
    std::string opening = "Opening BINARY mode data connection for " + path;
    if (size) opening += " (" + std::to_string(*size - offset) + " bytes)";
    Reply(150, opening + ".");
    data_ = d;
    d->SendFile(std::move(f).value(), offset, DataTls(),
                [this, alive, d, path, catalog, offset](Status s, uint64_t bytes, bool opened) {
      if (alive.expired() || !*alive.lock()) return;
      if (data_ == d) data_ = nullptr;
      if (!s.ok()) {
        server_->files_->CountFailed(peer_, catalog);
        return DataFailed("RETR", path, s, bytes, opened);
      }
      if (offset == 0) server_->files_->CountServed(peer_, catalog, bytes);
      TransferEnded("RETR", path, 226, "Transfer complete.", bytes);
    });
  });
}

void Session::DoStore(const std::string& arg, bool append) {
  const char* verb = append ? "APPE" : "STOR";
  std::string path, catalog;
  uint64_t offset = rest_;
  rest_ = 0;
  if (!ResolveArg(arg, &path, &catalog)) return;
  files::UploadName name = files::ClassifyUpload(files::BaseName(catalog));
  if (name.kind == files::UploadName::kNone || server_->uploads_ == nullptr) {
    SR_LOG(kInfo) << "ftp: " << peer_.ip << ": " << verb << " " << EscapeControl(path)
                  << " refused: not a phone upload name";
    return Reply(550, "Permission denied: uploads take phone log and settings names only.");
  }
  if (offset != 0) return Reply(550, "REST is for RETR only; use APPE to add to a file.");
  DataChannel* d = TakeData();
  if (d == nullptr) return;
  if (auto mac = files::MacFromFileName(files::BaseName(catalog))) mac_ = *mac;
  server_->files_->RecordSighting(peer_, catalog, "");
  busy_ = true;
  ArmTimer();
  // Logs append and settings replace, for STOR and APPE alike, exactly as HTTP PUT
  // (CONTRACT.md "Uploads"): the sink knows which by the name.
  auto sink = server_->uploads_->Begin(catalog, name, server_->limits_.max_upload_bytes);
  Reply(150, "Ok to send data.");
  data_ = d;
  std::weak_ptr<bool> alive = alive_;
  std::string v = verb;
  d->Receive(sink, DataTls(),
             [this, alive, d, path, v](Status s, uint64_t bytes, bool opened) {
    if (alive.expired() || !*alive.lock()) return;
    if (data_ == d) data_ = nullptr;
    if (s.ok()) return TransferEnded(v, path, 226, "Transfer complete.", bytes);
    DataFailed(v, path, s, bytes, opened);
  });
}

void Session::DoList(const std::string& verb, const std::string& arg) {
  std::string path, catalog;
  if (!ResolveArg(StripListOptions(arg), &path, &catalog)) return;
  const files::FileService& fs = *server_->files_;
  std::vector<files::DirEntry> entries;
  auto listed = fs.List(catalog);
  if (listed.ok()) {
    entries = std::move(listed).value();
  } else if (auto f = fs.Stat(catalog)) {
    if (verb == "MLSD") return Reply(501, "MLSD needs a directory; use MLST.");
    entries.push_back(std::move(*f));
  }
  // A directory that holds nothing cached (or does not exist) lists empty, as a pull-through
  // namespace cannot tell those apart.
  DataChannel* d = TakeData();
  if (d == nullptr) return;
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  std::string text;
  for (const files::DirEntry& e : entries) {
    ListEntry le{e.name, e.dir, e.size, e.modified};
    if (verb == "NLST") {
      text += e.name + "\r\n";
    } else if (verb == "MLSD") {
      text += FormatFacts(le) + "\r\n";
    } else {
      text += FormatListLine(le, now);
    }
  }
  busy_ = true;
  ArmTimer();
  Reply(150, "Here comes the directory listing.");
  data_ = d;
  std::weak_ptr<bool> alive = alive_;
  d->SendText(std::move(text), DataTls(),
              [this, alive, d, verb, path](Status s, uint64_t bytes, bool opened) {
    if (alive.expired() || !*alive.lock()) return;
    if (data_ == d) data_ = nullptr;
    if (!s.ok()) return DataFailed(verb, path, s, bytes, opened);
    TransferEnded(verb, path, 226, "Directory send OK.", bytes);
  });
}

void Session::DoMlst(const std::string& arg) {
  std::string path, catalog;
  if (!ResolveArg(arg, &path, &catalog)) return;
  ListEntry le;
  le.name = path;
  if (server_->files_->IsDirectory(catalog)) {
    le.dir = true;
  } else if (auto f = server_->files_->Stat(catalog)) {
    le.size = f->size;
    le.modified = f->modified;
  } else {
    return Reply(550, "No such file or directory.");
  }
  ReplyLines(250, {"Listing " + path, FormatFacts(le), "End"});
}

void Session::DoAbor() {
  if (data_ == nullptr || !busy_) {
    if (data_ != nullptr) CloseData();  // an idle PASV/PORT: forget it
    return Reply(225, "No transfer to abort.");
  }
  CloseData();
  busy_ = false;
  Reply(426, "Connection closed; transfer aborted.");
  Reply(226, "ABOR successful.");
  Resume();
}

}  // namespace siterelay::ftp
