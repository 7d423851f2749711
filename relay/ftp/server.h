// FtpServer: phones over FTP and FTPS (RFC 959, 2228, 2389, 2428, 3659, 4217) on the libuv loop.
//
// Every Poly phone out of the box looks for an FTP server with user and password PlcmSpIp, and
// older deployments run on implicit FTPS (port 990). One server holds both kinds of listener:
// `listen` (plain, AUTH TLS offered) and `implicit_tls_listen` (TLS from the first byte, and
// data connections protected even without PROT P, as phones expect: PHONES.md).
//
// A Session (relay/ftp/session.h) is one control connection; it parses command lines with the
// pure functions of command.h and asks FileService for everything: accounts, paths, reads
// (which pull through the cache like every other protocol) and uploads (phone upload names only,
// through the same Uploads as HTTP PUT and TFTP WRQ). Control and data connections move bytes
// through net::StreamSocket, the code HTTPS uses, so FTPS transfers run at HTTPS speed.
//
// This class owns the listeners, the sessions, the passive port range and the per-peer login
// backoff. Thread safety: everything runs on the loop thread.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "relay/base/config.h"
#include "relay/base/fs.h"
#include "relay/base/status.h"
#include "relay/files/file_service.h"
#include "relay/files/uploads.h"
#include "relay/net/stream_socket.h"
#include "relay/tls/handshake_slots.h"
#include "relay/tls/tls.h"

namespace siterelay::ftp {

struct FtpLimits {
  int64_t login_timeout_ms = 30'000;   // connect to a successful PASS
  int64_t idle_timeout_ms = 300'000;   // logged in, no command and no transfer (vsftpd: 300 s)
  int64_t data_timeout_ms = 60'000;    // a data connection that makes no progress
  int64_t accept_timeout_ms = 30'000;  // PASV/EPSV: the client's data connection to arrive
  size_t max_sessions = 1024;
  // CONTRACT.md: at least 256 concurrent connections from one address (phones behind NAT).
  size_t max_sessions_per_peer = 256;
  // TLS handshakes of control connections (implicit FTPS, AUTH TLS) at once, in all and from one
  // address (tls::HandshakeSlots): a session past either waits for a slot, unread, its login
  // timeout running.
  size_t max_handshakes = 256;
  size_t max_handshakes_per_peer = 64;
  uint16_t passive_port_min = 50000;  // [ftp] passive_ports
  uint16_t passive_port_max = 50100;
  uint64_t max_upload_bytes = 16ull << 20;  // uploads.max_bytes
  int max_login_failures = 3;               // per session, then the session is closed
  // Per-peer backoff: the n-th failed login in a row from one address waits
  // min(login_delay_ms * 2^(n-1), max_login_delay_ms) before its 530, and until that 530 is out
  // no other password from that address is checked, in any session: parallel sessions guess no
  // faster than one. (A phone behind the same NAT as a guesser waits its turn as well, within
  // login_timeout_ms.)
  int64_t login_delay_ms = 500;
  int64_t max_login_delay_ms = 8'000;
};

class Session;

class FtpServer {
 public:
  // `uploads` may be null: every STOR/APPE is refused.
  FtpServer(uv_loop_t* loop, files::FileService* files, files::Uploads* uploads, FtpLimits limits);
  ~FtpServer();
  FtpServer(const FtpServer&) = delete;
  FtpServer& operator=(const FtpServer&) = delete;

  // The certificate for AUTH TLS and implicit TLS; without one AUTH TLS is refused and implicit
  // listeners cannot be opened. New sessions get the new one (SIGHUP).
  void SetTls(std::shared_ptr<tls::TlsContext> ctx) { tls_ = std::move(ctx); }

  // Makes the listeners exactly these (as HttpServer::Listen): on error nothing changes.
  Status Listen(const std::vector<ListenAddress>& plain,
                const std::vector<ListenAddress>& implicit_tls);
  const std::vector<ListenAddress>& bound() const { return bound_plain_; }
  const std::vector<ListenAddress>& bound_implicit() const { return bound_implicit_; }

  void StopAccepting();  // sessions carry on
  void CloseAll();
  size_t sessions() const { return sessions_.size(); }
  // Transfers (RETR, STOR, APPE, LIST...) ended, by reply code (/metrics).
  const std::map<int, uint64_t>& replies() const { return replies_; }
  void OnDrained(std::function<void()> cb) { on_drained_ = std::move(cb); }

 private:
  friend class Session;
  Result<std::unique_ptr<net::TcpListener>> Bind(const ListenAddress& a, bool implicit_tls);
  void Accept(net::TcpListener* l, bool implicit_tls);
  void Closed(Session* s);
  void CheckDrained();

  // A listening socket for a passive data connection on `local` (the control connection's own
  // address), on a port of the passive range: the next free one after the last handed out. When
  // every port is taken, an address holding at least two more unused ones than `peer_ip` gives
  // up its oldest (max-min fairness: a client that opens PASV after PASV without connecting
  // cannot lock a new address out, nor take a port back from it).
  Result<ScopedFd> OpenPassive(const sockaddr_storage& local, const std::string& peer_ip,
                               uint16_t* port);
  Result<ScopedFd> BindPassive(const sockaddr_storage& local, uint16_t* port);
  // The session whose unused passive port goes to `peer_ip`, or nullptr.
  Session* PassiveDonor(const std::string& peer_ip) const;

  // Login backoff. LoginWaitMs: how long a PASS from this address must wait before it is checked
  // (0: now). LoginFailed: records a failure of `user` and returns how long its 530 waits.
  // LoginSucceeded: takes back only the failures of `user` from this address, so a guesser
  // cannot reset its backoff by logging in between guesses with an account it knows (every
  // phone knows PlcmSpIp), while a phone that mistyped and then got in starts clean.
  int64_t LoginWaitMs(const std::string& ip) const;
  int64_t LoginFailed(const std::string& ip, const std::string& user);
  void LoginSucceeded(const std::string& ip, const std::string& user);

  uv_loop_t* loop_;
  files::FileService* files_;
  files::Uploads* uploads_;
  FtpLimits limits_;
  std::shared_ptr<tls::TlsContext> tls_;
  tls::HandshakeSlots handshakes_;
  std::vector<std::unique_ptr<net::TcpListener>> plain_, implicit_;
  std::vector<ListenAddress> bound_plain_, bound_implicit_;
  std::vector<ListenAddress> configured_plain_;  // the last plain list that was applied
  std::map<Session*, std::unique_ptr<Session>> sessions_;
  std::map<std::string, size_t> per_peer_;
  std::map<int, uint64_t> replies_;
  struct Failures {
    int count = 0;                        // of the address, the sum of by_user
    std::map<std::string, int> by_user;   // bounded: a session ends after a few failures
    uint64_t last_ms = 0;        // uv_now of the last failure
    uint64_t not_before_ms = 0;  // uv_now before which no password from the address is checked
  };
  std::map<std::string, Failures> failures_;
  uint16_t next_passive_ = 0;
  uint64_t passive_opened_ = 0;  // passive listeners opened so far: their order, oldest first
  bool accepting_ = true;
  std::function<void()> on_drained_;
};

}  // namespace siterelay::ftp
