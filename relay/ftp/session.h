// Session: one FTP control connection and its data connections (relay/ftp/server.h). Internal
// to relay/ftp.
//
// The control connection reads command lines (TakeLine/ParseCommand), answers each with the
// codes of RFC 959/2228/2389/2428/3659/4217, and runs one command at a time: while a transfer or
// an answer from FileService is pending, further lines wait in the input buffer, except ABOR
// and QUIT, which act at once.
//
// A DataChannel is one data connection: passive (a listener on a port of the passive range that
// accepts only the control peer's address) or active (PORT/EPRT, only to the control peer's
// address). It sends a file (sendfile or TLS, following a file that still grows from the origin),
// sends a listing, or receives an upload into an UploadSink. Under TLS an upload must end with
// the client's close_notify, or it fails (RFC 4217 section 9: a bare close may be a truncation).
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "relay/base/status.h"
#include "relay/files/file_service.h"
#include "relay/files/uploads.h"
#include "relay/ftp/server.h"
#include "relay/net/stream_socket.h"

namespace siterelay::ftp {

class DataChannel;
struct Command;

class Session {
 public:
  // `remote` and `local`: the control connection's two ends.
  Session(FtpServer* server, int fd, files::Peer peer, bool implicit_tls,
          const sockaddr_storage& remote, const sockaddr_storage& local);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Status Start();
  // Begins closing; the server frees the session once its handles are closed.
  void Close();
  // No transfer or answer pending: safe to close when the relay stops.
  bool idle() const;
  const files::Peer& peer() const { return peer_; }
  // A passive port this session opened and has not used yet (no transfer command, no
  // connection), and its place in the order passive ports were opened (a count: two opened in
  // one millisecond still have an order). FtpServer hands such ports to other addresses when the
  // passive range is full.
  bool HoldsIdlePassive(uint64_t* order = nullptr) const;
  // Closes that passive listener at once; its port is free when this returns.
  void GiveUpPassive();

 private:
  friend class DataChannel;

  // ---- the control connection ----
  void UpdatePoll();
  void ArmTimer();
  void OnReadable();
  void OnWritable();
  void ProcessLines();
  void Reply(int code, std::string_view text);
  void ReplyLines(int code, const std::vector<std::string>& lines);
  void FlushOut();
  // Replies the client has not read have reached kMaxPendingReplyBytes: no command runs and no
  // input is read until it takes them.
  bool Backlogged() const;
  void Execute(const Command& c);

  // ---- commands ----
  void DoUser(const std::string& arg);
  void DoPass(const std::string& arg);
  // PASS arrived while this address's backoff runs: it is checked after `wait_ms`.
  void HoldPass(const std::string& password, int64_t wait_ms);
  void DoAuth(const std::string& arg);
  void DoPbsz(const std::string& arg);
  void DoProt(const std::string& arg);
  void DoCwd(const std::string& arg);
  void DoPasv(bool extended, const std::string& arg);
  void DoPort(bool extended, const std::string& arg);
  void DoSize(const std::string& arg, bool mdtm);
  void DoRetr(const std::string& arg);
  void DoStore(const std::string& arg, bool append);
  void DoList(const std::string& verb, const std::string& arg);
  void DoMlst(const std::string& arg);
  void DoAbor();

  // The catalog path for an FTP path argument (relative to the working directory); on failure
  // the 550 has been sent.
  bool ResolveArg(const std::string& arg, std::string* ftp_path, std::string* catalog_path);
  // The data connection for the next transfer, or nullptr after a 425.
  DataChannel* TakeData();
  bool DataProtected() const { return prot_p_ || (implicit_tls_ && !prot_c_); }
  // The certificate for the data connection, nullptr when it goes in the clear.
  const tls::TlsContext* DataTls() const;
  // A transfer or a pending answer ended: log it and carry on with waiting lines.
  void TransferEnded(const std::string& verb, const std::string& path, int code,
                     std::string_view text, uint64_t bytes);
  // A transfer failed: 425 when its data connection never came, 552 for an upload past
  // uploads.max_bytes, 452 for a full disk, 426 for a connection lost on the way, 451 for a
  // local failure.
  void DataFailed(const std::string& verb, const std::string& path, const Status& s,
                  uint64_t bytes, bool opened);
  void Resume();
  void CloseData();
  // The control connection's TLS handshake in one of the server's slots (tls::HandshakeSlots):
  // `begin` runs when it has one, now or later; until then the socket is not read.
  void WithHandshakeSlot(void (Session::*begin)());
  void BeginImplicitTls();
  void BeginAuthTls();

  FtpServer* server_;
  net::StreamSocket sock_;
  files::Peer peer_;
  bool implicit_tls_;
  sockaddr_storage remote_;  // the control peer: the only address data connections may use
  sockaddr_storage local_;  // the control connection's own address: passive listeners bind it
  uv_poll_t poll_{};
  int poll_events_ = -1;
  uv_timer_t timer_{};  // login and idle timeouts, the login backoff delay
  int open_handles_ = 0;
  bool closing_ = false;
  bool close_after_reply_ = false;  // QUIT, 421: close once the reply is out
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::string in_;
  std::string out_;
  size_t out_off_ = 0;
  bool busy_ = false;        // a transfer or an answer is pending: lines wait
  bool auth_pending_ = false;  // 234 sent; TLS starts once it is out
  tls::HandshakeSlot slot_;    // a TLS handshake slot, waited for or held; Close() gives it back
  bool delaying_ = false;    // a failed login's 530, or a PASS, is held back (backoff)
  std::string held_password_;  // the PASS that waits for the backoff (HoldPass)
  // Login:
  std::string user_;
  const Account* account_ = nullptr;  // set once logged in
  int login_failures_ = 0;
  int64_t login_deadline_ms_ = 0;
  // State:
  std::string cwd_ = "/";
  bool pbsz_ = false;
  bool prot_p_ = false;
  bool prot_c_ = false;  // PROT C asked explicitly (an implicit session then sends data plain)
  bool epsv_all_ = false;
  uint64_t rest_ = 0;
  DataChannel* data_ = nullptr;  // owned: closes itself (DataChannel::Close)
  uint64_t passive_order_ = 0;  // when the passive listener in data_ was opened (FtpServer count)
  int64_t command_start_ms_ = 0;
  std::string mac_;  // of the last file that named one, for the log
};

}  // namespace siterelay::ftp
