#include "relay/tls/tls.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include "tests/testing/temp_dir.h"

namespace siterelay::tls {
namespace {

// A client over memory BIOs, pumped against a server TlsStream by hand: no sockets, no loop.
class Client {
 public:
  Client() {
    ctx_ = SSL_CTX_new(TLS_client_method());
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
    BIO_write(in_, s2c.data(), static_cast<int>(s2c.size()));
    std::string out;
    char buf[4096];
    int n;
    while ((n = SSL_read(ssl_, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }
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

TEST(TlsTest, HandshakeAndDataBothWays) {
  testing::TempDir dir;
  auto ctx = TlsContext::Create(TlsConfig{}, dir.path());
  ASSERT_TRUE(ctx.ok());
  TlsStream server(**ctx);
  Client client;
  std::string plain;
  client.Pump(server, &plain);
  ASSERT_TRUE(server.handshake_done());
  EXPECT_NE(server.Describe().find("TLSv1.3"), std::string::npos) << server.Describe();

  client.Send("GET /000000000000.cfg HTTP/1.1\r\n\r\n");
  server.Feed(client.Sent());
  ASSERT_TRUE(server.Read(&plain, 1 << 20).ok());
  EXPECT_EQ(plain, "GET /000000000000.cfg HTTP/1.1\r\n\r\n");

  std::string body(40000, 'z');  // more than one record
  size_t sent = 0;
  std::string got;
  while (sent < body.size()) {
    auto n = server.Write(std::string_view(body).substr(sent));
    ASSERT_TRUE(n.ok());
    ASSERT_GT(*n, 0u);
    sent += *n;
    got += client.Receive(server);
  }
  EXPECT_EQ(got, body);
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

}  // namespace
}  // namespace siterelay::tls
