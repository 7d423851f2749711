#include "relay/http/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>

#include "relay/base/uv.h"

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
// client is done. The loop wakes every 5 ms to notice that, never for longer than 10 s.
class ServerTest : public ::testing::Test {
 protected:
  void Start(ServerLimits limits) {
    server_ = std::make_unique<HttpServer>(loop_.get(), files::Protocol::kHttp, &handler_, limits,
                                           nullptr);
    ASSERT_TRUE(server_->Listen({*ListenAddress::Parse("127.0.0.1:0")}).ok());
    port_ = server_->bound()[0].port;
  }

  void RunClient(std::function<void()> client) {
    std::atomic<bool> done{false};
    std::thread t([&] {
      client();
      done = true;
    });
    uv_timer_t tick;
    uv_timer_init(loop_.get(), &tick);
    tick.data = &done;
    uv_timer_start(
        &tick,
        [](uv_timer_t* h) noexcept {
          if (static_cast<std::atomic<bool>*>(h->data)->load()) uv_stop(h->loop);
        },
        5, 5);
    uv_run(loop_.get(), UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
    t.join();
    server_->StopAccepting();
    server_->CloseAll();
    uv_run(loop_.get(), UV_RUN_DEFAULT);
  }

  int Connect() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port_);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    return fd;
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

}  // namespace
}  // namespace siterelay::http
