// An HTTP/1.1 server on one libuv loop: listeners, connections, keep-alive, pipelining,
// timeouts and connection limits. What to answer is a Handler's business (FileHandler for phones,
// the admin handler for operators); this file only moves bytes.
//
// Sockets are non-blocking fds of our own driven by uv_poll_t, rather than uv_tcp_t, so that a
// response body can go out with sendfile(2) straight from the cached object to the socket (and,
// later, through the TLS filter) without libuv's write queue in between.
//
// Memory per connection is bounded: the request head by limits.h, the response head by what the
// handler builds, and file bodies never pass through user space. A connection reads the next
// pipelined request only after its current response is sent, so a client that does not read
// cannot make the server buffer.
//
// Thread safety: everything here runs on the loop thread.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cache/growing_file.h"
#include "relay/base/config.h"
#include "relay/tls/handshake_slots.h"
#include "relay/base/fs.h"
#include "relay/base/status.h"
#include "relay/files/file_service.h"
#include "relay/http/request.h"
#include "relay/net/stream_socket.h"
#include "relay/tls/tls.h"

namespace siterelay::http {

struct Response;

// Where a request body goes when the handler wants one (uploads). The connection feeds it as the
// body arrives, pausing while WantsMore() is false, then calls Finish(); `done` gets the final
// response, usually later, once the body is durable. Abort() means the connection went away: no
// callback may run after it.
class BodySink {
 public:
  virtual ~BodySink() = default;
  // A non-OK status ends the upload with the response for it (413 for too large, 500 else).
  virtual Status Write(std::string_view data) = 0;
  virtual bool WantsMore() const = 0;
  virtual void OnWantsMore(std::function<void()> cb) = 0;
  virtual void Finish(std::function<void(Response)> done) = 0;
  virtual void Abort() = 0;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Date, Server, length
  std::string body;       // a small body (errors, JSON); ignored when `file` is set
  ScopedFd file;          // a body sent with sendfile from `file_offset`
  // Or a small file's bytes (files::OpenFile::bytes), sent from `file_offset` with the head.
  std::shared_ptr<const std::string> file_bytes;
  uint64_t file_offset = 0;
  uint64_t file_length = 0;
  // A body still arriving from the origin (cache/growing_file.h), sent from `file` as it grows:
  // with Content-Length when the origin said the size (then `file_length`), else chunked. A
  // transfer that fails cuts the connection, so the client never takes it for the whole file.
  std::shared_ptr<cache::GrowingFile> growing;  // shared with the transfer and other readers
  bool head_only = false;  // HEAD: headers as for GET, no body
  bool close = false;      // close the connection after this response
  // Set instead of a status: read the request body into this sink; its Finish() answers.
  std::shared_ptr<BodySink> sink;
  // Set instead of a status when the answer is not known yet (the origin is being asked): the
  // connection calls it once with `answer` and waits, reading nothing more, until answer runs
  // (possibly at once). `answer` does nothing if the connection closed meanwhile.
  std::function<void(std::function<void(Response)> answer)> later;
  // For the access log:
  std::string mac;
};

// A small text/plain response for an error status ("404 Not Found\n").
Response ErrorResponse(int status);

class Handler {
 public:
  virtual ~Handler() = default;
  virtual Response Handle(const Request& request, const files::Peer& peer) = 0;
};

struct ServerLimits {
  int64_t header_timeout_ms = 15'000;  // first byte of a request to its complete head; under
                                       // TLS also connect to the end of the handshake
  int64_t body_timeout_ms = 60'000;    // no progress reading a request body
  int64_t idle_timeout_ms = 60'000;    // keep-alive connection with nothing to do
  int64_t send_timeout_ms = 60'000;    // no progress sending a response
  size_t max_connections = 4096;
  // CONTRACT.md: at least 256 concurrent connections from one address (phones behind NAT).
  size_t max_connections_per_peer = 512;
  // HTTPS: TLS handshakes in progress at most, in all and from one address (tls::HandshakeSlots);
  // a connection past either waits for a slot, its handshake timeout running from the connect.
  // A storm of phones goes through at the CPU's pace (a handshake costs about a millisecond); one
  // flooding address holds a quarter of the slots at most.
  size_t max_handshakes = 256;
  size_t max_handshakes_per_peer = 64;
};

class HttpServer {
 public:
  HttpServer(uv_loop_t* loop, files::Protocol protocol, Handler* handler, ServerLimits limits,
             const files::FileService* access);  // `access` may be null: no allow_from check
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Serve HTTPS with this certificate from now on (existing connections keep theirs).
  void SetTls(std::shared_ptr<tls::TlsContext> ctx) { tls_ = std::move(ctx); }

  // Makes the listeners exactly `addresses`: binds the new ones, closes those no longer listed
  // (their connections carry on). On error nothing changes. Used at start and on SIGHUP.
  Status Listen(const std::vector<ListenAddress>& addresses);
  // The bound addresses, with the kernel's port where 0 was asked for.
  const std::vector<ListenAddress>& bound() const { return bound_; }

  // Stops accepting; connections in flight carry on. Idle keep-alive connections are closed.
  void StopAccepting();
  // Closes every connection now.
  void CloseAll();
  size_t connections() const { return connections_.size(); }
  // Responses sent in full, by status code (/metrics).
  const std::map<int, uint64_t>& responses() const { return responses_; }
  // Called (once) when StopAccepting() was called and the last connection has closed.
  void OnDrained(std::function<void()> cb) { on_drained_ = std::move(cb); }

 private:
  friend class Connection;
  void Accept(net::TcpListener* l);
  void Closed(class Connection* c);

  uv_loop_t* loop_;
  files::Protocol protocol_;
  Handler* handler_;
  ServerLimits limits_;
  const files::FileService* access_;
  std::vector<std::unique_ptr<net::TcpListener>> listeners_;
  std::vector<ListenAddress> bound_;
  std::map<Connection*, std::unique_ptr<Connection>> connections_;
  std::map<std::string, size_t> per_peer_;
  std::map<int, uint64_t> responses_;
  bool accepting_ = true;
  tls::HandshakeSlots handshakes_;
  std::shared_ptr<tls::TlsContext> tls_;
  std::function<void()> on_drained_;
};

}  // namespace siterelay::http
