#include "relay/http/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fcntl.h>

#include <functional>
#include <optional>
#include <thread>

#include "relay/base/uv.h"
#include "tests/testing/loop.h"
#include "tests/testing/temp_dir.h"

namespace siterelay::http {
namespace {

class HelloHandler final : public Handler {
 public:
  Response Handle(const Request&, const files::Peer&) override {
    Response r;
    r.body = "hello";
    return r;
  }
};

// Runs the server's loop while `client` runs on a thread with blocking sockets; returns when the
// client is done.
class ServerTest : public ::testing::Test {
 protected:
  void Start(ServerLimits limits, Handler* handler = nullptr) {
    server_ = std::make_unique<HttpServer>(loop_.get(), files::Protocol::kHttp,
                                           handler != nullptr ? handler : &handler_, limits,
                                           nullptr);
    ASSERT_TRUE(server_->Listen({*ListenAddress::Parse("127.0.0.1:0")}).ok());
    port_ = server_->bound()[0].port;
  }

  void RunClient(const std::function<void()>& client) {
    siterelay::testing::RunWithClient(loop_.get(), client);
    server_->StopAccepting();
    server_->CloseAll();
    uv_run(loop_.get(), UV_RUN_DEFAULT);
  }

  int Connect(const char* source = nullptr) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (source != nullptr) {  // any 127.x address: all loopback
      sockaddr_in me{};
      me.sin_family = AF_INET;
      inet_pton(AF_INET, source, &me.sin_addr);
      EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&me), sizeof me), 0);
    }
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port_);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    return fd;
  }

  // A PUT of a five-byte log with Connection: close: all that comes back.
  std::string PutHello() {
    int fd = Connect();
    std::string req =
        "PUT /0004f282e824-app.log HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        "Connection: close\r\n\r\nhello";
    ::send(fd, req.data(), req.size(), 0);
    std::string got = ReadAll(fd);
    ::close(fd);
    return got;
  }

  static std::string ReadAll(int fd) {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }

  Loop loop_;
  HelloHandler handler_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
};

TEST_F(ServerTest, AnswersAndClosesOnConnectionClose) {
  Start({});
  std::string got;
  RunClient([&] {
    int fd = Connect();
    std::string req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ::send(fd, req.data(), req.size(), 0);
    got = ReadAll(fd);
    ::close(fd);
  });
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("Content-Length: 5\r\n"), std::string::npos);
  EXPECT_EQ(got.substr(got.size() - 5), "hello");
}

TEST_F(ServerTest, SlowHeadIsCutOffWith408) {
  ServerLimits limits;
  limits.header_timeout_ms = 100;
  Start(limits);
  std::string got;
  RunClient([&] {
    int fd = Connect();
    ::send(fd, "GET / HT", 8, 0);  // and never the rest
    got = ReadAll(fd);
    ::close(fd);
  });
  EXPECT_EQ(got.rfind("HTTP/1.1 408 Request Timeout\r\n", 0), 0u) << got;
}

// A request body's sink that refuses bytes until the test lets it take them (the uploads' memory
// budget spent, the disk behind), then answers 201.
class HeldBackSink final : public BodySink {
 public:
  Status Write(std::string_view data) override {
    got += data;
    return Status::Ok();
  }
  bool WantsMore() const override {
    if (holding) ++refusals;
    return !holding;
  }
  void OnWantsMore(std::function<void()> cb) override { wake = std::move(cb); }
  void Finish(std::function<void(Response)> done) override {
    if (on_finish) return on_finish(std::move(done));
    Response r;
    r.status = 201;
    done(std::move(r));
  }
  void Abort() override {}
  void Let() {
    holding = false;
    if (wake) wake();
  }

  bool holding = true;
  mutable int refusals = 0;
  std::string got;
  std::function<void()> wake;
  std::function<void(std::function<void(Response)>)> on_finish;  // else 201 at once
};

class HeldBackUploadHandler final : public Handler {
 public:
  Response Handle(const Request&, const files::Peer&) override {
    if (on_request) on_request();
    Response r;
    r.sink = sink;
    return r;
  }
  std::shared_ptr<HeldBackSink> sink = std::make_shared<HeldBackSink>();
  std::function<void()> on_request;
};

// The body timeout is for a client that stops sending. While the relay itself does not read the
// body (its sink refuses bytes), the client is not cut off however long that lasts; the upload
// goes on once the sink takes bytes again.
TEST_F(ServerTest, ABodyTheRelayHoldsBackOutlastsTheBodyTimeout) {
  ServerLimits limits;
  limits.body_timeout_ms = 100;
  HeldBackUploadHandler handler;
  Start(limits, &handler);
  // The sink takes bytes four body timeouts after the request came; no answer before that.
  Timer later(loop_.get());
  std::atomic<bool> answered{false};
  bool answered_while_held = true;
  handler.on_request = [&] {
    later.Start(400, [&] {
      answered_while_held = answered;
      handler.sink->Let();
    });
  };
  std::string got;
  RunClient([&] {
    got = PutHello();
    answered = true;
  });
  EXPECT_GT(handler.sink->refusals, 0);
  EXPECT_FALSE(answered_while_held);
  EXPECT_EQ(got.rfind("HTTP/1.1 201 ", 0), 0u) << got;
  EXPECT_EQ(handler.sink->got, "hello");
}

// Once the body is in, the client waits for the upload to be filed, however long the disk takes:
// pieces still being written then wake the connection, which must not start a timeout again.
TEST_F(ServerTest, AnUploadBeingFiledIsNotCutOffByTheBodyTimeout) {
  ServerLimits limits;
  limits.body_timeout_ms = 100;
  HeldBackUploadHandler handler;
  handler.sink->holding = false;
  Timer woken(loop_.get()), filed(loop_.get());
  handler.sink->on_finish = [&](std::function<void(Response)> done) {
    woken.Start(50, [&] { handler.sink->wake(); });
    filed.Start(400, [done] {
      Response r;
      r.status = 201;
      done(std::move(r));
    });
  };
  Start(limits, &handler);
  std::string got;
  RunClient([&] { got = PutHello(); });
  EXPECT_EQ(got.rfind("HTTP/1.1 201 ", 0), 0u) << got;
}

TEST_F(ServerTest, IdleConnectionIsClosed) {
  ServerLimits limits;
  limits.idle_timeout_ms = 100;
  Start(limits);
  std::string got = "unset";
  RunClient([&] {
    int fd = Connect();
    got = ReadAll(fd);  // returns at EOF
    ::close(fd);
  });
  EXPECT_EQ(got, "");
}

TEST_F(ServerTest, PerPeerLimitRefusesTheConnectionPastIt) {
  ServerLimits limits;
  limits.max_connections_per_peer = 2;
  Start(limits);
  std::string third = "unset";
  std::string second;
  RunClient([&] {
    int a = Connect();
    int b = Connect();
    std::string req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ::send(b, req.data(), req.size(), 0);
    char buf[256];
    ssize_t n = ::recv(b, buf, sizeof buf, 0);  // b is served: the first two are in
    if (n > 0) second.assign(buf, static_cast<size_t>(n));
    int c = Connect();
    third = ReadAll(c);  // closed without an answer
    ::close(a);
    ::close(b);
    ::close(c);
  });
  EXPECT_EQ(second.rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_EQ(third, "");
}

TEST_F(ServerTest, OversizedHeadGets431) {
  Start({});
  std::string got;
  RunClient([&] {
    int fd = Connect();
    std::string req = "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(20000, 'a') + "\r\n\r\n";
    ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    got = ReadAll(fd);
    ::close(fd);
  });
  EXPECT_EQ(got.rfind("HTTP/1.1 431 ", 0), 0u) << got.substr(0, 40);
}

// HTTPS: the same server behind the TLS filter, and an OpenSSL client on a blocking socket.
class TlsServerTest : public ServerTest {
 protected:
  void StartTls(ServerLimits limits) {
    auto ctx = tls::TlsContext::Create(TlsConfig{}, dir_.path());
    ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
    server_ = std::make_unique<HttpServer>(loop_.get(), files::Protocol::kHttps, &handler_, limits,
                                           nullptr);
    server_->SetTls(*ctx);
    ASSERT_TRUE(server_->Listen({*ListenAddress::Parse("127.0.0.1:0")}).ok());
    port_ = server_->bound()[0].port;
  }

  // Milliseconds until the server closes `fd` (recv sees EOF or a reset), or -1 if it still has
  // not after the 10 s receive timeout.
  static int64_t MsUntilClosed(int fd) {
    auto start = std::chrono::steady_clock::now();
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -1;
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now() - start)
        .count();
  }

  // A TLS client on `fd`: the milliseconds its handshake took (-1 if it failed), and in *got
  // what a GET / answered.
  static int64_t HandshakeAndGet(int fd, std::string* got) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    auto start = std::chrono::steady_clock::now();
    int64_t ms = -1;
    if (SSL_connect(ssl) == 1) {
      ms = std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now() - start)
               .count();
      std::string req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
      SSL_write(ssl, req.data(), static_cast<int>(req.size()));
      char buf[4096];
      int n;
      while ((n = SSL_read(ssl, buf, sizeof buf)) > 0) got->append(buf, static_cast<size_t>(n));
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return ms;
  }

  siterelay::testing::TempDir dir_;
};

TEST_F(TlsServerTest, SilentTlsClientGetsTheHeaderTimeoutNotTheIdleOne) {
  ServerLimits limits;
  limits.header_timeout_ms = 100;  // idle: the default minute
  StartTls(limits);
  int64_t ms = 0;
  RunClient([&] {
    int fd = Connect();
    ms = MsUntilClosed(fd);
    ::close(fd);
  });
  EXPECT_GE(ms, 0) << "still open after 10 s";
  EXPECT_LT(ms, 5000);
}

TEST_F(TlsServerTest, HalfAClientHelloGetsTheHeaderTimeoutToo) {
  ServerLimits limits;
  limits.header_timeout_ms = 300;
  StartTls(limits);
  int64_t ms = 0;
  RunClient([&] {
    int fd = Connect();
    // A handshake record header announcing 512 bytes, and the first bytes of a ClientHello,
    // trickled: no byte resets the timeout.
    const unsigned char hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03,
                                   0x03};
    for (unsigned char b : hello) {
      ::send(fd, &b, 1, MSG_NOSIGNAL);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a slow client, on purpose
    }
    ms = MsUntilClosed(fd);
    ::close(fd);
  });
  EXPECT_GE(ms, 0) << "still open after 10 s";
  EXPECT_LT(ms, 5000);
}

TEST_F(TlsServerTest, FinishedHandshakeWaitsTheIdleTimeForItsRequest) {
  ServerLimits limits;
  limits.header_timeout_ms = 100;
  StartTls(limits);
  std::string got;
  RunClient([&] {
    int fd = Connect();
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) {
      // Longer than the handshake's timeout: a keep-alive connection may wait the idle time.
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      std::string req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
      SSL_write(ssl, req.data(), static_cast<int>(req.size()));
      char buf[4096];
      int n;
      while ((n = SSL_read(ssl, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ::close(fd);
  });
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
}

// At max_handshakes half-open handshakes, a new connection waits, with no TLS state and its
// ClientHello unread, until one of them ends; then it is served as usual.
TEST_F(TlsServerTest, ConnectionsPastTheHandshakeCapWaitForOneToEnd) {
  ServerLimits limits;
  limits.max_handshakes = 2;
  StartTls(limits);
  std::string got;
  int64_t ms = -1;
  RunClient([&] {
    int a = Connect(), b = Connect();  // silent: two handshakes in progress
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::thread closer([a] {
      std::this_thread::sleep_for(std::chrono::milliseconds(600));
      ::close(a);
    });
    int fd = Connect();
    ms = HandshakeAndGet(fd, &got);
    closer.join();
    ::close(fd);
    ::close(b);
  });
  EXPECT_GE(ms, 400) << "its handshake went ahead while two were in progress";
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
}

// One address flooding silent handshakes holds its own share of the slots, not everyone's.
TEST_F(TlsServerTest, OneAddressCannotTakeEveryHandshakeSlot) {
  ServerLimits limits;
  limits.max_handshakes = 10;
  limits.max_handshakes_per_peer = 2;
  StartTls(limits);
  std::string other_got, same_got;
  int64_t other_ms = -1, same_ms = -1;
  RunClient([&] {
    std::vector<int> flood;
    for (int i = 0; i < 5; ++i) flood.push_back(Connect("127.0.0.2"));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    int other = Connect("127.0.0.3");
    other_ms = HandshakeAndGet(other, &other_got);
    ::close(other);
    // The flooder's own next connection waits behind its silent ones (3 already wait).
    int same = Connect("127.0.0.2");
    std::thread closer([&flood] {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      for (int fd : flood) ::close(fd);
    });
    same_ms = HandshakeAndGet(same, &same_got);
    closer.join();
    ::close(same);
  });
  EXPECT_GE(other_ms, 0);
  EXPECT_LT(other_ms, 1000) << "another address waited behind the flooder";
  EXPECT_EQ(other_got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << other_got;
  EXPECT_GE(same_ms, 1200) << "the flooder got past its share";
  EXPECT_EQ(same_got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << same_got;
}

// A body that arrives while it is served, as from the origin: the handler answers later (once the
// first piece is there) with a GrowingFile that a loop timer fills a piece at a time.
class GrowingHandler final : public Handler {
 public:
  GrowingHandler(uv_loop_t* loop, std::string path, std::string content, bool size_known,
                 size_t fail_after_pieces = 0)
      : loop_(loop), path_(std::move(path)), content_(std::move(content)),
        size_known_(size_known), fail_after_(fail_after_pieces) {
    siterelay::testing::WriteFile(path_, "");
  }

  Response Handle(const Request& req, const files::Peer&) override {
    if (req.target != "/grow") return ErrorResponse(404);
    Response r;
    r.later = [this](std::function<void(Response)> answer) {
      answer_ = std::move(answer);
      StartGrowing();
    };
    return r;
  }

 private:
  static constexpr size_t kPiece = 10000;

  void StartGrowing() {
    writer_ = ScopedFd(FileSystem::Default(), ::open(path_.c_str(), O_WRONLY | O_CLOEXEC));
    growing_ = std::make_shared<cache::GrowingFile>(
        ScopedFd(FileSystem::Default(), ::open(path_.c_str(), O_RDONLY | O_CLOEXEC)),
        size_known_ ? std::optional<uint64_t>(content_.size()) : std::nullopt);
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    uv_timer_start(
        &timer_, [](uv_timer_t* t) noexcept { static_cast<GrowingHandler*>(t->data)->Piece(); },
        0, 10);
  }

  void Piece() {
    if (fail_after_ > 0 && pieces_ == fail_after_) {
      StopTimer();
      growing_->Fail(Status::Unavailable("origin reset the connection"));
      return;
    }
    size_t n = std::min(kPiece, content_.size() - written_);
    ASSERT_EQ(::write(writer_.get(), content_.data() + written_, n), static_cast<ssize_t>(n));
    written_ += n;
    ++pieces_;
    growing_->Grow(written_);
    if (answer_) {  // the head goes out once the origin has answered
      Response r;
      r.growing = growing_;
      r.file = std::move(growing_->Dup()).value();
      r.file_length = content_.size();
      std::function<void(Response)> answer = std::move(answer_);
      answer_ = nullptr;
      answer(std::move(r));
    }
    if (written_ == content_.size()) {
      StopTimer();
      growing_->Complete();
    }
  }

  // Closed while the test's loop still runs, before the handler goes.
  void StopTimer() { uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr); }

  uv_loop_t* loop_;
  std::string path_;
  std::string content_;
  bool size_known_;
  size_t fail_after_;
  ScopedFd writer_;
  std::shared_ptr<cache::GrowingFile> growing_;
  std::function<void(Response)> answer_;
  uv_timer_t timer_{};
  size_t written_ = 0;
  size_t pieces_ = 0;
};

std::string Content(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 23);
  return s;
}

// Decodes a chunked body; nullopt unless it ends with the last chunk.
std::optional<std::string> Dechunk(std::string_view body) {
  std::string out;
  for (;;) {
    size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos) return std::nullopt;
    size_t n = std::stoul(std::string(body.substr(0, eol)), nullptr, 16);
    body.remove_prefix(eol + 2);
    if (n == 0) return body == "\r\n" ? std::optional<std::string>(out) : std::nullopt;
    if (body.size() < n + 2) return std::nullopt;
    out += body.substr(0, n);
    body.remove_prefix(n + 2);
  }
}

class GrowingBodyTest : public ServerTest {
 protected:
  std::string Get(const std::string& extra_request = "") {
    std::string got;
    RunClient([&] {
      int fd = Connect();
      std::string req = "GET /grow HTTP/1.1\r\nHost: x\r\n\r\n" + extra_request;
      ::send(fd, req.data(), req.size(), 0);
      ::shutdown(fd, SHUT_WR);
      got = ReadAll(fd);
      ::close(fd);
    });
    return got;
  }
  static std::string Body(const std::string& response) {
    return response.substr(response.find("\r\n\r\n") + 4);
  }
  siterelay::testing::TempDir dir_;
};

TEST_F(GrowingBodyTest, KnownSizeIsSentWithContentLengthAsItArrives) {
  std::string content = Content(45000);
  GrowingHandler h(loop_.get(), dir_ / "tmp", content, /*size_known=*/true);
  Start({}, &h);
  std::string got = Get();
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got.substr(0, 200);
  EXPECT_NE(got.find("Content-Length: 45000\r\n"), std::string::npos);
  EXPECT_EQ(Body(got), content);
}

TEST_F(GrowingBodyTest, UnknownSizeIsSentChunkedAndEndsWithTheLastChunk) {
  std::string content = Content(45000);
  GrowingHandler h(loop_.get(), dir_ / "tmp", content, /*size_known=*/false);
  Start({}, &h);
  std::string got = Get();
  EXPECT_NE(got.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << got.substr(0, 200);
  EXPECT_EQ(got.find("Content-Length"), std::string::npos);
  EXPECT_EQ(Dechunk(Body(got)), content);
}

TEST_F(GrowingBodyTest, FailedTransferCutsTheBodyShortOfContentLength) {
  std::string content = Content(45000);
  GrowingHandler h(loop_.get(), dir_ / "tmp", content, /*size_known=*/true,
                   /*fail_after_pieces=*/2);
  Start({}, &h);
  std::string got = Get();
  EXPECT_NE(got.find("Content-Length: 45000\r\n"), std::string::npos);
  EXPECT_EQ(Body(got), content.substr(0, 20000));  // what had arrived, then the close
}

TEST_F(GrowingBodyTest, FailedTransferNeverSendsTheLastChunk) {
  std::string content = Content(45000);
  GrowingHandler h(loop_.get(), dir_ / "tmp", content, /*size_known=*/false,
                   /*fail_after_pieces=*/2);
  Start({}, &h);
  std::string got = Get();
  EXPECT_NE(got.find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_EQ(Dechunk(Body(got)), std::nullopt);
  EXPECT_EQ(got.find("\r\n0\r\n\r\n"), std::string::npos);
}

TEST_F(GrowingBodyTest, KeepAliveCarriesOnAfterAGrowingBody) {
  std::string content = Content(25000);
  GrowingHandler h(loop_.get(), dir_ / "tmp", content, /*size_known=*/false);
  Start({}, &h);
  std::string got = Get("GET /other HTTP/1.1\r\nHost: x\r\n\r\n");  // pipelined
  size_t second = got.find("HTTP/1.1 404 Not Found\r\n");
  ASSERT_NE(second, std::string::npos) << got.substr(0, 300);
  EXPECT_EQ(Dechunk(Body(got.substr(0, second))), content);
}

}  // namespace
}  // namespace siterelay::http
