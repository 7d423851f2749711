// StreamSocket: one connected, non-blocking TCP socket with an optional TLS filter — the byte
// mover that HTTP, HTTPS, FTP control and FTP data connections share (DESIGN.md "relay/tls": one
// stream filter for HTTPS and FTPS). Plaintext goes in and out; file bodies go out with
// sendfile(2) on plain TCP and pread + encrypt under TLS, so the fast paths of every protocol
// are the same code.
//
// It owns no libuv handle: the connection that owns it polls fd() and calls Receive() when it is
// readable and Send()/SendFile()/Flush() when it is writable. want_write() says when ciphertext
// is waiting for the socket (a TLS handshake answer, an alert, the rest of a record).
//
// Memory is bounded: one read of kReadChunk, at most about kTlsBatch of ciphertext waiting
// (kMaxUnsentCiphertext with what the TLS layer answers a peer that does not read), and
// kTlsFileChunk of file bytes read ahead for encryption.
//
// Thread safety: one StreamSocket belongs to one connection on the loop thread.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "relay/base/config.h"
#include "relay/base/fs.h"
#include "relay/base/status.h"
#include "relay/tls/tls.h"

namespace siterelay::net {

// Largest single read(2): a request head or a command line fits in one.
constexpr size_t kReadChunk = 16 * 1024;
// Ciphertext waiting for a peer that does not read it, past which Receive() gives up on the
// peer. What a connection sends waits one batch (64 KiB) at most; what the TLS layer answers on
// its own comes on top: the handshake flight, alerts, and a KeyUpdate for every KeyUpdate the
// peer requests (RFC 8446 section 4.6.3). A peer that floods requests and never reads the
// answers would otherwise grow this buffer for as long as the connection lives.
constexpr size_t kMaxUnsentCiphertext = 256 * 1024;

class StreamSocket {
 public:
  explicit StreamSocket(int fd);  // takes the fd; closed by the destructor
  ~StreamSocket();
  StreamSocket(const StreamSocket&) = delete;
  StreamSocket& operator=(const StreamSocket&) = delete;

  int fd() const { return fd_.get(); }

  // Everything from now on goes through TLS as the server side. `already_received`: bytes read
  // as plaintext that are really the start of the handshake (FTP's AUTH TLS, when the client
  // sent its ClientHello right behind the command); they are processed at once. False on a
  // fatal error (error() says why).
  bool EnableTls(const tls::TlsContext& ctx, std::string_view already_received = {});
  bool tls() const { return tls_ != nullptr; }
  const tls::TlsStream* tls_stream() const { return tls_.get(); }
  tls::TlsStream* tls_stream() { return tls_.get(); }

  enum class Io {
    kOk,      // zero or more plaintext bytes appended
    kAgain,   // nothing to read now
    kClosed,  // the peer ended the stream (FIN; under TLS also close_notify)
    kError,   // fatal: error() says why; the connection must close
  };
  // Reads once from the socket and appends the plaintext to *out (at most 2 * kReadChunk).
  // TLS handshake messages are answered on the way; kError when those answers pile up past
  // kMaxUnsentCiphertext because the peer does not read them.
  Io Receive(std::string* out);
  // Under TLS: the peer's close_notify arrived (a clean end, rather than a bare FIN that could be
  // a truncation attack: FTPS uploads fail without it, RFC 4217 section 9).
  bool close_notify_received() const { return close_notify_received_; }

  // Sends plaintext: the bytes taken (0: the socket is full, or the handshake is still going), or
  // -1 on a fatal error. `more`: more data follows at once, so the kernel may hold this back to
  // fill a segment (MSG_MORE): a response head and a small file leave in one packet.
  ssize_t Send(const char* data, size_t n, bool more = false);
  ssize_t Send(std::string_view data, bool more = false) { return Send(data.data(), data.size(), more); }

  // Sends bytes of `file` from *pos up to `limit` (file offsets), advancing *pos: sendfile(2) on
  // plain TCP, pread + encrypt under TLS. Stops when the socket is full or after about 1 MiB
  // (*yielded: other connections' turn). False on a fatal error (error() says why). Call
  // StartFile() before each new body.
  bool SendFile(int file, uint64_t limit, uint64_t* pos, bool* progress, bool* yielded);
  void StartFile();

  // Sends ciphertext waiting for the socket. False on a fatal error.
  bool Flush();
  bool want_write() const { return tls_out_off_ < tls_out_.size(); }

  // Under TLS: queues close_notify (and sends what it can; Flush() the rest). Plain: nothing.
  bool ShutdownTls();
  // Half-closes the sending side (after the last byte and any close_notify).
  void ShutdownWrite();

  const std::string& error() const { return error_; }

 private:
  bool Fail(std::string why);

  ScopedFd fd_;
  std::unique_ptr<tls::TlsStream> tls_;
  std::string tls_out_;  // ciphertext not yet taken by the socket: at most about one batch
  size_t tls_out_off_ = 0;
  std::unique_ptr<char[]> file_buf_;  // kTlsFileChunk: file bytes read but not yet encrypted
  size_t file_buf_len_ = 0;
  size_t file_buf_pos_ = 0;
  bool close_notify_received_ = false;
  std::string error_;
};

// A listening TCP socket (non-blocking, close-on-exec, SO_REUSEADDR, v6-only for IPv6 addresses)
// on `address`; *bound_port gets the kernel's port when 0 was asked for.
Result<ScopedFd> ListenTcp(const ListenAddress& address, int backlog, uint16_t* bound_port);

// A listener of a TCP server (HTTP, HTTPS, FTP) on the loop: `on_acceptable` runs whenever a
// connection waits in its backlog. Fits ReconcileListeners (relay/base/listen.h).
struct TcpListener {
  ListenAddress configured;  // as in the config (port 0 stays 0)
  ListenAddress actual;      // with the kernel's port
  int fd = -1;
  uv_poll_t poll{};
  std::function<void(TcpListener*)> on_acceptable;
};
Result<std::unique_ptr<TcpListener>> OpenTcpListener(
    uv_loop_t* loop, const ListenAddress& address, std::function<void(TcpListener*)> on_acceptable);
// Stops it; the memory and the socket go in the close callback (libuv's rule).
void CloseTcpListener(std::unique_ptr<TcpListener> listener);

// Takes the connections waiting on `listener`: at most 64 a call (the rest on the next event,
// so one busy listener cannot hold the loop), while `more()` holds. Each goes to `take` as a
// non-blocking, close-on-exec fd with TCP_NODELAY, with its peer's address; `take` owns it.
// `server` names the server in the log line of a failed accept (EMFILE and friends).
void AcceptConnections(TcpListener* listener, std::string_view server,
                       const std::function<bool()>& more,
                       const std::function<void(int fd, const sockaddr_storage& peer)>& take);

}  // namespace siterelay::net
