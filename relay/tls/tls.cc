#include "relay/tls/tls.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>


#include <atomic>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "relay/base/fs.h"
#include "relay/base/log.h"
#include "relay/base/url.h"

namespace siterelay::tls {
namespace {

constexpr int kSelfSignedDays = 3650;

// What the relay offers (docs/configuration.md "TLS"), written out rather than left to the
// library's DEFAULT, which at TLS 1.2 still has static-RSA key exchange (no forward secrecy) and
// CBC with SHA-1 MACs, and which a distribution's openssl.cnf may widen.
//
// TLS 1.2: ECDHE key exchange with an AEAD cipher only (Mozilla's "intermediate" list without
// DHE, for which no parameters are configured), the server's order. ECDSA entries serve an EC
// certificate; the self-signed one is RSA.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
// tls.min_version "1.0"/"1.1" adds what phones from before UC Software 4.0.15 negotiate:
// AES-CBC with SHA-1, with ECDHE or (AES256-SHA, PHONES.md) static RSA. Never RC4, 3DES, NULL,
// EXPORT or anonymous suites, whatever the version.
constexpr const char* kLegacyExtraCiphers =
    "ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"
    "AES256-SHA:AES128-SHA";
// TLS 1.3: the three suites every implementation has (RFC 8446 section 9.1 makes the AES-GCM
// ones mandatory); the CCM ones stay off, as in OpenSSL's default.
constexpr const char* kTls13Suites =
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
// OpenSSL security level 2 (112-bit): RSA and DH keys of at least 2048 bits, EC of 224, no SHA-1
// signatures. A smaller configured key is refused at start and on SIGHUP with OpenSSL's reason.
constexpr int kSecurityLevel = 2;

// TlsCounts: streams live on loop threads and the thread pool's never, but relaxed atomics cost
// nothing and keep the counters right whatever thread a stream ends on.
std::atomic<uint64_t> g_handshakes{0};
std::atomic<uint64_t> g_handshake_failures{0};

int VersionFor(const std::string& v) {
  if (v == "1.0") return TLS1_VERSION;
  if (v == "1.1") return TLS1_1_VERSION;
  if (v == "1.3") return TLS1_3_VERSION;
  return TLS1_2_VERSION;
}

std::string Fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return "?";
  std::string out;
  char hex[4];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(hex, sizeof hex, i == 0 ? "%02X" : ":%02X", md[i]);
    out += hex;
  }
  return out;
}

// Subject alternative names: the host name, localhost, and every address of this host, so a
// phone given the certificate's fingerprint or CA can reach the relay by any of them.
std::string SubjectAltNames(const std::string& host) {
  std::string san = "DNS:localhost,IP:127.0.0.1,IP:::1";
  if (!host.empty() && host != "localhost") san += ",DNS:" + host;
  for (const std::string& ip : LocalAddresses()) san += ",IP:" + ip;
  return san;
}

// Writes `pem` to `path` through a temp file, fsync and rename, so a crash never leaves half a
// key; the key is readable by the relay's user only.
Status WriteFileAtomically(const std::string& path, const std::string& pem, mode_t mode) {
  FileSystem* fs = FileSystem::Default();
  std::string tmp = path + ".tmp";
  SR_ASSIGN_OR_RETURN(int fd, fs->Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode));
  ScopedFd f(fs, fd);
  Status s = fs->WriteAll(fd, {reinterpret_cast<const uint8_t*>(pem.data()), pem.size()});
  if (s.ok()) s = fs->Fsync(fd);
  if (s.ok()) s = f.Close();
  if (s.ok()) s = fs->Rename(tmp, path);
  if (!s.ok()) (void)fs->Unlink(tmp);
  return s;
}

std::string PemOf(auto write) {
  BIO* bio = BIO_new(BIO_s_mem());
  write(bio);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

Status MakeSelfSigned(const std::string& cert_path, const std::string& key_path) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  EVP_PKEY* key = EVP_RSA_gen(2048);  // RSA: the oldest phones know no ECDSA
  if (key == nullptr) return OpenSslError("generate RSA key");
  X509* x = X509_new();
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key_owner(key, EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> x_owner(x, X509_free);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
  BN_free(bn);
  X509_set_version(x, 2);
  X509_gmtime_adj(X509_getm_notBefore(x), -86400);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400L * kSelfSignedDays);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  std::string cn = host[0] != '\0' ? host : "siterelay";
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("siterelay"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
  std::string san = SubjectAltNames(cn);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, san.c_str()},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                            std::pair{NID_key_usage, "critical,digitalSignature,keyEncipherment,keyCertSign"},
                            std::pair{NID_ext_key_usage, "serverAuth"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    if (ext == nullptr) return OpenSslError("certificate extension");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(x, key, EVP_sha256()) == 0) return OpenSslError("sign certificate");
  std::string key_pem = PemOf([&](BIO* b) {
    PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
  std::string cert_pem = PemOf([&](BIO* b) { PEM_write_bio_X509(b, x); });
  SR_RETURN_IF_ERROR(WriteFileAtomically(key_path, key_pem, 0600));
  return WriteFileAtomically(cert_path, cert_pem, 0644);
}

}  // namespace

Status OpenSslError(std::string_view context) {
  std::string m(context);
  unsigned long e;
  bool first = true;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    m += first ? ": " : "; ";
    m += buf;
    first = false;
  }
  return Status::InvalidArgument(m);
}

Result<std::shared_ptr<TlsContext>> TlsContext::Create(const TlsConfig& config,
                                                        const std::string& data_dir) {
  std::string cert = config.cert, key = config.key;
  if (cert.empty()) {
    std::string dir = data_dir + "/tls";
    SR_RETURN_IF_ERROR(FileSystem::Default()->MakeDirs(dir));
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
    if (!std::filesystem::exists(cert) || !std::filesystem::exists(key)) {
      SR_LOG(kInfo) << "tls: no certificate configured; making a self-signed one in " << dir;
      SR_RETURN_IF_ERROR(MakeSelfSigned(cert, key));
    }
  }
  std::shared_ptr<TlsContext> c(new TlsContext());
  c->cert_path_ = cert;
  c->ctx_ = SSL_CTX_new(TLS_server_method());
  if (c->ctx_ == nullptr) return OpenSslError("SSL_CTX_new");
  SSL_CTX* ctx = c->ctx_;
  int min = VersionFor(config.min_version);
  bool legacy = min < TLS1_2_VERSION;
  // Phones from before UC Software 4.0.15 speak TLS 1.0 with AES256-SHA (PHONES.md); OpenSSL
  // 3 refuses both above security level 0.
  SSL_CTX_set_security_level(ctx, legacy ? 0 : kSecurityLevel);
  std::string ciphers = kTls12Ciphers;
  if (legacy) ciphers = ciphers + ":" + kLegacyExtraCiphers;
  if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1) {
    return OpenSslError("TLS cipher list");
  }
  if (SSL_CTX_set_min_proto_version(ctx, min) != 1) return OpenSslError("tls.min_version");
  // Renegotiation, started by either side, is refused (each one costs the server a handshake;
  // CVE-2011-1473): a ClientHello on an established TLS 1.2 connection gets a no_renegotiation
  // alert. No compression: CRIME.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);  // idle connections hold no record buffers
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    return OpenSslError("tls.cert " + cert);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return OpenSslError("tls.key " + key);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) return OpenSslError("tls.key does not match tls.cert");
  c->fingerprint_ = Fingerprint(SSL_CTX_get0_certificate(ctx));
  return c;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

TlsCounts CountsNow() {
  return {g_handshakes.load(std::memory_order_relaxed),
          g_handshake_failures.load(std::memory_order_relaxed)};
}

namespace {

// The write side of a TlsStream: a sink that appends what OpenSSL writes to the stream's own
// string, so TakeCiphertext() hands ciphertext over by swapping buffers. With a memory BIO every
// byte was copied once more on its way out (a tenth of an HTTPS image's time on the loop).
BIO_METHOD* SinkMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "siterelay sink");
    if (m == nullptr) return m;
    BIO_meth_set_write_ex(m, [](BIO* b, const char* data, size_t n, size_t* written) -> int {
      static_cast<std::string*>(BIO_get_data(b))->append(data, n);
      *written = n;
      return 1;
    });
    BIO_meth_set_ctrl(m, [](BIO*, int cmd, long, void*) -> long {
      return cmd == BIO_CTRL_FLUSH ? 1 : 0;  // nothing is held back, nothing is pending
    });
    BIO_meth_set_create(m, [](BIO* b) -> int {
      BIO_set_init(b, 1);
      return 1;
    });
    return m;
  }();
  return method;
}

}  // namespace

TlsStream::TlsStream(const TlsContext& ctx) {
  ssl_ = SSL_new(ctx.get());
  in_ = BIO_new(BIO_s_mem());
  BIO_METHOD* sink = SinkMethod();
  out_ = sink != nullptr ? BIO_new(sink) : nullptr;
  if (ssl_ == nullptr || in_ == nullptr || out_ == nullptr) {
    std::fprintf(stderr, "fatal: out of memory for a TLS stream\n");
    std::abort();
  }
  BIO_set_mem_eof_return(in_, -1);  // empty means "wait for more", not end of stream
  BIO_set_data(out_, &out_buf_);
  SSL_set_bio(ssl_, in_, out_);
  SSL_set_accept_state(ssl_);
}

TlsStream::~TlsStream() {
  // A peer that went away half-way through the handshake is a failed handshake too.
  if (!counted_ && fed_) g_handshake_failures.fetch_add(1, std::memory_order_relaxed);
  SSL_free(ssl_);
}

void TlsStream::Feed(std::string_view ciphertext) {
  if (ciphertext.empty()) return;
  fed_ = true;
  BIO_write(in_, ciphertext.data(), static_cast<int>(ciphertext.size()));
}

Status TlsStream::Read(std::string* out, size_t max) {
  char buf[16 * 1024];
  Status result = Status::Ok();
  while (max > 0) {
    int n = SSL_read(ssl_, buf, static_cast<int>(std::min(sizeof buf, max)));
    if (n > 0) {
      out->append(buf, static_cast<size_t>(n));
      max -= static_cast<size_t>(n);
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
    result = err == SSL_ERROR_ZERO_RETURN ? Status::Unavailable("peer closed the TLS session")
                                          : OpenSslError("TLS");
    break;
  }
  if (!counted_ && (handshake_done() || !result.ok())) {
    counted_ = true;
    (handshake_done() ? g_handshakes : g_handshake_failures)
        .fetch_add(1, std::memory_order_relaxed);
  }
  return result;
}

Result<size_t> TlsStream::Write(std::string_view plaintext) {
  if (plaintext.empty()) return size_t{0};
  int n = SSL_write(ssl_, plaintext.data(), static_cast<int>(plaintext.size()));
  if (n > 0) return static_cast<size_t>(n);
  int err = SSL_get_error(ssl_, n);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return size_t{0};
  return OpenSslError("TLS write");
}

void TlsStream::DisableTickets() { SSL_set_num_tickets(ssl_, 0); }

void TlsStream::Shutdown() {
  // Before the handshake finished there is nothing to close cleanly: the caller just closes.
  if (SSL_shutdown(ssl_) < 0) ERR_clear_error();
}

void TlsStream::TakeCiphertext(std::string* out) {
  if (out->empty()) {
    out->swap(out_buf_);  // out_buf_ keeps the other buffer, and its room, for the next records
  } else {
    out->append(out_buf_);
    out_buf_.clear();
  }
}

std::string TlsStream::Describe() const {
  return std::string(SSL_get_version(ssl_)) + " " + SSL_get_cipher_name(ssl_);
}

}  // namespace siterelay::tls
