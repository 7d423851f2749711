// A TLS 1.3 client that asks for KeyUpdates (RFC 8446 section 4.6.3) as fast as it can and never
// reads the server's answers, for tests/integration/hostile_tls_test.sh: the TLS 1.3 form of a
// renegotiation flood. Each request makes the server queue a KeyUpdate of its own; a server that
// keeps reading while nobody takes those grows without bound. Plain OpenSSL, none of siterelay's
// libraries.
//
// usage: tls_flood HOST PORT SECONDS
// prints: "sent N key update requests; cut off after M ms" when the server closed the connection,
//         "sent N key update requests; still open after S s" otherwise.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: tls_flood HOST PORT SECONDS\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // the server's reset is the expected end
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  // A small receive window: the server's answers back up into its own buffers sooner.
  int small = 8192;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
  inet_pton(AF_INET, argv[1], &to.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    std::perror("connect");
    return 1;
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) {
    std::fprintf(stderr, "handshake failed\n");
    ERR_print_errors_fp(stderr);
    return 1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::seconds(std::atoi(argv[3]));
  long sent = 0;
  bool cut = false;
  while (std::chrono::steady_clock::now() < deadline) {
    // One request at a time: a new one only once the last has left the client (until then
    // OpenSSL is "still in init" and SSL_key_update refuses).
    if (!SSL_in_init(ssl) && SSL_get_key_update_type(ssl) == SSL_KEY_UPDATE_NONE &&
        SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1) {
      ERR_print_errors_fp(stderr);
      break;
    }
    int rc = SSL_do_handshake(ssl);
    if (rc == 1) {
      ++sent;
      continue;
    }
    int err = SSL_get_error(ssl, rc);
    if (err == SSL_ERROR_WANT_WRITE) {
      pollfd p{fd, POLLOUT, 0};
      (void)::poll(&p, 1, 100);
      if ((p.revents & (POLLERR | POLLHUP)) != 0) {
        cut = true;
        break;
      }
      continue;
    }
    cut = true;  // a reset or EPIPE: the server closed the connection
    break;
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start)
                .count();
  if (cut) {
    std::printf("sent %ld key update requests; cut off after %lld ms\n", sent,
                static_cast<long long>(ms));
  } else {
    std::printf("sent %ld key update requests; still open after %lld ms\n", sent,
                static_cast<long long>(ms));
  }
  ::close(fd);
  return 0;
}
