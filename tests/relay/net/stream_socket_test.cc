#include "relay/net/stream_socket.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "relay/tls/tls.h"
#include "tests/testing/temp_dir.h"

namespace siterelay::net {
namespace {

// A StreamSocket under TLS on one end of a socket pair and an OpenSSL client on the other, both
// non-blocking and driven by hand: no loop, no threads. The server's send buffer is as small as
// the kernel allows, so what the client does not read backs up into the StreamSocket at once.
class TlsPairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ctx = tls::TlsContext::Create(TlsConfig{}, dir_.path());
    ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
    ctx_ = *ctx;
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    int small = 4096;
    ::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    server_ = std::make_unique<StreamSocket>(sv[0]);
    ASSERT_TRUE(server_->EnableTls(*ctx_));
    client_fd_ = sv[1];
    client_ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(client_ctx_, TLS1_3_VERSION);
    client_ = SSL_new(client_ctx_);
    SSL_set_fd(client_, client_fd_);
    SSL_set_connect_state(client_);
    std::string plain;
    for (int i = 0; i < 50 && !(SSL_is_init_finished(client_) &&
                                server_->tls_stream()->handshake_done());
         ++i) {
      (void)SSL_do_handshake(client_);
      ASSERT_NE(server_->Receive(&plain), StreamSocket::Io::kError) << server_->error();
    }
    ASSERT_TRUE(SSL_is_init_finished(client_));
    ASSERT_TRUE(server_->tls_stream()->handshake_done());
  }

  void TearDown() override {
    SSL_free(client_);
    SSL_CTX_free(client_ctx_);
    ::close(client_fd_);
  }

  // The client asks for a KeyUpdate back (RFC 8446 section 4.6.3) and sends it at once.
  void RequestKeyUpdate() {
    ASSERT_EQ(SSL_key_update(client_, SSL_KEY_UPDATE_REQUESTED), 1);
    ASSERT_EQ(SSL_do_handshake(client_), 1);
  }

  testing::TempDir dir_;
  std::shared_ptr<tls::TlsContext> ctx_;
  std::unique_ptr<StreamSocket> server_;
  int client_fd_ = -1;
  SSL_CTX* client_ctx_ = nullptr;
  SSL* client_ = nullptr;
};

TEST_F(TlsPairTest, PeerThatFloodsKeyUpdatesWithoutReadingIsCutOff) {
  // Each request is answered by a KeyUpdate of the same size; with nobody reading them the
  // answers would pile up in the relay for as long as the peer keeps asking.
  constexpr int kRequests = 100'000;  // about 2.6 MB of answers
  int sent = 0;
  StreamSocket::Io io = StreamSocket::Io::kOk;
  std::string plain;
  for (; sent < kRequests && io != StreamSocket::Io::kError; ++sent) {
    RequestKeyUpdate();
    io = server_->Receive(&plain);
  }
  ASSERT_EQ(io, StreamSocket::Io::kError) << "still reading after " << sent << " requests";
  EXPECT_NE(server_->error().find("does not read"), std::string::npos) << server_->error();
  // 27-byte answers: the limit, a socket buffer and one read's worth on top, no more.
  EXPECT_LT(static_cast<size_t>(sent) * 27, kMaxUnsentCiphertext + 64 * 1024) << sent;
  EXPECT_TRUE(plain.empty());
}

TEST_F(TlsPairTest, PeerThatReadsItsAnswersIsNeverCutOff) {
  std::string plain;
  char buf[4096];
  for (int i = 0; i < 15'000; ++i) {  // answers well past the limit in all
    RequestKeyUpdate();
    ASSERT_NE(server_->Receive(&plain), StreamSocket::Io::kError) << i << ": " << server_->error();
    ASSERT_TRUE(server_->Flush());
    (void)SSL_read(client_, buf, sizeof buf);  // takes the answers; no data: WANT_READ
  }
  ASSERT_EQ(SSL_write(client_, "ping", 4), 4);
  ASSERT_EQ(server_->Receive(&plain), StreamSocket::Io::kOk);
  EXPECT_EQ(plain, "ping");
}

}  // namespace
}  // namespace siterelay::net
