#include "relay/tftp/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <set>
#include <thread>

#include "relay/base/uv.h"
#include "tests/testing/cache.h"
#include "tests/testing/loop.h"
#include "tests/testing/temp_dir.h"

namespace siterelay::tftp {
namespace {

// A blocking UDP client on a thread, the way a phone's TFTP stack behaves.
class Client {
 public:
  explicit Client(uint16_t server_port) : port_(server_port) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in me{};
    me.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &me.sin_addr);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&me), sizeof me);
    SetTimeout(2000);
  }
  ~Client() { ::close(fd_); }

  void SetTimeout(int ms) {
    timeval tv{ms / 1000, (ms % 1000) * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void SendTo(const std::string& d, uint16_t port) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    ::sendto(fd_, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  }
  // One datagram and the port it came from; empty on timeout.
  std::string Recv(uint16_t* from_port = nullptr) {
    char buf[70000];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n <= 0) return "";
    if (from_port != nullptr) *from_port = ntohs(from.sin_port);
    return std::string(buf, static_cast<size_t>(n));
  }
  void Rrq(const std::string& file) {
    Request r;
    r.filename = file;
    std::string d;
    EncodeRequest(r, &d);
    SendTo(d, port_);
  }
  // A classic RFC 1350 download: ACK every block; on silence, ACK the last block again.
  std::string Download(const std::string& file, int* datagrams = nullptr) {
    Rrq(file);
    std::string got;
    uint16_t expect = 1, tid = 0;
    int count = 0;
    for (int silent = 0; silent < 20;) {
      uint16_t from = 0;
      std::string d = Recv(&from);
      if (d.empty()) {
        ++silent;
        if (tid != 0) Ack(static_cast<uint16_t>(expect - 1), tid);
        continue;
      }
      silent = 0;
      ++count;
      auto data = ParseData({reinterpret_cast<const uint8_t*>(d.data()), d.size()}, 65464);
      if (!data.ok()) return "<not DATA: " + d + ">";
      tid = from;
      if (data->block == expect) {
        got.append(reinterpret_cast<const char*>(data->payload.data()), data->payload.size());
        ++expect;
        Ack(data->block, tid);
        if (data->payload.size() < 512) break;
      } else {
        Ack(static_cast<uint16_t>(expect - 1), tid);  // a repeat: say again where we are
      }
    }
    if (datagrams != nullptr) *datagrams = count;
    return got;
  }
  // Sends a WRQ for `file` with windowsize `ws` and returns the server's first answer's port.
  std::string Wrq(const std::string& file, uint16_t ws, uint16_t* tid) {
    Request r;
    r.write = true;
    r.filename = file;
    r.options.emplace_back("windowsize", std::to_string(ws));
    std::string d;
    EncodeRequest(r, &d);
    SendTo(d, port_);
    return Recv(tid);
  }
  void Data(uint16_t block, std::string_view payload, uint16_t port) {
    std::string d("\0\3", 2);
    d.push_back(static_cast<char>(block >> 8));
    d.push_back(static_cast<char>(block & 0xff));
    d.append(payload);
    SendTo(d, port);
  }
  void Ack(uint16_t block, uint16_t port) {
    std::string d;
    EncodeAck(block, &d);
    SendTo(d, port);
  }

 private:
  uint16_t port_;
  int fd_;
};

class TftpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = siterelay::testing::OpenTestCache(dir_.path(), &clock_);
    content_.resize(300 * 512 + 100);
    for (size_t i = 0; i < content_.size(); ++i) content_[i] = static_cast<char>(i * 31 % 251);
    cache::Entry e;
    e.path = "sip.ld";
    siterelay::testing::PutFile(cache_.get(), e, content_);
    files_ = std::make_unique<files::FileService>(Config::Defaults(), cache_.get(), &clock_);
    uploads_ = std::make_unique<files::Uploads>(loop_.get(), cache_.get(), &clock_);
  }

  void Start(TftpLimits limits = {}) {
    server_ = std::make_unique<TftpServer>(loop_.get(), files_.get(), uploads_.get(), limits);
    ASSERT_TRUE(server_->Listen({*ListenAddress::Parse("127.0.0.1:0")}).ok());
    port_ = server_->bound()[0].port;
  }

  // Runs the loop until the client thread is done (bounded by the client's own timeouts).
  void RunClient(const std::function<void()>& client) {
    siterelay::testing::RunWithClient(loop_.get(), client);
    server_->StopAccepting();
    server_->CloseAll();
    uv_run(loop_.get(), UV_RUN_DEFAULT);
  }

  siterelay::testing::TempDir dir_;
  ManualClock clock_;
  Loop loop_;
  std::unique_ptr<cache::Cache> cache_;
  std::unique_ptr<files::FileService> files_;
  std::unique_ptr<files::Uploads> uploads_;
  std::unique_ptr<TftpServer> server_;
  uint16_t port_ = 0;
  std::string content_;
};

TEST_F(TftpServerTest, LostBlocksAreResentAndTheFileArrivesWhole) {
  TftpLimits limits;
  limits.retransmit_ms = 50;
  Start(limits);
  std::set<uint64_t> dropped;
  server_->SetDropFilter([&](uint64_t block) {  // every 7th block, the first time it goes out
    return block % 7 == 0 && dropped.insert(block).second;
  });
  std::string got;
  RunClient([&] { got = Client(port_).Download("sip.ld"); });
  EXPECT_EQ(got, content_);
  EXPECT_EQ(dropped.size(), 301u / 7);
}

// The ACK number in datagram `d`, or -1 when it is not an ACK.
int AckOf(const std::string& d) {
  auto a = ParseAck({reinterpret_cast<const uint8_t*>(d.data()), d.size()});
  return a.ok() ? a->block : -1;
}

TEST_F(TftpServerTest, WindowedUploadIsAckedOncePerWindowAndAfterAGap) {
  TftpLimits limits;
  limits.allow_uploads = true;
  limits.retransmit_ms = 5000;  // no timeout inside this test: every ACK is one we caused
  Start(limits);
  std::string body(10 * 512 + 7, 'x');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  auto block = [&](uint16_t n) { return std::string_view(body).substr((n - 1u) * 512u, 512); };
  std::vector<int> acks;
  RunClient([&] {
    Client c(port_);
    uint16_t tid = 0;
    std::string oack = c.Wrq("0004f2aabbcc-phone.cfg", 4, &tid);
    ASSERT_EQ(oack.substr(0, 2), std::string("\0\6", 2)) << "an OACK for windowsize";
    EXPECT_NE(oack.find("windowsize"), std::string::npos);
    c.SetTimeout(300);
    for (uint16_t n = 1; n <= 4; ++n) c.Data(n, block(n), tid);  // a whole window: one ACK
    acks.push_back(AckOf(c.Recv()));
    c.Data(5, block(5), tid);
    c.Data(7, block(7), tid);  // 6 lost on the way: the relay says it has 5, once
    c.Data(8, block(8), tid);
    acks.push_back(AckOf(c.Recv()));
    for (uint16_t n = 6; n <= 9; ++n) c.Data(n, block(n), tid);  // the window again from 6
    acks.push_back(AckOf(c.Recv()));
    c.Data(10, block(10), tid);
    c.Data(11, std::string_view(body).substr(10 * 512), tid);  // short: the end
    acks.push_back(AckOf(c.Recv()));
    acks.push_back(c.Recv().empty() ? 0 : -2);  // and nothing more
  });
  EXPECT_EQ(acks, (std::vector<int>{4, 5, 9, 11, 0}));
  const cache::Entry* e = cache_->Lookup("0004f2aabbcc-phone.cfg");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(siterelay::testing::ReadFile(cache_->store().PathOf(e->sha256)), body);
}

TEST_F(TftpServerTest, RequestsPastTheLimitWaitForATransferToEnd) {
  TftpLimits limits;
  limits.max_transfers = 1;
  Start(limits);
  // Neither client repeats its RRQ: the second gets its file only because the relay held the
  // request until the first transfer ended.
  std::string a, b;
  RunClient([&] {
    std::thread second([&] { b = Client(port_).Download("sip.ld"); });
    a = Client(port_).Download("sip.ld");
    second.join();
  });
  EXPECT_EQ(a, content_);
  EXPECT_EQ(b, content_);
  EXPECT_EQ(server_->queued(), 0u);
}

TEST_F(TftpServerTest, AWaitingRequestIsForgottenAfterQueueMs) {
  TftpLimits limits;
  limits.max_transfers = 1;
  limits.queue_ms = 100;
  limits.retransmit_ms = 5000;
  Start(limits);
  std::string late;
  RunClient([&] {
    Client holder(port_);
    holder.Rrq("sip.ld");  // takes the only slot
    uint16_t tid = 0;
    ASSERT_FALSE(holder.Recv(&tid).empty());
    Client waiting(port_);
    waiting.Rrq("sip.ld");  // waits ...
    ::usleep(250'000);      // ... past queue_ms
    std::string err;
    EncodeError(ErrorCode::kNotDefined, "bye", &err);
    holder.SendTo(err, tid);  // the slot frees up, too late for the waiting request
    waiting.SetTimeout(400);
    late = waiting.Recv();
  });
  EXPECT_EQ(late, "") << "an expired request is not started";
  EXPECT_EQ(server_->queued(), 0u);
}

TEST_F(TftpServerTest, DuplicateAckNeverResendsData) {
  TftpLimits limits;
  limits.retransmit_ms = 5000;  // no timeout inside this test
  Start(limits);
  int extra = -1;
  RunClient([&] {
    Client c(port_);
    c.Rrq("sip.ld");
    uint16_t tid = 0;
    std::string first = c.Recv(&tid);
    ASSERT_FALSE(first.empty());
    c.Ack(1, tid);
    c.Ack(1, tid);  // the duplicate (Sorcerer's Apprentice bait)
    c.Ack(1, tid);
    c.SetTimeout(300);
    extra = 0;
    while (!c.Recv().empty()) ++extra;
  });
  EXPECT_EQ(extra, 1) << "block 2 once, whatever the number of ACKs for block 1";
}

TEST_F(TftpServerTest, StrangerGetsError5AndTheTransferCarriesOn) {
  Start();
  std::string got;
  std::string stranger_heard;
  RunClient([&] {
    Client c(port_);
    c.Rrq("sip.ld");
    uint16_t tid = 0;
    std::string first = c.Recv(&tid);
    ASSERT_FALSE(first.empty());
    Client stranger(port_);
    stranger.Ack(1, tid);  // from another port: not this transfer's client
    stranger_heard = stranger.Recv();
    c.Ack(1, tid);
    auto d = c.Recv();
    got = d.substr(0, 4);
  });
  auto err = ParseError({reinterpret_cast<const uint8_t*>(stranger_heard.data()),
                         stranger_heard.size()});
  ASSERT_TRUE(err.ok());
  EXPECT_EQ(err->code, ErrorCode::kUnknownTid);
  EXPECT_EQ(got, std::string("\0\3\0\2", 4)) << "block 2 still came to the real client";
}

// The error code of datagram `d`, or -1 when it is not an ERROR.
int ErrorCodeOf(const std::string& d) {
  auto e = ParseError({reinterpret_cast<const uint8_t*>(d.data()), d.size()});
  return e.ok() ? static_cast<int>(e->code) : -1;
}

TEST_F(TftpServerTest, TheListenPortAnswersOnlyRequests) {
  Start();
  std::vector<int> heard;
  RunClient([&] {
    Client c(port_);
    // None of these is a request; above all an ERROR answered with an ERROR would let one spoofed
    // datagram bounce between two servers for ever (CVE-2024-2169).
    c.SendTo(std::string("\0\5\0\0bye\0", 8), port_);       // ERROR
    c.SendTo(std::string("\0\5\0", 3), port_);              // a truncated ERROR
    c.SendTo(std::string("\0\4\0\1", 4), port_);            // ACK
    c.SendTo(std::string("\0\3\0\1data", 8), port_);        // DATA
    c.SendTo(std::string("\0\6tsize\0\x30\0", 10), port_);  // OACK (tsize 0)
    c.SendTo(std::string("\0\11xx", 4), port_);             // opcode 9
    c.SendTo(std::string("\0", 1), port_);                  // shorter than an opcode
    c.SendTo(std::string("\0\1sip.ld", 8), port_);          // an RRQ without its NULs: error 4
    c.SetTimeout(300);
    for (std::string d = c.Recv(); !d.empty(); d = c.Recv()) heard.push_back(ErrorCodeOf(d));
  });
  EXPECT_EQ(heard, (std::vector<int>{4})) << "one answer, to the malformed request";
}

TEST_F(TftpServerTest, AnErrorFromAStrangerIsNotAnsweredAndTheTransferCarriesOn) {
  Start();
  std::vector<int> stranger_heard;
  std::string second;
  RunClient([&] {
    Client c(port_);
    c.Rrq("sip.ld");
    uint16_t tid = 0;
    ASSERT_FALSE(c.Recv(&tid).empty());
    Client stranger(port_);
    std::string err;
    EncodeError(ErrorCode::kNotDefined, "go away", &err);
    stranger.SendTo(err, tid);  // not answered, and the transfer is not ended by it
    stranger.Ack(1, tid);       // answered with error 5
    stranger.SetTimeout(300);
    for (std::string d = stranger.Recv(); !d.empty(); d = stranger.Recv()) {
      stranger_heard.push_back(ErrorCodeOf(d));
    }
    c.Ack(1, tid);
    second = c.Recv().substr(0, 4);
  });
  EXPECT_EQ(stranger_heard, (std::vector<int>{5}));
  EXPECT_EQ(second, std::string("\0\3\0\2", 4)) << "block 2 still came to the real client";
}

TEST_F(TftpServerTest, APeerThatAskedALongTimeoutAndVanishedIsGivenUpAfterMaxSilence) {
  TftpLimits limits;
  limits.max_silence_ms = 300;
  Start(limits);
  std::string first, then;
  RunClient([&] {
    Client c(port_);
    Request r;
    r.filename = "sip.ld";
    r.options.emplace_back("timeout", "10");  // resends 10 s apart, six of them: a minute
    std::string d;
    EncodeRequest(r, &d);
    c.SendTo(d, port_);
    first = c.Recv();
    c.SetTimeout(3000);
    then = c.Recv();  // and then the client is gone
  });
  EXPECT_EQ(first.substr(0, 2), std::string("\0\6", 2)) << "the OACK";
  EXPECT_EQ(ErrorCodeOf(then), 0) << "given up after max_silence_ms, not after a minute";
  EXPECT_EQ(server_->transfers(), 0u);
}

TEST_F(TftpServerTest, MissingFileIsError1AndEscapeIsError2) {
  Start();
  std::string missing, escape;
  RunClient([&] {
    Client c(port_);
    c.Rrq("0004f2aabbcc.cfg");
    missing = c.Recv();
    c.Rrq("../etc/passwd");
    escape = c.Recv();
  });
  auto e1 = ParseError({reinterpret_cast<const uint8_t*>(missing.data()), missing.size()});
  auto e2 = ParseError({reinterpret_cast<const uint8_t*>(escape.data()), escape.size()});
  ASSERT_TRUE(e1.ok());
  ASSERT_TRUE(e2.ok());
  EXPECT_EQ(e1->code, ErrorCode::kFileNotFound);
  EXPECT_EQ(e2->code, ErrorCode::kAccessViolation);
}

}  // namespace
}  // namespace siterelay::tftp
