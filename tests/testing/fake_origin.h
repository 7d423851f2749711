// FakeOrigin: a scripted HTTP/1.1 origin on 127.0.0.1 for the sync tests, with the faults a WAN
// and a bad origin produce (a reset mid-body, a stall, a slow drip, wrong lengths). Each request
// is answered with what the test's handler returns; every request is recorded, so tests assert on
// what the origin received.
//
// It runs on its own threads with blocking sockets (one per connection, keep-alive honoured), so
// the relay's loop under test runs undisturbed on the test's thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace siterelay::testing {

struct OriginRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;  // with Content-Length

  const std::string* Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? nullptr : &it->second;
  }
};

struct OriginReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool content_length = true;   // false: the body ends with the connection
  size_t cut_after = std::string::npos;  // close the connection after this many body bytes
  int delay_ms = 0;             // before the response head
  size_t drip_bytes = 0;        // with drip_ms: send the body this many bytes at a time
  int drip_ms = 0;
};

class FakeOrigin {
 public:
  using Handler = std::function<OriginReply(const OriginRequest&)>;

  explicit FakeOrigin(Handler handler);
  ~FakeOrigin();
  FakeOrigin(const FakeOrigin&) = delete;
  FakeOrigin& operator=(const FakeOrigin&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
  std::vector<OriginRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void AcceptLoop();
  void Serve(int fd);
  void Forget(int fd);  // closes a connection and stops tracking it

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::vector<OriginRequest> requests_;
  std::vector<int> conns_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace siterelay::testing
