// TLS for HTTPS (and, later, FTPS) through OpenSSL memory BIOs: the one stream filter that the
// connection code drives, whatever the socket layer (DESIGN.md "relay/tls").
//
// A TlsStream never touches a socket. The connection feeds it the ciphertext it received
// (Feed), takes plaintext out (Read), hands it plaintext to send (Write) and ships whatever
// ciphertext it produced (TakeCiphertext). That keeps TLS off the socket code's back and lets
// the same filter serve TCP sockets of any kind.
//
// TlsContext holds the server's certificate and protocol settings. Without a configured
// certificate, a self-signed one (RSA 2048, SANs for the host name, localhost and the host's
// addresses) is made once in data_dir/tls and reused; its SHA-256 fingerprint is logged so
// phones can be given it. What is offered is fixed here, not left to the library's defaults
// (docs/configuration.md "TLS"): TLS 1.2 with ECDHE and AEAD suites and TLS 1.3, at OpenSSL
// security level 2; tls.min_version "1.0" adds the legacy protocol versions and the AES-CBC-SHA
// suites (AES256-SHA) that old phones negotiate (PHONES.md). Renegotiation is refused.
//
// Thread safety: a TlsContext may be shared by connections on one loop; a TlsStream belongs to
// one connection.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

#include "relay/base/config.h"
#include "relay/base/status.h"

namespace siterelay::tls {

// Translates the OpenSSL error queue (and clears it): the one place that does.
Status OpenSslError(std::string_view context);

class TlsContext {
 public:
  // Loads tls.cert/tls.key, or makes/reuses the self-signed pair in `data_dir`/tls.
  static Result<std::shared_ptr<TlsContext>> Create(const TlsConfig& config,
                                                    const std::string& data_dir);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* get() const { return ctx_; }
  // "AB:CD:..." SHA-256 of the certificate, and where it came from.
  const std::string& fingerprint() const { return fingerprint_; }
  const std::string& cert_path() const { return cert_path_; }

 private:
  TlsContext() = default;
  SSL_CTX* ctx_ = nullptr;
  std::string fingerprint_;
  std::string cert_path_;
};

// Server-side handshakes over the life of the process, for /metrics: completed, and failed (a
// fatal alert or protocol error before the handshake finished, or a peer that left half-way).
struct TlsCounts {
  uint64_t handshakes = 0;
  uint64_t failures = 0;
};
TlsCounts CountsNow();

class TlsStream {
 public:
  explicit TlsStream(const TlsContext& ctx);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Ciphertext from the peer.
  void Feed(std::string_view ciphertext);
  // Plaintext received, appended to `out` (at most `max` bytes). InvalidArgument when the peer
  // broke the protocol (the connection must close); Unavailable at the peer's close_notify.
  Status Read(std::string* out, size_t max);
  // Encrypts plaintext; returns how much was taken (everything unless the handshake is still
  // running, in which case nothing is taken yet).
  Result<size_t> Write(std::string_view plaintext);
  // No TLS 1.3 session tickets after the handshake. For FTPS data connections: a client that
  // uploads, closes and never reads would otherwise leave the tickets unread, and its kernel
  // answers unread data with a reset that can overtake the end of the upload.
  void DisableTickets();
  // Queues our close_notify (RFC 8446 section 6.1); TakeCiphertext() then has it.
  void Shutdown();
  // Ciphertext waiting to go to the peer: appended to `out`.
  void TakeCiphertext(std::string* out);
  bool handshake_done() const { return SSL_is_init_finished(ssl_) == 1; }
  // The negotiated protocol and cipher, for the log: "TLSv1.3 TLS_AES_256_GCM_SHA384".
  std::string Describe() const;

 private:
  SSL* ssl_ = nullptr;
  bool fed_ = false;     // some ciphertext arrived
  bool counted_ = false;  // in TlsCounts already
  BIO* in_ = nullptr;   // owned by ssl_
  BIO* out_ = nullptr;  // owned by ssl_: appends to out_buf_
  std::string out_buf_;  // ciphertext written and not yet taken
};

}  // namespace siterelay::tls
