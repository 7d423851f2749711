#include "relay/net/stream_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "relay/base/listen.h"
#include "relay/base/log.h"
#include "relay/base/uv.h"

namespace siterelay::net {
namespace {

// Bytes per sendfile(2) call, and file bytes per turn under TLS: large enough to fill a socket
// buffer, small enough to take turns fairly between connections on the one loop thread.
constexpr size_t kFileTurn = 1 << 20;
// TLS: plaintext per record (the protocol's maximum), per pass and per file read.
constexpr size_t kTlsRecord = 16 * 1024;
constexpr size_t kTlsBatch = 64 * 1024;
constexpr size_t kTlsFileChunk = 64 * 1024;

}  // namespace

StreamSocket::StreamSocket(int fd) : fd_(FileSystem::Default(), fd) {}

StreamSocket::~StreamSocket() = default;

bool StreamSocket::EnableTls(const tls::TlsContext& ctx, std::string_view already_received) {
  tls_ = std::make_unique<tls::TlsStream>(ctx);
  if (already_received.empty()) return true;
  tls_->Feed(already_received);
  std::string plain;  // none: a client's first flight carries no application data
  Status s = tls_->Read(&plain, kReadChunk);
  tls_->TakeCiphertext(&tls_out_);
  if (!s.ok()) return Fail(s.message());
  return Flush();
}

bool StreamSocket::Fail(std::string why) {
  error_ = std::move(why);
  return false;
}

StreamSocket::Io StreamSocket::Receive(std::string* out) {
  char buf[kReadChunk];
  ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return Io::kAgain;
    Fail(std::strerror(errno));
    return Io::kError;
  }
  if (n == 0) return Io::kClosed;
  if (!tls_) {
    out->append(buf, static_cast<size_t>(n));
    return Io::kOk;
  }
  tls_->Feed(std::string_view(buf, static_cast<size_t>(n)));
  Status s = tls_->Read(out, 2 * kReadChunk);
  tls_->TakeCiphertext(&tls_out_);  // handshake messages, alerts
  if (!Flush()) return Io::kError;
  if (!s.ok()) {
    if (s.Is(StatusCode::kUnavailable)) {
      close_notify_received_ = true;
      return Io::kClosed;
    }
    Fail(s.message());
    return Io::kError;
  }
  if (tls_out_.size() - tls_out_off_ > kMaxUnsentCiphertext) {
    Fail("the peer does not read what the TLS layer answers it (" +
         std::to_string(tls_out_.size() - tls_out_off_) + " bytes waiting)");
    return Io::kError;
  }
  return Io::kOk;
}

ssize_t StreamSocket::Send(const char* data, size_t n, bool more) {
  if (!tls_) {
    for (;;) {
      ssize_t r = ::send(fd_.get(), data, n, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
      if (r >= 0) return r;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      Fail(std::strerror(errno));
      return -1;
    }
  }
  // Up to kTlsBatch of plaintext per pass, and none while the last pass's ciphertext still
  // waits: memory per connection stays at one batch whatever the file size or the client's
  // speed, and each send(2) carries several records.
  if (!Flush()) return -1;
  if (want_write()) return 0;
  size_t taken = 0;
  while (taken < n && taken < kTlsBatch) {
    auto t = tls_->Write(std::string_view(data + taken, std::min(n - taken, kTlsRecord)));
    if (!t.ok()) {
      Fail(t.status().message());
      return -1;
    }
    if (*t == 0) break;
    taken += *t;
  }
  tls_->TakeCiphertext(&tls_out_);
  if (!Flush()) return -1;
  return static_cast<ssize_t>(taken);
}

bool StreamSocket::Flush() {
  while (tls_out_off_ < tls_out_.size()) {
    ssize_t r = ::send(fd_.get(), tls_out_.data() + tls_out_off_, tls_out_.size() - tls_out_off_,
                       MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      return Fail(std::strerror(errno));
    }
    tls_out_off_ += static_cast<size_t>(r);
  }
  tls_out_.clear();
  tls_out_off_ = 0;
  return true;
}

void StreamSocket::StartFile() {
  file_buf_len_ = 0;
  file_buf_pos_ = 0;
}

bool StreamSocket::SendFile(int file, uint64_t limit, uint64_t* pos, bool* progress,
                            bool* yielded) {
  if (!tls_) {
    while (*pos < limit) {
      off_t off = static_cast<off_t>(*pos);
      size_t want = static_cast<size_t>(std::min<uint64_t>(limit - *pos, kFileTurn));
      ssize_t n = ::sendfile(fd_.get(), file, &off, want);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        return Fail(std::strerror(errno));
      }
      if (n == 0) return Fail("the file ended early");  // objects are immutable: it cannot
      *pos += static_cast<uint64_t>(n);
      *progress = true;
      if (want == kFileTurn) {  // let other connections have a turn
        *yielded = true;
        break;
      }
    }
    return true;
  }
  // TLS: pread into a buffer, encrypt a record at a time. The buffer holds the file bytes from
  // *pos on that the socket has not taken yet.
  uint64_t budget = kFileTurn;
  while (*pos < limit) {
    if (budget == 0) {
      *yielded = true;
      break;
    }
    if (file_buf_pos_ == file_buf_len_) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(limit - *pos, kTlsFileChunk));
      // Not a vector: resizing one zero-fills every chunk before pread overwrites it.
      if (!file_buf_) file_buf_ = std::make_unique_for_overwrite<char[]>(kTlsFileChunk);
      ssize_t r = ::pread(file, file_buf_.get(), want, static_cast<off_t>(*pos));
      file_buf_pos_ = 0;
      file_buf_len_ = r > 0 ? static_cast<size_t>(r) : 0;
      if (r <= 0) {
        return Fail(r < 0 ? std::string("reading the file: ") + std::strerror(errno)
                          : std::string("the file ended early"));
      }
    }
    size_t avail = std::min<size_t>(file_buf_len_ - file_buf_pos_,
                                    static_cast<size_t>(limit - *pos));
    ssize_t n = Send(file_buf_.get() + file_buf_pos_, avail);
    if (n < 0) return false;
    if (n == 0) break;
    file_buf_pos_ += static_cast<size_t>(n);
    *pos += static_cast<uint64_t>(n);
    budget -= std::min<uint64_t>(budget, static_cast<uint64_t>(n));
    *progress = true;
  }
  return true;
}

bool StreamSocket::ShutdownTls() {
  if (!tls_) return true;
  tls_->Shutdown();
  tls_->TakeCiphertext(&tls_out_);
  return Flush();
}

void StreamSocket::ShutdownWrite() { ::shutdown(fd_.get(), SHUT_WR); }

Result<ScopedFd> ListenTcp(const ListenAddress& a, int backlog, uint16_t* bound_port) {
  sockaddr_storage ss;
  socklen_t len = ToSockaddr(a, &ss);
  int raw = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (raw < 0) return PosixError("socket for " + a.ToString(), errno);
  ScopedFd fd(FileSystem::Default(), raw);
  int one = 1;
  ::setsockopt(raw, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (a.ipv6) ::setsockopt(raw, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(raw, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(raw, backlog) != 0) {
    return PosixError("listen on " + a.ToString(), errno);
  }
  *bound_port = a.port;
  sockaddr_storage got{};
  socklen_t got_len = sizeof got;
  if (::getsockname(raw, reinterpret_cast<sockaddr*>(&got), &got_len) == 0) {
    *bound_port = ntohs(a.ipv6 ? reinterpret_cast<sockaddr_in6*>(&got)->sin6_port
                               : reinterpret_cast<sockaddr_in*>(&got)->sin_port);
  }
  return fd;
}

Result<std::unique_ptr<TcpListener>> OpenTcpListener(
    uv_loop_t* loop, const ListenAddress& a, std::function<void(TcpListener*)> on_acceptable) {
  uint16_t port = 0;
  auto sock = ListenTcp(a, 1024, &port);
  if (!sock.ok()) return sock.status();
  auto l = std::make_unique<TcpListener>();
  l->configured = a;
  l->actual = a;
  l->actual.port = port;
  l->on_acceptable = std::move(on_acceptable);
  l->poll.data = l.get();
  int rc = uv_poll_init(loop, &l->poll, sock->get());
  if (rc != 0) return UvError("poll " + a.ToString(), rc);  // the ScopedFd closes it
  l->fd = sock->Release();  // from now on the close callback closes it
  rc = uv_poll_start(&l->poll, UV_READABLE, [](uv_poll_t* p, int status, int) noexcept {
    auto* li = static_cast<TcpListener*>(p->data);
    if (status == 0) li->on_acceptable(li);
  });
  if (rc != 0) {
    CloseTcpListener(std::move(l));
    return UvError("poll " + a.ToString(), rc);
  }
  return l;
}

void AcceptConnections(TcpListener* l, std::string_view server,
                       const std::function<bool()>& more,
                       const std::function<void(int fd, const sockaddr_storage& peer)>& take) {
  for (int i = 0; i < 64 && more(); ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(l->fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      SR_LOG(kWarning) << server << ": accept: " << std::strerror(errno);
      return;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    take(fd, ss);
  }
}

void CloseTcpListener(std::unique_ptr<TcpListener> l) {
  TcpListener* raw = l.release();
  uv_close(reinterpret_cast<uv_handle_t*>(&raw->poll), [](uv_handle_t* h) noexcept {
    auto* li = static_cast<TcpListener*>(h->data);
    ::close(li->fd);
    delete li;
  });
}

}  // namespace siterelay::net
