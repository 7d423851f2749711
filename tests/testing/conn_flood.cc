// Many TCP connections that do nothing, for the hostile-client tests
// (tests/integration/hostile_http_test.sh): opens N connections to HOST:PORT from SOURCE
// (a loopback address such as 127.0.0.1), optionally sends each the first bytes of a request
// and then nothing more (slowloris; with --send, the bytes of FILE: half a TLS ClientHello, say),
// holds them for SECONDS, and reports how many the server still had open at the end (no FIN or
// reset seen). Plain POSIX, none of siterelay's libraries.
//
// usage: conn_flood SOURCE HOST PORT N SECONDS [--partial | --send FILE]
// prints: "opened O of N; open after S s: K"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr,
                 "usage: conn_flood SOURCE HOST PORT N SECONDS [--partial | --send FILE]\n");
    return 2;
  }
  const char* source = argv[1];
  const char* host = argv[2];
  int port = std::atoi(argv[3]);
  int n = std::atoi(argv[4]);
  int seconds = std::atoi(argv[5]);
  bool partial = argc > 6 && std::strcmp(argv[6], "--partial") == 0;
  std::string send_bytes;
  if (argc > 7 && std::strcmp(argv[6], "--send") == 0) {
    std::ifstream in(argv[7], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "conn_flood: cannot read %s\n", argv[7]);
      return 2;
    }
    send_bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  sockaddr_in from{}, to{};
  from.sin_family = to.sin_family = AF_INET;
  inet_pton(AF_INET, source, &from.sin_addr);
  inet_pton(AF_INET, host, &to.sin_addr);
  to.sin_port = htons(static_cast<uint16_t>(port));
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      ::close(fd);
      continue;
    }
    if (partial) (void)::send(fd, "GET / HTTP/1.1\r\nHo", 18, MSG_NOSIGNAL);
    if (!send_bytes.empty()) (void)::send(fd, send_bytes.data(), send_bytes.size(), MSG_NOSIGNAL);
    fds.push_back(fd);
  }
  ::sleep(static_cast<unsigned>(seconds));
  int open = 0;
  for (int fd : fds) {
    pollfd p{fd, POLLIN, 0};
    bool closed = false;
    if (::poll(&p, 1, 0) > 0) {
      char buf[4096];
      ssize_t r;
      // Whatever the server sent (a 408, an error page) and then its FIN or reset.
      while ((r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
      }
      closed = r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    }
    if (!closed) ++open;
    ::close(fd);
  }
  std::printf("opened %zu of %d; open after %d s: %d\n", fds.size(), n, seconds, open);
  return 0;
}
