// tftp_lossy_client: a TFTP reader for the integration tests that loses every Nth datagram on
// purpose, the way a bad Wi-Fi bridge or a busy switch does, and recovers as RFC 7440 says: on a
// gap it acknowledges the last block it has, once, so the server resends from there.
//
// usage: tftp_lossy_client HOST PORT FILE OUT DROP_EVERY BLKSIZE WINDOWSIZE
// Exit 0 with OUT written when the whole file arrived; 1 with a message otherwise.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "relay/tftp/packet.h"

using namespace siterelay::tftp;

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: %s HOST PORT FILE OUT DROP_EVERY BLKSIZE WINDOWSIZE\n", argv[0]);
    return 2;
  }
  const long drop_every = std::atol(argv[5]);
  const size_t blksize = static_cast<size_t>(std::atol(argv[6]));
  const long window = std::atol(argv[7]);
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
  inet_pton(AF_INET, argv[1], &server.sin_addr);

  Request rrq;
  rrq.filename = argv[3];
  rrq.options = {{"blksize", argv[6]}, {"windowsize", argv[7]}};
  std::string out;
  EncodeRequest(rrq, &out);
  ::sendto(fd, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&server), sizeof server);

  sockaddr_in tid{};
  bool have_tid = false;
  auto ack = [&](uint16_t block) {
    std::string a;
    EncodeAck(block, &a);
    ::sendto(fd, a.data(), a.size(), 0, reinterpret_cast<sockaddr*>(&tid), sizeof tid);
  };
  std::string file;
  uint64_t expected = 1;  // absolute number of the next block wanted
  long in_window = 0, received = 0, dropped = 0;
  bool gap_reported = false;
  for (int silences = 0; silences < 10;) {
    char buf[70000];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) {  // silence: say again where we are
      ++silences;
      if (have_tid) ack(static_cast<uint16_t>(expected - 1));
      continue;
    }
    silences = 0;
    if (drop_every > 0 && ++received % drop_every == 0) {
      ++dropped;
      continue;  // lost on the way
    }
    std::span<const uint8_t> d(reinterpret_cast<const uint8_t*>(buf), static_cast<size_t>(n));
    if (!have_tid) {
      tid = from;
      have_tid = true;
    }
    auto op = PeekOpcode(d);
    if (!op.ok()) continue;
    if (*op == Opcode::kError) {
      auto e = ParseError(d);
      std::fprintf(stderr, "server error: %s\n", e.ok() ? e->message.c_str() : "?");
      return 1;
    }
    if (*op == Opcode::kOack) {
      if (expected == 1) ack(0);
      continue;
    }
    if (*op != Opcode::kData) continue;
    auto data = ParseData(d, blksize);
    if (!data.ok()) continue;
    if (data->block != static_cast<uint16_t>(expected)) {
      // A gap (or a repeat): report the last block we have, once per gap (RFC 7440).
      if (!gap_reported) ack(static_cast<uint16_t>(expected - 1));
      gap_reported = true;
      in_window = 0;
      continue;
    }
    gap_reported = false;
    file.append(reinterpret_cast<const char*>(data->payload.data()), data->payload.size());
    ++expected;
    bool last = data->payload.size() < blksize;
    if (last || ++in_window == window) {
      ack(data->block);
      in_window = 0;
    }
    if (last) {
      std::ofstream(argv[4], std::ios::binary) << file;
      std::fprintf(stderr, "%zu bytes, %ld datagrams dropped\n", file.size(), dropped);
      return 0;
    }
  }
  std::fprintf(stderr, "gave up after %zu bytes\n", file.size());
  return 1;
}
