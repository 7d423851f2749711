#include "tests/testing/fake_origin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>

namespace siterelay::testing {
namespace {

bool SendAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::send(fd, p, n, MSG_NOSIGNAL);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

std::string Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

}  // namespace

FakeOrigin::FakeOrigin(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::listen(listen_fd_, 128) != 0) {
    std::abort();
  }
  socklen_t len = sizeof sa;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len);
  port_ = ntohs(sa.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

FakeOrigin::~FakeOrigin() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : conns_) ::shutdown(fd, SHUT_RDWR);
  }
  for (std::thread& t : threads_) t.join();
}

void FakeOrigin::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    conns_.push_back(fd);
    threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

void FakeOrigin::Serve(int fd) {
  std::string in;
  char buf[8192];
  while (!stopping_) {
    size_t end;
    while ((end = in.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        Forget(fd);
        return;
      }
      in.append(buf, static_cast<size_t>(n));
    }
    OriginRequest req;
    std::string head = in.substr(0, end);
    in.erase(0, end + 4);
    size_t line_end = head.find("\r\n");
    std::string first = head.substr(0, line_end);
    size_t sp1 = first.find(' '), sp2 = first.rfind(' ');
    req.method = first.substr(0, sp1);
    req.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      std::string line = head.substr(pos, e - pos);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        size_t v = line.find_first_not_of(' ', colon + 1);
        req.headers[name] = v == std::string::npos ? "" : line.substr(v);
      }
      pos = e + 2;
    }
    // A request body with Content-Length (what libcurl sends for PUT and POST of a buffer).
    if (const std::string* cl = req.Header("content-length")) {
      size_t want = static_cast<size_t>(std::stoull(*cl));
      while (in.size() < want) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
          Forget(fd);
          return;
        }
        in.append(buf, static_cast<size_t>(n));
      }
      req.body = in.substr(0, want);
      in.erase(0, want);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(req);
    }
    OriginReply reply = handler_(req);
    if (reply.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(reply.delay_ms));
    std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " " + Reason(reply.status) +
                      "\r\n";
    for (const auto& [name, value] : reply.headers) out += name + ": " + value + "\r\n";
    bool bodyless = reply.status == 304 || req.method == "HEAD";
    if (reply.content_length && !bodyless) {
      out += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n";
    }
    if (!reply.content_length) out += "Connection: close\r\n";
    out += "\r\n";
    if (!SendAll(fd, out.data(), out.size())) break;
    if (bodyless) continue;
    size_t n = std::min(reply.body.size(), reply.cut_after);
    size_t step = reply.drip_bytes > 0 ? reply.drip_bytes : std::max<size_t>(n, 1);
    bool ok = true;
    for (size_t off = 0; off < n && ok && !stopping_; off += step) {
      ok = SendAll(fd, reply.body.data() + off, std::min(step, n - off));
      if (reply.drip_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(reply.drip_ms));
    }
    if (!ok || n < reply.body.size() || !reply.content_length) break;
  }
  ::shutdown(fd, SHUT_RDWR);
  Forget(fd);
}

void FakeOrigin::Forget(int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  conns_.erase(std::remove(conns_.begin(), conns_.end(), fd), conns_.end());
  ::close(fd);
}

}  // namespace siterelay::testing
