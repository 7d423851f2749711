// systemd's side of sd_notify(3), for tests/integration/systemd_test.sh: binds a Unix datagram
// socket at PATH and prints each message it receives on one line ("READY=1"), flushed, until
// SECONDS have passed. Plain POSIX, none of siterelay's libraries.
//
// usage: notify_listener PATH SECONDS
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: notify_listener PATH SECONDS\n");
    return 2;
  }
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (std::strlen(argv[1]) >= sizeof sa.sun_path) {
    std::fprintf(stderr, "notify_listener: path too long\n");
    return 2;
  }
  std::strcpy(sa.sun_path, argv[1]);
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ::unlink(argv[1]);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::perror("notify_listener: bind");
    return 1;
  }
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(std::atoi(argv[2]));
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) continue;
    std::fwrite(buf, 1, static_cast<size_t>(n), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  ::unlink(argv[1]);
  return 0;
}
