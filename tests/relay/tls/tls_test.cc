#include "relay/tls/tls.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "tests/testing/temp_dir.h"

namespace siterelay::tls {
namespace {

// A client over memory BIOs, pumped against a server TlsStream by hand: no sockets, no loop.
class Client {
 public:
  // `configure`: what this client offers (versions, cipher lists), set on its SSL_CTX.
  explicit Client(const std::function<void(SSL_CTX*)>& configure = nullptr) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (configure) configure(ctx_);
    ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
  }
  ~Client() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  void Pump(TlsStream& server, std::string* server_plain) {
    for (int round = 0; round < 20; ++round) {
      (void)SSL_do_handshake(ssl_);
      std::string c2s = Drain(out_);
      server.Feed(c2s);
      ASSERT_TRUE(server.Read(server_plain, 1 << 20).ok());
      std::string s2c;
      server.TakeCiphertext(&s2c);
      if (c2s.empty() && s2c.empty()) return;
      BIO_write(in_, s2c.data(), static_cast<int>(s2c.size()));
    }
  }
  std::string Receive(TlsStream& server) {
    std::string s2c;
    server.TakeCiphertext(&s2c);
    return Decrypt(s2c);
  }
  std::string Decrypt(const std::string& s2c) {
    BIO_write(in_, s2c.data(), static_cast<int>(s2c.size()));
    std::string out;
    char buf[4096];
    int n;
    while ((n = SSL_read(ssl_, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }
  // Runs the handshake against `server` to its end either way: true when both sides finished
  // it, false when either gave up (no version or suite in common, a refused key).
  bool Handshake(TlsStream& server) {
    for (int round = 0; round < 20; ++round) {
      int rc = SSL_do_handshake(ssl_);
      std::string c2s = Drain(out_);
      server.Feed(c2s);
      std::string plain;
      if (!server.Read(&plain, 1 << 20).ok()) return false;
      std::string s2c;
      server.TakeCiphertext(&s2c);
      if (rc == 1 && server.handshake_done()) return true;
      if (rc != 1 && SSL_get_error(ssl_, rc) != SSL_ERROR_WANT_READ) return false;
      if (c2s.empty() && s2c.empty()) return false;
      BIO_write(in_, s2c.data(), static_cast<int>(s2c.size()));
    }
    return false;
  }
  std::string Cipher() const { return SSL_get_cipher_name(ssl_); }
  void Send(std::string_view s) { SSL_write(ssl_, s.data(), static_cast<int>(s.size())); }
  void Start() { (void)SSL_do_handshake(ssl_); }  // the ClientHello, into Sent()
  std::string Sent() { return Drain(out_); }
  SSL* ssl() { return ssl_; }

 private:
  static std::string Drain(BIO* b) {
    char* data = nullptr;
    long len = BIO_get_mem_data(b, &data);
    std::string s(data, static_cast<size_t>(len));
    (void)BIO_reset(b);
    return s;
  }
  SSL_CTX* ctx_;
  SSL* ssl_;
  BIO* in_;
  BIO* out_;
};

TEST(TlsTest, SelfSignedContextIsMadeOnceAndReused) {
  testing::TempDir dir;
  TlsConfig cfg;
  auto a = TlsContext::Create(cfg, dir.path());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = TlsContext::Create(cfg, dir.path());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*a)->fingerprint(), (*b)->fingerprint()) << "the pair in data_dir/tls is reused";
  EXPECT_EQ((*a)->fingerprint().size(), 32u * 3 - 1);
}

// A server stream and a client that have finished their handshake.
class HandshakenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ctx = TlsContext::Create(TlsConfig{}, dir_.path());
    ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
    ctx_ = *ctx;
    server_ = std::make_unique<TlsStream>(*ctx_);
    client_.Pump(*server_, &plain_);
    ASSERT_TRUE(server_->handshake_done());
  }

  testing::TempDir dir_;
  std::shared_ptr<TlsContext> ctx_;
  std::unique_ptr<TlsStream> server_;
  Client client_;
  std::string plain_;
};

TEST_F(HandshakenTest, HandshakeAndDataBothWays) {
  EXPECT_NE(server_->Describe().find("TLSv1.3"), std::string::npos) << server_->Describe();
  client_.Send("GET /000000000000.cfg HTTP/1.1\r\n\r\n");
  server_->Feed(client_.Sent());
  ASSERT_TRUE(server_->Read(&plain_, 1 << 20).ok());
  EXPECT_EQ(plain_, "GET /000000000000.cfg HTTP/1.1\r\n\r\n");

  std::string body(40000, 'z');  // more than one record
  size_t sent = 0;
  std::string got;
  while (sent < body.size()) {
    auto n = server_->Write(std::string_view(body).substr(sent));
    ASSERT_TRUE(n.ok());
    ASSERT_GT(*n, 0u);
    sent += *n;
    got += client_.Receive(*server_);
  }
  EXPECT_EQ(got, body);
}

// TakeCiphertext hands over what was written since the last take, after whatever the caller
// still holds unsent, and only once.
TEST_F(HandshakenTest, CiphertextIsTakenOnceAndAfterWhatTheCallerHolds) {
  std::string unsent;
  ASSERT_TRUE(server_->Write("first ").ok());
  server_->TakeCiphertext(&unsent);
  size_t first = unsent.size();
  ASSERT_GT(first, 6u);
  ASSERT_TRUE(server_->Write("second").ok());
  server_->TakeCiphertext(&unsent);
  EXPECT_GT(unsent.size(), first);
  std::string again;
  server_->TakeCiphertext(&again);
  EXPECT_TRUE(again.empty()) << "taken twice";
  EXPECT_EQ(client_.Decrypt(unsent), "first second");
}

TEST(TlsTest, GarbageFromThePeerIsAnError) {
  testing::TempDir dir;
  auto ctx = TlsContext::Create(TlsConfig{}, dir.path());
  ASSERT_TRUE(ctx.ok());
  TlsStream server(**ctx);
  server.Feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");  // plain HTTP on the HTTPS port
  std::string plain;
  EXPECT_FALSE(server.Read(&plain, 1 << 20).ok());
}

TEST(TlsTest, HandshakesAndFailuresAreCountedOnce) {
  testing::TempDir dir;
  auto ctx = TlsContext::Create(TlsConfig{}, dir.path());
  ASSERT_TRUE(ctx.ok());
  TlsCounts before = CountsNow();
  {
    TlsStream server(**ctx);
    Client client;
    std::string plain;
    client.Pump(server, &plain);
    ASSERT_TRUE(server.handshake_done());
    client.Send("more");
    server.Feed(client.Sent());
    ASSERT_TRUE(server.Read(&plain, 1 << 20).ok());
  }
  {
    TlsStream garbage(**ctx);
    garbage.Feed("GET / HTTP/1.1\r\n\r\n");
    std::string plain;
    EXPECT_FALSE(garbage.Read(&plain, 1 << 20).ok());
    EXPECT_FALSE(garbage.Read(&plain, 1 << 20).ok());
  }
  { TlsStream idle(**ctx); }  // a connection that never said anything is no handshake at all
  TlsCounts after = CountsNow();
  EXPECT_EQ(after.handshakes - before.handshakes, 1u);
  EXPECT_EQ(after.failures - before.failures, 1u);
  {
    TlsStream half(**ctx);  // a ClientHello, then the peer is gone
    Client client;
    client.Start();
    half.Feed(client.Sent());
    std::string plain;
    ASSERT_TRUE(half.Read(&plain, 1 << 20).ok());
  }
  EXPECT_EQ(CountsNow().failures - before.failures, 2u);
}

TEST(TlsTest, MismatchedKeyIsRefusedWithTheKeyNamed) {
  testing::TempDir one, two;
  ASSERT_TRUE(TlsContext::Create(TlsConfig{}, one.path()).ok());
  ASSERT_TRUE(TlsContext::Create(TlsConfig{}, two.path()).ok());
  TlsConfig cfg;
  cfg.cert = one / "tls/cert.pem";
  cfg.key = two / "tls/key.pem";
  auto c = TlsContext::Create(cfg, one.path());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("tls.key"), std::string::npos) << c.status().message();
}

// What a client that offers only `ciphers` (TLS 1.2 and older) or only `suites` (TLS 1.3)
// negotiates with a server made from `cfg`: the suite's name, or "" when the handshake fails.
std::string Negotiate(const TlsConfig& cfg, const std::string& data_dir, int version,
                      const char* ciphers) {
  auto ctx = TlsContext::Create(cfg, data_dir);
  if (!ctx.ok()) return "no context: " + ctx.status().ToString();
  TlsStream server(**ctx);
  Client client([&](SSL_CTX* c) {
    SSL_CTX_set_security_level(c, 0);  // the client offers anything: the server must refuse
    SSL_CTX_set_min_proto_version(c, version);
    SSL_CTX_set_max_proto_version(c, version);
    if (version == TLS1_3_VERSION) {
      SSL_CTX_set_ciphersuites(c, ciphers);
    } else {
      SSL_CTX_set_cipher_list(c, ciphers);
    }
  });
  return client.Handshake(server) ? client.Cipher() : "";
}

TEST(TlsTest, Tls12OffersEcdheWithAeadOnly) {
  testing::TempDir dir;
  TlsConfig cfg;  // min_version "1.2"
  for (const char* good : {"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256",
                           "ECDHE-RSA-CHACHA20-POLY1305"}) {
    EXPECT_EQ(Negotiate(cfg, dir.path(), TLS1_2_VERSION, good), good);
  }
  // CBC with SHA-1 or SHA-2, static RSA key exchange (no forward secrecy), NULL, anonymous:
  // OpenSSL's DEFAULT accepts the first four.
  for (const char* weak : {"AES128-SHA", "AES256-SHA", "ECDHE-RSA-AES128-SHA",
                           "AES256-GCM-SHA384", "ECDHE-RSA-AES256-SHA384", "NULL-SHA256",
                           "ECDHE-RSA-NULL-SHA", "ADH-AES128-GCM-SHA256", "AECDH-AES256-SHA",
                           "CAMELLIA256-SHA256", "ARIA256-GCM-SHA384"}) {
    EXPECT_EQ(Negotiate(cfg, dir.path(), TLS1_2_VERSION, weak), "") << weak;
  }
  EXPECT_EQ(Negotiate(cfg, dir.path(), TLS1_2_VERSION, "ALL:COMPLEMENTOFALL:@STRENGTH"),
            "ECDHE-RSA-AES256-GCM-SHA384")
      << "the server's order wins";
}

TEST(TlsTest, Tls13OffersTheThreeCommonSuites) {
  testing::TempDir dir;
  for (const char* good :
       {"TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"}) {
    EXPECT_EQ(Negotiate(TlsConfig{}, dir.path(), TLS1_3_VERSION, good), good);
  }
  for (const char* other : {"TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"}) {
    EXPECT_EQ(Negotiate(TlsConfig{}, dir.path(), TLS1_3_VERSION, other), "") << other;
  }
}

TEST(TlsTest, VersionsBelowTheMinimumAreRefused) {
  testing::TempDir dir;
  TlsConfig cfg;
  for (int v : {TLS1_VERSION, TLS1_1_VERSION}) {
    EXPECT_EQ(Negotiate(cfg, dir.path(), v, "AES256-SHA"), "") << v;
  }
  cfg.min_version = "1.3";
  EXPECT_EQ(Negotiate(cfg, dir.path(), TLS1_2_VERSION, "ECDHE-RSA-AES256-GCM-SHA384"), "");
  EXPECT_EQ(Negotiate(cfg, dir.path(), TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384"),
            "TLS_AES_256_GCM_SHA384");
}

TEST(TlsTest, LegacyMinimumAddsAesShaButNothingWeaker) {
  testing::TempDir dir;
  TlsConfig cfg;
  cfg.min_version = "1.0";
  for (int v : {TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION}) {
    EXPECT_EQ(Negotiate(cfg, dir.path(), v, "AES256-SHA"), "AES256-SHA") << v;  // PHONES.md
    EXPECT_EQ(Negotiate(cfg, dir.path(), v, "ECDHE-RSA-AES128-SHA"), "ECDHE-RSA-AES128-SHA");
    for (const char* weak : {"NULL-SHA", "NULL-MD5", "ADH-AES256-SHA", "AECDH-AES128-SHA",
                             "CAMELLIA128-SHA", "SEED-SHA", "PSK-AES128-CBC-SHA"}) {
      EXPECT_EQ(Negotiate(cfg, dir.path(), v, weak), "") << v << " " << weak;
    }
  }
  EXPECT_EQ(Negotiate(cfg, dir.path(), TLS1_2_VERSION, "ALL:COMPLEMENTOFALL:@STRENGTH"),
            "ECDHE-RSA-AES256-GCM-SHA384")
      << "a client that can do better still gets the modern suites";
}

TEST(TlsTest, KeySmallerThan2048BitsIsRefused) {
  testing::TempDir dir;
  EVP_PKEY* key = EVP_RSA_gen(1024);
  ASSERT_NE(key, nullptr);
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("small"), -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  ASSERT_GT(X509_sign(x, key, EVP_sha256()), 0);
  TlsConfig cfg;
  cfg.cert = dir / "small.pem";
  cfg.key = dir / "small.key";
  FILE* f = std::fopen(cfg.cert.c_str(), "w");
  PEM_write_X509(f, x);
  std::fclose(f);
  f = std::fopen(cfg.key.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
  auto c = TlsContext::Create(cfg, dir.path());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("too small"), std::string::npos) << c.status().message();
  cfg.min_version = "1.0";  // the oldest phones' mode takes what they may have been given
  EXPECT_TRUE(TlsContext::Create(cfg, dir.path()).ok());
}

}  // namespace
}  // namespace siterelay::tls
