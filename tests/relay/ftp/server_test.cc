#include "relay/ftp/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "relay/base/uv.h"
#include "relay/files/uploads.h"
#include "tests/testing/cache.h"
#include "tests/testing/fault_fs.h"
#include "tests/testing/loop.h"
#include "tests/testing/temp_dir.h"

namespace siterelay::ftp {
namespace {

// A blocking control connection on a thread, from `source` (any 127.x address: all loopback).
class Control {
 public:
  Control(uint16_t port, const char* source = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in me{};
    me.sin_family = AF_INET;
    inet_pton(AF_INET, source, &me.sin_addr);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&me), sizeof me);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
  }
  ~Control() { ::close(fd_); }

  // The next complete reply (the last line of a multi-line one); "" on timeout or close.
  std::string Reply() {
    for (;;) {
      size_t nl = in_.find("\r\n");
      if (nl != std::string::npos) {
        std::string line = in_.substr(0, nl);
        in_.erase(0, nl + 2);
        if (line.size() >= 4 && line[3] == ' ') return line;
        continue;
      }
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return "";
      in_.append(buf, static_cast<size_t>(n));
    }
  }
  void Send(const std::string& bytes) {
    (void)::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }
  std::string Command(const std::string& line) {
    Send(line + "\r\n");
    return Reply();
  }
  void Login() {
    Reply();  // 220
    Command("USER PlcmSpIp");
    Command("PASS PlcmSpIp");
  }
  // PASV's port.
  uint16_t Pasv() {
    std::string r = Command("PASV");
    unsigned h1, h2, h3, h4, p1, p2;
    if (std::sscanf(r.c_str(), "227 Entering Passive Mode (%u,%u,%u,%u,%u,%u)", &h1, &h2, &h3,
                    &h4, &p1, &p2) != 6) {
      return 0;
    }
    return static_cast<uint16_t>(p1 * 256 + p2);
  }
  bool connected() const { return connected_; }
  int fd() const { return fd_; }

 private:
  int fd_;
  bool connected_ = false;
  std::string in_;
};

// A data connection to `port` from `source`; returns everything it reads until the close.
std::string ReadData(uint16_t port, const char* source = "127.0.0.1", bool* refused = nullptr) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in me{};
  me.sin_family = AF_INET;
  inet_pton(AF_INET, source, &me.sin_addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&me), sizeof me);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  std::string got;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) {
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(n));
    if (refused != nullptr) *refused = n < 0 || got.empty();
  } else if (refused != nullptr) {
    *refused = true;
  }
  ::close(fd);
  return got;
}

// `n` consecutive TCP ports free on 127.0.0.1 now, below the kernel's ephemeral range (32768 and
// up), so that no client connection of the test itself is given one of them meanwhile.
uint16_t FreePortRange(int n) {
  static unsigned seed = static_cast<unsigned>(::getpid());
  for (;;) {
    auto base = static_cast<uint16_t>(20000 + rand_r(&seed) % 12000);
    bool all = true;
    for (int i = 0; i < n && all; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(base + i));
      inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
      all = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(fd);
    }
    if (all) return base;
  }
}

// A data connection to `port` that sends `bytes` and closes.
void WriteData(uint16_t port, const std::string& bytes) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) {
    (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }
  ::close(fd);
}

// A TCP port free on 127.0.0.1 now (the kernel's pick): a passive range of our own that no other
// test process, nor any ephemeral port, is likely to hold.
uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class FtpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = siterelay::testing::OpenTestCache(dir_.path(), &clock_, &fs_);
    content_.assign(200000, 'x');
    for (size_t i = 0; i < content_.size(); ++i) content_[i] = static_cast<char>(i * 7 % 253);
    cache::Entry e;
    e.path = "fw/sip.ld";
    siterelay::testing::PutFile(cache_.get(), e, content_);
    Config config = Config::Defaults();
    config.accounts.push_back({"PlcmSpIp", "PlcmSpIp", "/"});
    config.accounts.push_back({"ops", "s3cret-ops", "/"});
    files_ = std::make_unique<files::FileService>(config, cache_.get(), &clock_);
    uploads_ = std::make_unique<files::Uploads>(loop_.get(), cache_.get(), &clock_);
  }

  void Start(FtpLimits limits = {}) {
    if (limits.passive_port_min == 50000) {  // a range of our own, away from other tests
      limits.passive_port_min = FreePort();
      limits.passive_port_max = limits.passive_port_min;
    }
    server_ = std::make_unique<FtpServer>(loop_.get(), files_.get(), uploads_.get(), limits);
    ASSERT_TRUE(server_->Listen({*ListenAddress::Parse("127.0.0.1:0")}, {}).ok());
    port_ = server_->bound()[0].port;
  }

  // Runs the loop until the client thread is done.
  void RunClient(const std::function<void()>& client) {
    siterelay::testing::RunWithClient(loop_.get(), client);
    server_->StopAccepting();
    server_->CloseAll();
    uv_run(loop_.get(), UV_RUN_DEFAULT);
  }

  // Plain FTP (AUTH TLS) on port_ and implicit FTPS on *implicit_port, a self-signed pair.
  void StartTls(FtpLimits limits, uint16_t* implicit_port) {
    auto ctx = tls::TlsContext::Create(TlsConfig{}, dir_.path());
    ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
    limits.passive_port_min = FreePort();
    limits.passive_port_max = limits.passive_port_min;
    server_ = std::make_unique<FtpServer>(loop_.get(), files_.get(), uploads_.get(), limits);
    server_->SetTls(*ctx);
    ASSERT_TRUE(server_
                    ->Listen({*ListenAddress::Parse("127.0.0.1:0")},
                             {*ListenAddress::Parse("127.0.0.1:0")})
                    .ok());
    *implicit_port = server_->bound_implicit()[0].port;
    port_ = server_->bound()[0].port;
  }

  siterelay::testing::TempDir dir_;
  siterelay::testing::FaultInjectingFileSystem fs_;  // passes everything through until armed
  ManualClock clock_;
  Loop loop_;
  std::unique_ptr<cache::Cache> cache_;
  std::unique_ptr<files::FileService> files_;
  std::unique_ptr<files::Uploads> uploads_;
  std::unique_ptr<FtpServer> server_;
  uint16_t port_ = 0;
  std::string content_;
};

TEST_F(FtpServerTest, PassiveRetrSendsTheFileAndEndsWith226) {
  Start();
  std::string got, opening, done;
  RunClient([&] {
    Control c(port_);
    c.Login();
    uint16_t data = c.Pasv();
    ASSERT_NE(data, 0);
    std::thread reader([&] { got = ReadData(data); });
    opening = c.Command("RETR fw/sip.ld");
    reader.join();
    done = c.Reply();
  });
  EXPECT_EQ(opening.substr(0, 4), "150 ");
  EXPECT_EQ(done.substr(0, 4), "226 ");
  EXPECT_EQ(got, content_);
}

TEST_F(FtpServerTest, PassivePortAcceptsOnlyTheControlPeer) {
  Start();
  std::string got, done;
  bool stranger_refused = false;
  RunClient([&] {
    Control c(port_);
    c.Login();
    uint16_t data = c.Pasv();
    ASSERT_NE(data, 0);
    // Another address races to the passive port first: it gets nothing.
    (void)ReadData(data, "127.0.0.2", &stranger_refused);
    std::thread reader([&] { got = ReadData(data); });
    c.Command("RETR fw/sip.ld");
    reader.join();
    done = c.Reply();
  });
  EXPECT_TRUE(stranger_refused);
  EXPECT_EQ(got, content_) << "the real client still gets the file";
  EXPECT_EQ(done.substr(0, 4), "226 ");
}

TEST_F(FtpServerTest, ExhaustedPassiveRangeIs425) {
  FtpLimits limits;
  limits.passive_port_min = FreePort();
  limits.passive_port_max = limits.passive_port_min;  // one port
  Start(limits);
  std::string second;
  RunClient([&] {
    Control a(port_), b(port_);
    a.Login();
    b.Login();
    ASSERT_NE(a.Pasv(), 0);
    second = b.Command("PASV");
  });
  EXPECT_EQ(second.substr(0, 4), "425 ");
}

TEST_F(FtpServerTest, NoLoginInTimeIs421) {
  FtpLimits limits;
  limits.login_timeout_ms = 200;
  Start(limits);
  std::string late;
  RunClient([&] {
    Control c(port_);
    c.Reply();            // 220
    c.Command("NOOP");    // activity does not extend the login deadline
    ::usleep(120'000);
    c.Command("NOOP");
    late = c.Reply();
  });
  EXPECT_EQ(late.substr(0, 4), "421 ");
}

TEST_F(FtpServerTest, FailedLoginsFromOneAddressWaitLongerEachTime) {
  FtpLimits limits;
  limits.login_delay_ms = 100;
  limits.max_login_delay_ms = 10'000;
  Start(limits);
  std::vector<int64_t> waits;
  std::string closed;
  RunClient([&] {
    Control c(port_);
    c.Reply();
    for (int i = 0; i < 3; ++i) {
      c.Command("USER PlcmSpIp");
      auto t0 = std::chrono::steady_clock::now();
      std::string r = c.Command("PASS nope");
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - t0).count();
      if (r.substr(0, 4) == "530 ") waits.push_back(ms);
    }
    closed = c.Command("NOOP");  // after max_login_failures the session is gone
  });
  ASSERT_EQ(waits.size(), 3u);
  EXPECT_GE(waits[0], 90);
  EXPECT_GE(waits[1], 190);
  EXPECT_GE(waits[2], 390);
  EXPECT_EQ(closed, "");
}

// Every phone knows PlcmSpIp. A guesser at another account must not reset its backoff by logging
// in with it between guesses; the good login takes back only its own account's failures.
TEST_F(FtpServerTest, AGoodLoginOfAnotherAccountDoesNotResetTheBackoff) {
  FtpLimits limits;
  limits.login_delay_ms = 100;
  limits.max_login_delay_ms = 10'000;
  Start(limits);
  int64_t third_wait = 0;
  std::string known, own;
  RunClient([&] {
    auto guess = [&](Control& c) {
      c.Command("USER ops");
      auto t0 = std::chrono::steady_clock::now();
      std::string r = c.Command("PASS guess");
      EXPECT_EQ(r.substr(0, 4), "530 ");
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - t0).count();
    };
    Control first(port_);
    first.Reply();
    guess(first);
    guess(first);
    Control phone(port_);
    phone.Reply();
    phone.Command("USER PlcmSpIp");
    known = phone.Command("PASS PlcmSpIp");
    Control second(port_);
    second.Reply();
    third_wait = guess(second);
    // The account's own good login does clear them.
    second.Command("USER ops");
    own = second.Command("PASS s3cret-ops");
  });
  EXPECT_EQ(known.substr(0, 4), "230 ");
  EXPECT_GE(third_wait, 390) << "the third failure of the address waits 4x, not 1x again";
  EXPECT_EQ(own.substr(0, 4), "230 ");
}

// RFC 959: 552 when the file is past its allowance (the client sent more than uploads.max_bytes),
// 452 when the relay is short of space (a full disk), which a client may try again later.
TEST_F(FtpServerTest, AnUploadPastTheCapIs552AndAFullDiskIs452) {
  FtpLimits limits;
  limits.max_upload_bytes = 1000;
  Start(limits);
  std::string opened, over_cap, disk_full;
  RunClient([&] {
    Control c(port_);
    c.Login();
    uint16_t port = c.Pasv();
    opened = c.Command("STOR 0004f282e824-app.log");
    WriteData(port, std::string(1001, 'a'));
    over_cap = c.Reply();
    fs_.FailNth(siterelay::testing::FaultInjectingFileSystem::Op::kFsync, 1, ENOSPC);
    port = c.Pasv();
    c.Command("STOR 0004f282e824-boot.log");
    WriteData(port, "boot line\n");
    disk_full = c.Reply();
  });
  EXPECT_EQ(opened.substr(0, 4), "150 ");
  EXPECT_EQ(over_cap.substr(0, 4), "552 ") << over_cap;
  EXPECT_EQ(disk_full.substr(0, 4), "452 ") << disk_full;
}

// The data timeout is for a client that stops sending. While the relay itself does not read an
// upload (the uploads' memory budget is spent by others), the client is not cut off however long
// that lasts; the upload goes on once the budget frees.
TEST_F(FtpServerTest, AnUploadTheBudgetHoldsBackOutlastsTheDataTimeout) {
  FtpLimits limits;
  limits.data_timeout_ms = 100;
  Start(limits);
  // Settings uploads that each hold a piece short of a chunk (kept in memory, nothing for the
  // pool) until the budget is spent; they give it back four data timeouts on.
  std::vector<std::shared_ptr<files::UploadSink>> holders;
  char mac[16];
  for (size_t i = 0; uploads_->held_bytes() < files::Uploads::kMemoryBytes; ++i) {
    std::snprintf(mac, sizeof mac, "0004f2%06zx", i);
    std::string path = std::string(mac) + "-phone.cfg";
    holders.push_back(uploads_->Begin(path, files::ClassifyUpload(path), 1 << 20));
    ASSERT_TRUE(holders.back()->WantsMore());
    ASSERT_TRUE(holders.back()->Write(std::string(60000, 'p')).ok());
  }
  // Watched from the loop: once the client has sent the upload, the budget is let go four data
  // timeouts later; no reply comes before that.
  std::atomic<bool> sent{false}, replied{false};
  bool replied_while_held = true;
  Timer watch(loop_.get()), later(loop_.get());
  std::function<void()> look = [&] {
    if (!sent) return watch.Start(5, look);
    later.Start(400, [&] {
      replied_while_held = replied;
      for (auto& h : holders) h->Abort();
      holders.clear();
    });
  };
  watch.Start(5, look);
  std::string opened, done;
  RunClient([&] {
    Control c(port_);
    c.Login();
    uint16_t port = c.Pasv();
    opened = c.Command("STOR 0004f282e824-app.log");
    WriteData(port, "a line of the phone's log\n");
    sent = true;
    done = c.Reply();
    replied = true;
  });
  EXPECT_EQ(opened.substr(0, 4), "150 ");
  EXPECT_FALSE(replied_while_held);
  EXPECT_EQ(done.substr(0, 4), "226 ") << done;
  EXPECT_TRUE(holders.empty()) << "the budget was held until the timer let it go";
}

// Once the last byte is in, the client waits for the upload to be filed, however long the disk
// takes: pieces still being written then wake the channel, which must not start the data timeout
// again.
TEST_F(FtpServerTest, AnUploadBeingFiledIsNotCutOffByTheDataTimeout) {
  FtpLimits limits;
  limits.data_timeout_ms = 100;
  Start(limits);
  using Op = siterelay::testing::FaultInjectingFileSystem::Op;
  fs_.Slow(Op::kWrite, 40);  // pieces queue up
  fs_.Slow(Op::kFsync, 300);
  std::string settings(400000, 's'), opened, done;
  RunClient([&] {
    Control c(port_);
    c.Login();
    uint16_t port = c.Pasv();
    opened = c.Command("STOR 0004f282e824-phone.cfg");
    WriteData(port, settings);
    done = c.Reply();
  });
  EXPECT_EQ(opened.substr(0, 4), "150 ");
  EXPECT_EQ(done.substr(0, 4), "226 ") << done;
  const cache::Entry* e = cache_->Lookup("0004f282e824-phone.cfg");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->size, settings.size());
}

// A client that gives up waiting for its 226 (its control connection closed while a slow disk
// files the upload) still has its upload stored: it sent all of it.
TEST_F(FtpServerTest, AnUploadIsFiledAfterTheClientStopsWaitingForItsAnswer) {
  using Op = siterelay::testing::FaultInjectingFileSystem::Op;
  Start();
  fs_.Slow(Op::kFsync, 200);
  std::string settings(100000, 's'), opened;
  RunClient([&] {
    Control c(port_);
    c.Login();
    uint16_t port = c.Pasv();
    int fsyncs = fs_.calls(Op::kFsync);
    opened = c.Command("STOR 0004f282e824-phone.cfg");
    WriteData(port, settings);
    // Filing has begun (the blob's fsync); then the control connection closes.
    for (int i = 0; i < 2000 && fs_.calls(Op::kFsync) == fsyncs; ++i) ::usleep(5000);
  });
  ASSERT_TRUE(loop_.Run().ok());  // the filing under way
  EXPECT_EQ(opened.substr(0, 4), "150 ");
  const cache::Entry* e = cache_->Lookup("0004f282e824-phone.cfg");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->size, settings.size());
}

TEST_F(FtpServerTest, SessionsPastThePerPeerLimitGet421) {
  FtpLimits limits;
  limits.max_sessions_per_peer = 2;
  Start(limits);
  std::string third, other;
  RunClient([&] {
    Control a(port_), b(port_);
    a.Reply();
    b.Reply();
    Control c(port_);
    third = c.Reply();
    Control d(port_, "127.0.0.2");  // another address is not held up
    other = d.Reply();
  });
  EXPECT_EQ(third.substr(0, 4), "421 ");
  EXPECT_EQ(other.substr(0, 4), "220 ");
}

TEST_F(FtpServerTest, AborEndsATransferWaitingForItsDataConnection) {
  Start();
  std::string r150, r426, r226, after;
  RunClient([&] {
    Control c(port_);
    c.Login();
    ASSERT_NE(c.Pasv(), 0);
    r150 = c.Command("RETR fw/sip.ld");  // the data connection never comes
    r426 = c.Command("ABOR");
    r226 = c.Reply();
    after = c.Command("NOOP");
  });
  EXPECT_EQ(r150.substr(0, 4), "150 ");
  EXPECT_EQ(r426.substr(0, 4), "426 ");
  EXPECT_EQ(r226.substr(0, 4), "226 ");
  EXPECT_EQ(after.substr(0, 4), "200 ") << "the session carries on";
}

TEST_F(FtpServerTest, ADataConnectionThatNeverComesIs425AfterTheAcceptTimeout) {
  FtpLimits limits;
  limits.accept_timeout_ms = 150;
  Start(limits);
  std::string r150, r;
  RunClient([&] {
    Control c(port_);
    c.Login();
    ASSERT_NE(c.Pasv(), 0);
    r150 = c.Command("RETR fw/sip.ld");
    r = c.Reply();
  });
  EXPECT_EQ(r150.substr(0, 4), "150 ");
  EXPECT_EQ(r.substr(0, 4), "425 ");
}

TEST_F(FtpServerTest, CommandsSentDuringATransferAreAnsweredAfterItInOrder) {
  Start();
  std::string got;
  std::vector<std::string> replies;
  RunClient([&] {
    Control c(port_);
    c.Login();
    uint16_t data = c.Pasv();
    ASSERT_NE(data, 0);
    replies.push_back(c.Command("RETR fw/sip.ld"));  // 150; the data connection is not there yet
    c.Send("SYST\r\nPWD\r\n");                   // pipelined behind the transfer
    got = ReadData(data);
    for (int i = 0; i < 3; ++i) replies.push_back(c.Reply());
  });
  EXPECT_EQ(got, content_);
  ASSERT_EQ(replies.size(), 4u);
  EXPECT_EQ(replies[1].substr(0, 4), "226 ");
  EXPECT_EQ(replies[2].substr(0, 4), "215 ");
  EXPECT_EQ(replies[3].substr(0, 4), "257 ");
}

TEST_F(FtpServerTest, AClientThatReadsNoRepliesIsNotReadEither) {
  Start();
  // On this thread, with the loop: the client pipelines NOOP and reads nothing. Each 6-byte NOOP
  // makes a 14-byte reply, so a relay that went on reading would grow without end.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  // Fixed socket buffers: what the two kernels hold on the way stays small whatever the host's
  // TCP autotuning allows, so what got through says what the relay took.
  int bufsize = 64 * 1024;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port_);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::string chunk;
  for (int i = 0; i < 1000; ++i) chunk += "NOOP\r\n";
  // The relay's own kernel send buffer holds replies too (autotuned up to tcp_wmem's maximum, 4 MiB
  // by default: about 2 MiB of NOOPs got through here); anything near 16 MiB is the relay reading.
  constexpr size_t kBudget = 16u << 20;
  size_t sent = 0;
  auto now = [] { return std::chrono::steady_clock::now(); };
  auto progress = now();
  while (sent < kBudget && now() - progress < std::chrono::milliseconds(500)) {
    uv_run(loop_.get(), UV_RUN_NOWAIT);
    size_t at = sent % chunk.size();
    ssize_t n = ::send(fd, chunk.data() + at, chunk.size() - at, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      progress = now();
    } else {
      ::usleep(1000);
    }
  }
  EXPECT_LT(sent, kBudget) << "the relay read on although its replies were not taken";
  // Back-pressure, not loss: once the client reads, every command it sent is answered.
  size_t want = 1 + sent / 6;  // the 220, then one 200 per whole NOOP line
  size_t lines = 0;
  std::string last;
  auto deadline = now() + std::chrono::seconds(30);
  while (lines < want && now() < deadline) {
    uv_run(loop_.get(), UV_RUN_NOWAIT);
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      ::usleep(200);
      continue;
    }
    lines += static_cast<size_t>(std::count(buf, buf + n, '\n'));
    last.assign(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(lines, want);
  EXPECT_NE(last.find("200 NOOP ok.\r\n"), std::string::npos);
  ::close(fd);
  server_->StopAccepting();
  server_->CloseAll();
  uv_run(loop_.get(), UV_RUN_DEFAULT);
}

TEST_F(FtpServerTest, ParallelFailedLoginsFromOneAddressAreAnsweredOneAtATime) {
  FtpLimits limits;
  limits.login_delay_ms = 100;
  limits.max_login_delay_ms = 10'000;
  Start(limits);
  std::vector<int64_t> waits;
  std::mutex mu;
  RunClient([&] {
    std::vector<std::thread> guessers;
    for (int i = 0; i < 4; ++i) {
      guessers.emplace_back([&, i] {
        Control c(port_);
        c.Reply();
        c.Command("USER PlcmSpIp");
        auto t0 = std::chrono::steady_clock::now();
        std::string r = c.Command("PASS guess" + std::to_string(i));
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
        std::lock_guard lock(mu);
        waits.push_back(r.substr(0, 4) == "530 " ? ms : -1);
      });
    }
    for (auto& t : guessers) t.join();
  });
  std::sort(waits.begin(), waits.end());
  ASSERT_EQ(waits.size(), 4u);
  // One at a time, each after the last one's backoff: 100, +200, +400, +800 ms. (Answered side by
  // side they came at 100, 200, 400 and 800 ms: four guesses in the time of one.)
  EXPECT_GE(waits[0], 90);
  EXPECT_GE(waits[1], 280);
  EXPECT_GE(waits[2], 660);
  EXPECT_GE(waits[3], 1400);
}

TEST_F(FtpServerTest, ARightPasswordWaitsWhileAFailedLoginFromItsAddressIsHeldBack) {
  FtpLimits limits;
  limits.login_delay_ms = 300;
  Start(limits);
  std::string verdict;
  int64_t ms = 0;
  RunClient([&] {
    Control guesser(port_), other(port_);
    guesser.Reply();
    other.Reply();
    guesser.Command("USER PlcmSpIp");
    other.Command("USER PlcmSpIp");
    guesser.Send("PASS wrong\r\n");
    ::usleep(50'000);  // the wrong one is checked first
    auto t0 = std::chrono::steady_clock::now();
    verdict = other.Command("PASS PlcmSpIp");
    ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
  });
  EXPECT_EQ(verdict.substr(0, 4), "230 ");
  // Were it answered at once, a guesser with many sessions would read a quick answer as a hit.
  EXPECT_GE(ms, 200) << "the right password was checked while the address was held back";
}

TEST_F(FtpServerTest, PortToAPrivilegedPortOfThePeerIsRefused) {
  Start();
  std::string port25, eprt1023, port1024;
  RunClient([&] {
    Control c(port_);
    c.Login();
    port25 = c.Command("PORT 127,0,0,1,0,25");
    eprt1023 = c.Command("EPRT |1|127.0.0.1|1023|");
    port1024 = c.Command("PORT 127,0,0,1,4,0");
  });
  EXPECT_EQ(port25.substr(0, 4), "504 ");
  EXPECT_EQ(eprt1023.substr(0, 4), "504 ");
  EXPECT_EQ(port1024.substr(0, 4), "200 ");
}

TEST_F(FtpServerTest, AFullPassiveRangeGivesAnUnusedPortToANewAddress) {
  FtpLimits limits;
  limits.passive_port_min = FreePortRange(2);
  limits.passive_port_max = static_cast<uint16_t>(limits.passive_port_min + 1);  // two ports
  Start(limits);
  std::string got, opening, done, lost, no_way_back;
  RunClient([&] {
    Control a1(port_), a2(port_), a3(port_);  // one address opens PASV and never connects
    a1.Login();
    a2.Login();
    a3.Login();
    ASSERT_NE(a1.Pasv(), 0);
    ASSERT_NE(a2.Pasv(), 0);
    Control b(port_, "127.0.0.2");  // a phone at another address
    b.Login();
    uint16_t data = b.Pasv();
    ASSERT_NE(data, 0) << "the range is full, but 127.0.0.1 holds two ports it does not use";
    no_way_back = a3.Command("PASV");  // one each now: nothing to take back
    std::thread reader([&] { got = ReadData(data, "127.0.0.2"); });
    opening = b.Command("RETR fw/sip.ld");
    reader.join();
    done = b.Reply();
    lost = a1.Command("RETR fw/sip.ld");  // its port went to b
  });
  EXPECT_EQ(no_way_back.substr(0, 4), "425 ");
  EXPECT_EQ(opening.substr(0, 4), "150 ");
  EXPECT_EQ(done.substr(0, 4), "226 ");
  EXPECT_TRUE(got == content_) << "b got " << got.size() << " bytes, not the file";
  EXPECT_EQ(lost.substr(0, 4), "425 ");
}

// A TLS handshake that never comes, after AUTH TLS or on the implicit FTPS port: no 421 can be
// sent in the clear any more, so the login timeout closes the session; it used to wait for the
// client for ever, holding its fd and its place in the per-address limit.
TEST_F(FtpServerTest, ATlsHandshakeThatNeverComesIsClosedAtTheLoginTimeout) {
  FtpLimits limits;
  limits.login_timeout_ms = 200;
  uint16_t implicit_port = 0;
  ASSERT_NO_FATAL_FAILURE(StartTls(limits, &implicit_port));
  std::string auth;
  int64_t explicit_ms = -1, implicit_ms = -1;
  auto ms_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now() - t)
        .count();
  };
  RunClient([&] {
    auto start = std::chrono::steady_clock::now();
    Control silent(implicit_port);  // connects, and never sends its ClientHello
    Control c(port_);
    c.Reply();  // 220
    auth = c.Command("AUTH TLS");
    // "" at the close (or after the 5 s receive timeout).
    if (silent.Reply().empty()) implicit_ms = ms_since(start);
    if (c.Reply().empty()) explicit_ms = ms_since(start);
  });
  EXPECT_EQ(auth.substr(0, 4), "234 ");
  EXPECT_GE(explicit_ms, 0);
  EXPECT_LT(explicit_ms, 3000) << "closed by the receive timeout, not the relay";
  EXPECT_GE(implicit_ms, 0);
  EXPECT_LT(implicit_ms, 3000);
}

// A silent implicit-FTPS connection holds the only handshake slot: a session's AUTH TLS gets its
// 234 at once, but its handshake waits, unread, until the silent one goes; then it carries on.
TEST_F(FtpServerTest, ATlsHandshakeWaitsForASlot) {
  FtpLimits limits;
  limits.max_handshakes = 1;
  uint16_t implicit_port = 0;
  ASSERT_NO_FATAL_FAILURE(StartTls(limits, &implicit_port));
  std::string auth, noop;
  int64_t handshake_ms = -1;
  RunClient([&] {
    auto silent = std::make_unique<Control>(implicit_port);  // never sends its ClientHello
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    Control c(port_);
    c.Reply();  // 220
    auth = c.Command("AUTH TLS");
    std::thread closer([&silent] {
      std::this_thread::sleep_for(std::chrono::milliseconds(600));
      silent.reset();
    });
    SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(cctx);
    SSL_set_fd(ssl, c.fd());
    auto start = std::chrono::steady_clock::now();
    if (SSL_connect(ssl) == 1) {
      handshake_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - start)
                         .count();
      SSL_write(ssl, "NOOP\r\n", 6);
      char buf[256];
      int n = SSL_read(ssl, buf, sizeof buf);
      if (n > 0) noop.assign(buf, static_cast<size_t>(n));
    }
    closer.join();
    SSL_free(ssl);
    SSL_CTX_free(cctx);
  });
  EXPECT_EQ(auth.substr(0, 4), "234 ");
  EXPECT_GE(handshake_ms, 400) << "the handshake went ahead while the only slot was held";
  EXPECT_EQ(noop.substr(0, 4), "200 ") << noop;
}

}  // namespace
}  // namespace siterelay::ftp
