// poly_ftps_client: a small blocking FTP client for the integration tests that behaves like a Poly
// phone on implicit FTPS (PHONES.md, "FTPS"): it connects, starts TLS at once (no AUTH), logs in,
// asks for a passive data connection and starts TLS on that one too without ever sending PBSZ or
// PROT, and without offering the control connection's TLS session for reuse. Flags switch on what
// other clients do instead, for comparison: --prot-p (PBSZ 0 + PROT P first), --reuse-session
// (offer the control session on the data connection, as curl does), --plain (no TLS at all, to
// try it against any FTP server).
//
// usage: poly_ftps_client [options] HOST PORT COMMAND [ARGS]    (--help for the details)
// Exit: 0 success (226 after a transfer, 213 for size); 1 the server answered a command with an
//       error reply (printed); 2 usage, connection, TLS or local file errors.
//
// One process, one session, blocking sockets with a 30 s timeout on every read and write, so a
// server that stops talking fails the run instead of hanging it. It links OpenSSL and nothing of
// siterelay's: it checks the server from the outside, as a phone would. Failures end the process
// at once through Die(), vsftpd's die() pattern: there is no state worth unwinding, and the
// operating system closes the sockets.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

// Limits: every buffer that grows with what the server sends has a ceiling here.
constexpr int kSocketTimeoutSeconds = 30;    // SO_RCVTIMEO / SO_SNDTIMEO on every socket
constexpr size_t kMaxReplyLineBytes = 4096;  // one line of a reply, CRLF included
constexpr size_t kMaxReplyLines = 200;       // lines of one multi-line reply (RFC 959 4.2)
constexpr size_t kChunkBytes = 64 * 1024;    // one read or write on the data connection

enum Exit : int { kExitOk = 0, kExitFtpError = 1, kExitFailure = 2 };

bool verbose = false;

[[noreturn]] void Die(int code, const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "poly_ftps_client: %s\n", message.c_str());
  std::exit(code);
}

void Note(const std::string& message) {
  if (verbose) std::fprintf(stderr, "* %s\n", message.c_str());
}

// The one place errno becomes text. EAGAIN from a socket with SO_RCVTIMEO/SO_SNDTIMEO set is
// the timeout, not "try again".
std::string ErrnoText(int err) {
  if (err == EAGAIN || err == EWOULDBLOCK || err == EINPROGRESS) {
    return "timed out after " + std::to_string(kSocketTimeoutSeconds) + " s";
  }
  return std::strerror(err);
}

// What an OpenSSL call that returned `ret` on `ssl` means, with OpenSSL's error queue (which it
// empties). The one place OpenSSL's errors become text.
std::string TlsErrorText(SSL* ssl, int ret) {
  const int saved_errno = errno;
  std::string text;
  switch (ssl != nullptr ? SSL_get_error(ssl, ret) : SSL_ERROR_SSL) {
    case SSL_ERROR_ZERO_RETURN:
      text = "the peer sent TLS close_notify";
      break;
    case SSL_ERROR_SYSCALL:
      text = saved_errno == 0 ? "the peer closed the connection without TLS close_notify"
                              : ErrnoText(saved_errno);
      break;
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      text = ErrnoText(EAGAIN);  // blocking sockets: only a timeout gets here
      break;
    default:
      text = "TLS error";
      break;
  }
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    text += "; ";
    text += buf;
  }
  if (ssl != nullptr && SSL_get_verify_result(ssl) != X509_V_OK) {
    text += "; certificate: ";
    text += X509_verify_cert_error_string(SSL_get_verify_result(ssl));
  }
  return text;
}

// True when the last OpenSSL failure was the peer closing TCP without close_notify (OpenSSL 3
// reports that as an SSL error unless SSL_OP_IGNORE_UNEXPECTED_EOF is set, which it is not here:
// a cut-off transfer must not pass for a complete one).
bool IsUnexpectedEof(SSL* ssl, int ret) {
  const int err = SSL_get_error(ssl, ret);
  if (err == SSL_ERROR_SYSCALL && errno == 0 && ERR_peek_error() == 0) return true;
  return err == SSL_ERROR_SSL &&
         ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

void SetTimeouts(int fd) {
  timeval tv{kSocketTimeoutSeconds, 0};
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    Die(kExitFailure, "setsockopt: " + ErrnoText(errno));
  }
}

// Connects to `addr`; Linux bounds connect() by SO_SNDTIMEO, so it times out like the rest.
int ConnectTo(const sockaddr* addr, socklen_t len, const std::string& what) {
  int fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die(kExitFailure, "socket: " + ErrnoText(errno));
  SetTimeouts(fd);
  if (::connect(fd, addr, len) != 0) {
    Die(kExitFailure, "cannot connect to " + what + ": " + ErrnoText(errno));
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // commands are small
  return fd;
}

// One TCP connection, with TLS on top once StartTls() has run. Blocking.
class Conn {
 public:
  Conn(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}
  ~Conn() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  int fd() const { return fd_; }
  SSL* ssl() const { return ssl_; }
  bool peer_closed_cleanly() const { return peer_close_notify_; }

  // The client side of a TLS handshake. `sni` is empty for an IP address (RFC 6066 3: literal
  // addresses are not sent); `resume`, when not null, is offered for session resumption.
  void StartTls(SSL_CTX* ctx, const std::string& sni, SSL_SESSION* resume) {
    ssl_ = SSL_new(ctx);
    if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) {
      Die(kExitFailure, what_ + ": TLS setup: " + TlsErrorText(nullptr, 0));
    }
    if (!sni.empty()) SSL_set_tlsext_host_name(ssl_, sni.c_str());
    if (resume != nullptr && SSL_set_session(ssl_, resume) != 1) {
      Die(kExitFailure, what_ + ": cannot offer the session: " + TlsErrorText(nullptr, 0));
    }
    ERR_clear_error();
    errno = 0;
    const int ret = SSL_connect(ssl_);
    if (ret != 1) Die(kExitFailure, what_ + ": TLS handshake failed: " + TlsErrorText(ssl_, ret));
    Note(what_ + ": " + SSL_get_version(ssl_) + " " + SSL_get_cipher_name(ssl_) +
         (SSL_session_reused(ssl_) ? ", session resumed" : ", full handshake (new session)"));
  }

  // Up to `n` bytes into *got, 0 at the end of the stream (then peer_closed_cleanly() tells
  // whether it was a TLS close_notify, or the peer closed TCP without one). False, with the
  // reason in *error, when the read failed.
  bool ReadSome(char* buf, size_t n, size_t* got, std::string* error) {
    *got = 0;
    if (ssl_ == nullptr) {
      ssize_t r = ::recv(fd_, buf, n, 0);
      if (r < 0) {
        *error = what_ + ": read: " + ErrnoText(errno);
        return false;
      }
      *got = static_cast<size_t>(r);
      return true;
    }
    ERR_clear_error();
    errno = 0;
    const int ret = SSL_read(ssl_, buf, static_cast<int>(n));
    if (ret > 0) {
      *got = static_cast<size_t>(ret);
      return true;
    }
    if (SSL_get_error(ssl_, ret) == SSL_ERROR_ZERO_RETURN) {
      peer_close_notify_ = true;
      return true;
    }
    if (IsUnexpectedEof(ssl_, ret)) {
      ERR_clear_error();
      return true;
    }
    *error = what_ + ": TLS read: " + TlsErrorText(ssl_, ret);
    return false;
  }

  // ReadSome, or the end of the run.
  size_t Read(char* buf, size_t n) {
    size_t got = 0;
    std::string error;
    if (!ReadSome(buf, n, &got, &error)) Die(kExitFailure, error);
    return got;
  }

  // All `n` bytes, or false with the reason in *error.
  bool WriteAll(const char* data, size_t n, std::string* error) {
    while (n > 0) {
      size_t done = 0;
      if (ssl_ == nullptr) {
        ssize_t sent = ::send(fd_, data, n, MSG_NOSIGNAL);
        if (sent < 0) {
          *error = what_ + ": write: " + ErrnoText(errno);
          return false;
        }
        done = static_cast<size_t>(sent);
      } else {
        ERR_clear_error();
        errno = 0;
        const int ret = SSL_write(ssl_, data, static_cast<int>(n));
        if (ret <= 0) {
          *error = what_ + ": TLS write: " + TlsErrorText(ssl_, ret);
          return false;
        }
        done = static_cast<size_t>(ret);
      }
      data += done;
      n -= done;
    }
    return true;
  }

  // WriteAll, or the end of the run.
  void WriteAll(const char* data, size_t n) {
    std::string error;
    if (!WriteAll(data, n, &error)) Die(kExitFailure, error);
  }

  bool TryWriteAll(const char* data, size_t n) {
    std::string error;
    return WriteAll(data, n, &error);
  }

  // Sends TLS close_notify (SSL_shutdown). Returns false with the reason in *why when it could
  // not be sent.
  bool SendCloseNotify(std::string* why) {
    ERR_clear_error();
    errno = 0;
    const int ret = SSL_shutdown(ssl_);
    if (ret >= 0) return true;  // 0: ours is sent, the peer's not seen yet; 1: both done
    *why = TlsErrorText(ssl_, ret);
    return false;
  }

  // Half-closes TCP (FIN): the peer reads end-of-stream.
  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

  // Reads and drops everything up to the end of the stream, so that close() sends FIN and not
  // RST (unread bytes, such as a TLS 1.3 session ticket, make the kernel reset the connection).
  // Returns false, with the reason in *error, when the stream ended in an error (a reset).
  bool Drain(std::string* error) {
    char buf[4096];
    if (ssl_ != nullptr && (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) != 0) {
      for (size_t got = 1; got > 0;) {
        if (!ReadSome(buf, sizeof buf, &got, error)) return false;
      }
      return true;
    }
    // Raw reads: plain FTP, or TLS being abandoned on purpose (--no-close-notify).
    for (;;) {
      ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
      if (r == 0) return true;
      if (r < 0) {
        *error = what_ + ": read: " + ErrnoText(errno);
        return false;
      }
    }
  }

 private:
  int fd_;
  std::string what_;
  SSL* ssl_ = nullptr;
  bool peer_close_notify_ = false;
};

struct Reply {
  int code = 0;
  std::string text;  // every line, CRLF removed, joined with '\n'
  bool Positive() const { return code >= 100 && code < 400; }
};

struct Options {
  bool plain = false;
  bool epsv = false;
  bool prot_p = false;
  bool reuse_session = false;
  bool close_notify = true;
  std::string cafile;
  std::string user = "PlcmSpIp";  // a Poly phone's factory default (PHONES.md)
  std::string password = "PlcmSpIp";
  std::string host;
  std::string port;
  std::string command;
  std::vector<std::string> args;
};

// The control connection: commands out, replies in (RFC 959 4.2).
class Control {
 public:
  explicit Control(Conn* conn) : conn_(conn) {}

  void Send(const std::string& command) {
    // Passwords never reach a log, ours included.
    if (verbose) {
      std::fprintf(stderr, "> %s\n",
                   command.rfind("PASS ", 0) == 0 ? "PASS ****" : command.c_str());
    }
    std::string line = command + "\r\n";
    conn_->WriteAll(line.data(), line.size());
  }

  // A whole reply: "ddd text", or "ddd-text" ... up to the line that starts with "ddd ".
  Reply Read() {
    Reply r;
    std::string line = ReadLine();
    if (line.size() < 3 || !IsCode(line) || (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
      Die(kExitFailure, "malformed reply from the server: \"" + line + "\"");
    }
    r.code = std::stoi(line.substr(0, 3));
    r.text = line;
    if (line.size() > 3 && line[3] == '-') {
      const std::string end = line.substr(0, 3) + " ";
      for (size_t lines = 1;; ++lines) {
        if (lines >= kMaxReplyLines) {
          Die(kExitFailure, "a reply of more than " + std::to_string(kMaxReplyLines) + " lines");
        }
        line = ReadLine();
        r.text += "\n" + line;
        if (line.rfind(end, 0) == 0 || line == end.substr(0, 3)) break;
      }
    }
    return r;
  }

  Reply Command(const std::string& command) {
    Send(command);
    return Read();
  }

  // Ends the session politely: QUIT, then whatever the server says until it closes. Errors are
  // ignored: by now the outcome of the run is known.
  void Quit() {
    if (verbose) std::fprintf(stderr, "> QUIT\n");
    static constexpr char kQuit[] = "QUIT\r\n";
    if (!conn_->TryWriteAll(kQuit, sizeof kQuit - 1)) return;
    std::string error;
    char buf[kMaxReplyLineBytes];
    for (size_t got = 1; got > 0 && buffer_.size() < kMaxReplyLineBytes;) {
      if (!conn_->ReadSome(buf, sizeof buf, &got, &error)) break;
      buffer_.append(buf, got);
    }
    if (verbose) {
      for (size_t eol; (eol = buffer_.find('\n')) != std::string::npos; buffer_.erase(0, eol + 1)) {
        std::string line = buffer_.substr(0, eol);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        std::fprintf(stderr, "< %s\n", line.c_str());
      }
    }
  }

 private:
  static bool IsCode(const std::string& line) {
    return line[0] >= '1' && line[0] <= '5' && line[1] >= '0' && line[1] <= '9' && line[2] >= '0' &&
           line[2] <= '9';
  }

  std::string ReadLine() {
    for (;;) {
      size_t eol = buffer_.find('\n');
      if (eol != std::string::npos) {
        std::string line = buffer_.substr(0, eol);
        buffer_.erase(0, eol + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (verbose) std::fprintf(stderr, "< %s\n", line.c_str());
        return line;
      }
      if (buffer_.size() >= kMaxReplyLineBytes) {
        Die(kExitFailure,
            "a reply line longer than " + std::to_string(kMaxReplyLineBytes) + " bytes");
      }
      char buf[kMaxReplyLineBytes];
      size_t n = conn_->Read(buf, kMaxReplyLineBytes - buffer_.size());
      if (n == 0) Die(kExitFailure, "the server closed the control connection");
      buffer_.append(buf, n);
    }
  }

  Conn* conn_;
  std::string buffer_;
};

// An error reply to `what` ends the run with exit 1, printing the reply.
void Expect(const Reply& r, const std::string& what, std::initializer_list<int> codes) {
  for (int c : codes) {
    if (r.code == c) return;
  }
  Die(kExitFtpError, what + ": " + r.text);
}

// The data port from "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)" (RFC 959) or "229 Entering
// Extended Passive Mode (|||port|)" (RFC 2428). Returns 0 when the reply has none.
uint16_t ParsePassivePort(const Reply& r, bool epsv, std::string* advertised) {
  const std::string& t = r.text;
  if (epsv) {
    size_t open = t.find('(');
    if (open == std::string::npos || open + 4 >= t.size()) return 0;
    const char d = t[open + 1];
    if (t[open + 2] != d || t[open + 3] != d) return 0;
    size_t end = t.find(d, open + 4);
    if (end == std::string::npos || end == open + 4 || end - open - 4 > 5) return 0;
    unsigned long port = std::strtoul(t.substr(open + 4, end - open - 4).c_str(), nullptr, 10);
    return port > 0 && port <= 65535 ? static_cast<uint16_t>(port) : 0;
  }
  // Six numbers separated by commas, wherever they start (some servers drop the parentheses).
  size_t start = t.find_first_of("0123456789", 4);
  if (start == std::string::npos) return 0;
  unsigned long n[6];
  const char* p = t.c_str() + start;
  for (int i = 0; i < 6; ++i) {
    char* end = nullptr;
    n[i] = std::strtoul(p, &end, 10);
    if (end == p || n[i] > 255 || (i < 5 && *end != ',')) return 0;
    p = end + (i < 5 ? 1 : 0);
  }
  *advertised = std::to_string(n[0]) + "." + std::to_string(n[1]) + "." + std::to_string(n[2]) +
                "." + std::to_string(n[3]);
  unsigned long port = n[4] * 256 + n[5];
  return port > 0 ? static_cast<uint16_t>(port) : 0;
}

bool IsIpAddress(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

SSL_CTX* MakeTlsContext(const Options& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) Die(kExitFailure, "SSL_CTX_new: " + TlsErrorText(nullptr, 0));
  // Sessions are offered for reuse only where --reuse-session asks (SSL_set_session); this
  // keeps OpenSSL's own client cache out of it too.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (o.cafile.empty()) {
    // A phone with no CA pushed to it still connects to a relay's self-signed certificate in
    // the lab, and the tests use throwaway certificates: no verification unless --cafile.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return ctx;
  }
  if (SSL_CTX_load_verify_locations(ctx, o.cafile.c_str(), nullptr) != 1) {
    Die(kExitFailure, "cannot load --cafile " + o.cafile + ": " + TlsErrorText(nullptr, 0));
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
  const int ok = IsIpAddress(o.host) ? X509_VERIFY_PARAM_set1_ip_asc(param, o.host.c_str())
                                     : X509_VERIFY_PARAM_set1_host(param, o.host.c_str(), 0);
  if (ok != 1) Die(kExitFailure, "cannot check the certificate against " + o.host);
  return ctx;
}

void Usage(FILE* out) {
  std::fprintf(out, R"(usage: poly_ftps_client [options] [--] HOST PORT COMMAND [ARGS]

Connects like a Poly phone on implicit FTPS: TLS at once, USER/PASS, TYPE I, PASV, TLS on the
data connection with a new session, and never PBSZ or PROT. Then runs one command:
  get REMOTE LOCAL       RETR REMOTE into LOCAL ("-": standard output)
  put LOCAL REMOTE       STOR LOCAL as REMOTE
  append LOCAL REMOTE    APPE LOCAL to REMOTE
  size REMOTE            SIZE REMOTE; prints the size
  list [DIR]             LIST [DIR]; prints the listing

options:
  --user NAME            login name (default PlcmSpIp, the phones' factory default)
  --password PASS        password (default PlcmSpIp)
  --epsv                 EPSV instead of PASV
  --prot-p               send "PBSZ 0" and "PROT P" after login, as most other clients do
  --reuse-session        offer the control connection's TLS session on the data connection
                         (as curl does); default: a new session, as the phones
  --no-close-notify      end an upload by closing TCP without TLS close_notify (a server
                         must fail such an upload)
  --cafile FILE          verify the server's certificate and name against FILE (default: no
                         verification)
  --plain                no TLS at all (plain FTP)
  --verbose              the dialogue and TLS details on standard error
  --help                 this text

Every socket read and write times out after %d s. Exit: 0 success (226 after a transfer),
1 an FTP error reply (printed), 2 usage, connection, TLS or local file errors.
)",
               kSocketTimeoutSeconds);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  std::vector<std::string> positional;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](const char* name) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "poly_ftps_client: %s needs a value\n", name);
        Usage(stderr);
        std::exit(kExitFailure);
      }
      return std::string(argv[++i]);
    };
    if (options_done || a.size() < 2 || a[0] != '-') {
      positional.emplace_back(a);
    } else if (a == "--") {
      options_done = true;
    } else if (a == "--plain") {
      o.plain = true;
    } else if (a == "--epsv") {
      o.epsv = true;
    } else if (a == "--prot-p") {
      o.prot_p = true;
    } else if (a == "--reuse-session") {
      o.reuse_session = true;
    } else if (a == "--no-close-notify") {
      o.close_notify = false;
    } else if (a == "--verbose" || a == "-v") {
      verbose = true;
    } else if (a == "--cafile") {
      o.cafile = value("--cafile");
    } else if (a == "--user") {
      o.user = value("--user");
    } else if (a == "--password") {
      o.password = value("--password");
    } else if (a == "--help" || a == "-h") {
      Usage(stdout);
      std::exit(kExitOk);
    } else {
      std::fprintf(stderr, "poly_ftps_client: unknown option %s\n", argv[i]);
      Usage(stderr);
      std::exit(kExitFailure);
    }
  }
  if (positional.size() < 3) {
    Usage(stderr);
    std::exit(kExitFailure);
  }
  o.host = positional[0];
  o.port = positional[1];
  o.command = positional[2];
  o.args.assign(positional.begin() + 3, positional.end());
  size_t want_min = 0, want_max = 0;
  if (o.command == "get" || o.command == "put" || o.command == "append") {
    want_min = want_max = 2;
  } else if (o.command == "size") {
    want_min = want_max = 1;
  } else if (o.command == "list") {
    want_max = 1;
  } else {
    std::fprintf(stderr, "poly_ftps_client: unknown command '%s'\n", o.command.c_str());
    Usage(stderr);
    std::exit(kExitFailure);
  }
  if (o.args.size() < want_min || o.args.size() > want_max) {
    std::fprintf(stderr, "poly_ftps_client: wrong number of arguments for '%s'\n",
                 o.command.c_str());
    Usage(stderr);
    std::exit(kExitFailure);
  }
  if (o.plain && (o.prot_p || o.reuse_session || !o.cafile.empty())) {
    Die(kExitFailure, "--plain has no TLS: --prot-p, --reuse-session and --cafile do not apply");
  }
  return o;
}

// The control connection to HOST:PORT, the first address that answers.
int ConnectControl(const Options& o) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  int rc = ::getaddrinfo(o.host.c_str(), o.port.c_str(), &hints, &list);
  if (rc != 0) Die(kExitFailure, o.host + " port " + o.port + ": " + gai_strerror(rc));
  int fd = -1;
  std::string last_error;
  for (addrinfo* a = list; a != nullptr && fd < 0; a = a->ai_next) {
    int s = ::socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) continue;
    SetTimeouts(s);
    if (::connect(s, a->ai_addr, a->ai_addrlen) == 0) {
      fd = s;
    } else {
      last_error = ErrnoText(errno);
      ::close(s);
    }
  }
  ::freeaddrinfo(list);
  if (fd < 0) {
    Die(kExitFailure, "cannot connect to " + o.host + " port " + o.port + ": " + last_error);
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Opens the passive data connection: to the control connection's peer address and the port the
// server named. The address in a 227 reply is ignored, as curl does by default
// (CURLOPT_FTP_SKIP_PASV_IP): behind NAT it is often wrong, and the contract forbids data
// connections to another address anyway.
int OpenDataConnection(Control* control, const Conn& ctrl, const Options& o) {
  Reply r = control->Command(o.epsv ? "EPSV" : "PASV");
  Expect(r, o.epsv ? "EPSV" : "PASV", {o.epsv ? 229 : 227});
  std::string advertised;
  uint16_t port = ParsePassivePort(r, o.epsv, &advertised);
  if (port == 0) Die(kExitFailure, "no port in this reply: " + r.text);
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  if (::getpeername(ctrl.fd(), reinterpret_cast<sockaddr*>(&peer), &len) != 0) {
    Die(kExitFailure, "getpeername: " + ErrnoText(errno));
  }
  char ip[INET6_ADDRSTRLEN] = "?";
  if (peer.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&peer);
    a->sin_port = htons(port);
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&peer);
    a->sin6_port = htons(port);
    inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
  }
  if (!advertised.empty() && advertised != ip) {
    Note("the server advertised " + advertised + "; connecting to the control peer " + ip);
  }
  return ConnectTo(reinterpret_cast<sockaddr*>(&peer), len,
                   "the data port " + std::string(ip) + ":" + std::to_string(port));
}

struct Transfer {
  uint64_t bytes = 0;
  double seconds = 0;
};

// Receives the data connection's bytes into `out`. Over TLS the server must end with
// close_notify: without it a cut-off download would pass for a complete one.
Transfer Receive(Conn* data, FILE* out, const std::string& what) {
  Transfer t;
  const auto start = std::chrono::steady_clock::now();
  std::vector<char> buf(kChunkBytes);
  for (size_t n; (n = data->Read(buf.data(), buf.size())) > 0;) {
    if (std::fwrite(buf.data(), 1, n, out) != n) {
      Die(kExitFailure, what + ": write: " + ErrnoText(errno));
    }
    t.bytes += n;
  }
  t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (data->ssl() != nullptr) {
    if (!data->peer_closed_cleanly()) {
      Die(kExitFailure, what + ": after " + std::to_string(t.bytes) +
                            " bytes the server closed the data connection without TLS "
                            "close_notify (a cut-off transfer cannot be told from a whole one)");
    }
    std::string why;
    // Answer the server's close_notify with ours (a clean bidirectional shutdown); the server
    // may already have closed TCP, so a failure here says nothing about the transfer.
    if (!data->SendCloseNotify(&why)) Note("our close_notify after the download: " + why);
  }
  return t;
}

// Sends `in` on the data connection and ends the upload: TLS close_notify and then FIN, or with
// --no-close-notify FIN alone. Then waits for the server to close its side, so that no unread
// byte turns our close into a reset.
Transfer Send(Conn* data, FILE* in, const Options& o, const std::string& what) {
  Transfer t;
  const auto start = std::chrono::steady_clock::now();
  std::vector<char> buf(kChunkBytes);
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), in)) > 0;) {
    data->WriteAll(buf.data(), n);
    t.bytes += n;
  }
  if (std::ferror(in)) Die(kExitFailure, what + ": read: " + ErrnoText(errno));
  if (data->ssl() != nullptr && o.close_notify) {
    std::string why;
    if (!data->SendCloseNotify(&why)) Die(kExitFailure, what + ": sending close_notify: " + why);
    Note("sent TLS close_notify");
  } else if (data->ssl() != nullptr) {
    Note("--no-close-notify: closing TCP without TLS close_notify");
  }
  data->ShutdownWrite();
  std::string error;
  if (!data->Drain(&error)) Note("after the upload: " + error);
  if (data->ssl() != nullptr && o.close_notify) {
    Note(data->peer_closed_cleanly() ? "the server answered with close_notify"
                                     : "the server closed TCP without answering close_notify");
  }
  t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return t;
}

int Run(const Options& o) {
  // What the data connection carries and the command that starts it; a file to upload is
  // opened first, so that a missing one fails before any connection.
  std::string verb, remote, local;
  bool upload = false;
  if (o.command == "get") {
    verb = "RETR";
    remote = o.args[0];
    local = o.args[1];
  } else if (o.command == "put" || o.command == "append") {
    verb = o.command == "put" ? "STOR" : "APPE";
    local = o.args[0];
    remote = o.args[1];
    upload = true;
  } else if (o.command == "list") {
    verb = "LIST";
    remote = o.args.empty() ? "" : o.args[0];
    local = "-";
  }
  FILE* file = nullptr;
  if (upload) {
    file = local == "-" ? stdin : std::fopen(local.c_str(), "rb");
    if (file == nullptr) Die(kExitFailure, "cannot open " + local + ": " + ErrnoText(errno));
  }

  SSL_CTX* ctx = o.plain ? nullptr : MakeTlsContext(o);
  const std::string sni = IsIpAddress(o.host) ? "" : o.host;

  Conn ctrl(ConnectControl(o), "control connection");
  if (!o.plain) ctrl.StartTls(ctx, sni, nullptr);  // implicit FTPS: TLS before the greeting
  Control control(&ctrl);

  Reply r = control.Read();
  while (r.code == 120) r = control.Read();  // "service ready in nnn minutes"
  Expect(r, "greeting", {220});
  r = control.Command("USER " + o.user);
  if (r.code == 331) r = control.Command("PASS " + o.password);
  Expect(r, "login", {230, 202});
  if (o.prot_p) {
    Expect(control.Command("PBSZ 0"), "PBSZ 0", {200});
    Expect(control.Command("PROT P"), "PROT P", {200});
  }
  Expect(control.Command(o.command == "list" ? "TYPE A" : "TYPE I"), "TYPE", {200});

  if (o.command == "size") {
    r = control.Command("SIZE " + o.args[0]);
    Expect(r, "SIZE " + o.args[0], {213});
    std::printf("%s\n", r.text.size() > 4 ? r.text.substr(4).c_str() : "");
    control.Quit();
    return kExitOk;
  }

  Conn data(OpenDataConnection(&control, ctrl, o), "data connection");
  const std::string what = verb + (remote.empty() ? "" : " " + remote);
  r = control.Command(what);
  Expect(r, what, {125, 150});
  if (!o.plain) {
    // A new session unless --reuse-session: phones do not resume the control connection's
    // session here, and a server that requires it breaks them (PHONES.md); curl does resume,
    // and some servers need it (vsftpd's require_ssl_reuse, on by default).
    SSL_SESSION* resume = nullptr;
    if (o.reuse_session) {
      resume = SSL_get1_session(ctrl.ssl());
      if (resume == nullptr || SSL_SESSION_is_resumable(resume) != 1) {
        Note("the control connection's session is not resumable; offering it anyway");
      }
    }
    data.StartTls(ctx, sni, resume);
    if (resume != nullptr) SSL_SESSION_free(resume);
  }

  Transfer t;
  if (upload) {
    t = Send(&data, file, o, what);
    if (file != stdin) std::fclose(file);
  } else {
    if (local != "-") {
      file = std::fopen(local.c_str(), "wb");
      if (file == nullptr) Die(kExitFailure, "cannot create " + local + ": " + ErrnoText(errno));
    }
    t = Receive(&data, local == "-" ? stdout : file, what);
    if (file != nullptr && std::fclose(file) != 0) {
      Die(kExitFailure, "cannot write " + local + ": " + ErrnoText(errno));
    }
  }
  r = control.Read();
  Expect(r, what + " (after " + std::to_string(t.bytes) + " bytes)", {226, 250});
  if (verbose) {
    std::fprintf(stderr, "* %s: %llu bytes in %.3f s (%.1f MB/s)\n", what.c_str(),
                 static_cast<unsigned long long>(t.bytes), t.seconds,
                 t.seconds > 0 ? static_cast<double>(t.bytes) / t.seconds / 1e6 : 0.0);
  }
  control.Quit();
  if (ctx != nullptr) SSL_CTX_free(ctx);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a peer that closes early is an error message, not a signal
  Options o = ParseArgs(argc, argv);
  return Run(o);
}
