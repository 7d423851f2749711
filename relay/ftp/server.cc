#include "relay/ftp/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "relay/base/listen.h"
#include "relay/base/log.h"
#include "relay/ftp/session.h"
#include "relay/net/stream_socket.h"

namespace siterelay::ftp {
namespace {

// A peer's failed logins are forgotten after this long without another one.
constexpr uint64_t kForgetFailuresMs = 15 * 60 * 1000;
// Addresses whose failed logins are remembered, at most.
constexpr size_t kMaxFailureRecords = 4096;
constexpr size_t kMaxUsersPerFailureRecord = 16;  // names kept per address
constexpr size_t kMaxUserKeyBytes = 64;  // of each: a USER line may be 2 KiB

}  // namespace

FtpServer::FtpServer(uv_loop_t* loop, files::FileService* files, files::Uploads* uploads,
                     FtpLimits limits)
    : loop_(loop),
      files_(files),
      uploads_(uploads),
      limits_(limits),
      handshakes_(limits.max_handshakes, limits.max_handshakes_per_peer) {
  if (limits_.passive_port_min > limits_.passive_port_max) {
    std::swap(limits_.passive_port_min, limits_.passive_port_max);
  }
  next_passive_ = limits_.passive_port_min;
}

FtpServer::~FtpServer() = default;  // the owner closed everything and ran the loop first

Result<std::unique_ptr<net::TcpListener>> FtpServer::Bind(const ListenAddress& a,
                                                         bool implicit_tls) {
  if (implicit_tls && tls_ == nullptr) {
    return Status::InvalidArgument("implicit FTPS on " + a.ToString() + " needs a certificate");
  }
  return net::OpenTcpListener(
      loop_, a, [this, implicit_tls](net::TcpListener* l) { Accept(l, implicit_tls); });
}

Status FtpServer::Listen(const std::vector<ListenAddress>& plain,
                         const std::vector<ListenAddress>& implicit_tls) {
  auto close = [](std::unique_ptr<net::TcpListener> l) { net::CloseTcpListener(std::move(l)); };
  auto bind_plain = [this](const ListenAddress& a) { return Bind(a, false); };
  auto bind_implicit = [this](const ListenAddress& a) { return Bind(a, true); };
  SR_RETURN_IF_ERROR(
      ReconcileListeners<net::TcpListener>(&plain_, plain, bind_plain, close, &bound_plain_));
  Status s = ReconcileListeners<net::TcpListener>(&implicit_, implicit_tls, bind_implicit,
                                                  close, &bound_implicit_);
  if (!s.ok()) {
    // Both lists or neither: the plain listeners go back to what they were.
    (void)ReconcileListeners<net::TcpListener>(&plain_, configured_plain_, bind_plain, close,
                                               &bound_plain_);
    return s;
  }
  configured_plain_ = plain;
  return Status::Ok();
}

void FtpServer::Accept(net::TcpListener* l, bool implicit_tls) {
  net::AcceptConnections(l, "ftp", [this] { return accepting_; },
                         [this, implicit_tls](int fd, const sockaddr_storage& ss) {
    files::Peer peer = files::Peer::FromSockaddr(
        implicit_tls ? files::Protocol::kFtps : files::Protocol::kFtp,
        reinterpret_cast<const sockaddr*>(&ss));
    if (!files_->Allowed(peer)) {
      SR_LOG(kInfo) << "ftp: " << peer.ip << " refused by allow_from";
      ::close(fd);
      return;
    }
    auto pp = per_peer_.find(peer.ip);
    if (sessions_.size() >= limits_.max_sessions ||
        (pp != per_peer_.end() && pp->second >= limits_.max_sessions_per_peer)) {
      SR_LOG(kWarning) << "ftp: " << peer.ip << " refused: session limit reached";
      if (!implicit_tls) {
        static constexpr char kBusy[] = "421 Too many connections; try again later.\r\n";
        (void)::send(fd, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL);
      }
      ::close(fd);
      return;
    }
    sockaddr_storage local{};
    socklen_t local_len = sizeof local;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len);
    ++per_peer_[peer.ip];
    auto s = std::make_unique<Session>(this, fd, std::move(peer), implicit_tls, ss, local);
    Session* raw = s.get();
    sessions_.emplace(raw, std::move(s));
    Status st = raw->Start();
    if (!st.ok()) {
      SR_LOG(kWarning) << "ftp: " << st.ToString();
      raw->Close();
    }
  });
}

void FtpServer::Closed(Session* s) {
  auto it = per_peer_.find(s->peer().ip);
  if (it != per_peer_.end() && --it->second == 0) per_peer_.erase(it);
  sessions_.erase(s);
  CheckDrained();
}

void FtpServer::CheckDrained() {
  if (!accepting_ && sessions_.empty() && on_drained_) {
    auto cb = std::move(on_drained_);
    on_drained_ = nullptr;
    cb();
  }
}

void FtpServer::StopAccepting() {
  if (!accepting_) return;
  accepting_ = false;
  for (auto& l : plain_) net::CloseTcpListener(std::move(l));
  for (auto& l : implicit_) net::CloseTcpListener(std::move(l));
  plain_.clear();
  implicit_.clear();
  bound_plain_.clear();
  bound_implicit_.clear();
  std::vector<Session*> idle;
  for (auto& [raw, s] : sessions_) {
    if (raw->idle()) idle.push_back(raw);
  }
  for (Session* s : idle) s->Close();
  CheckDrained();
}

void FtpServer::CloseAll() {
  std::vector<Session*> all;
  for (auto& [raw, s] : sessions_) all.push_back(raw);
  for (Session* s : all) s->Close();
}

Result<ScopedFd> FtpServer::OpenPassive(const sockaddr_storage& local, const std::string& peer_ip,
                                         uint16_t* port) {
  auto fd = BindPassive(local, port);
  if (fd.ok() || !fd.status().Is(StatusCode::kResourceExhausted)) return fd;
  // The range is full. Ports opened and never used are shared out between addresses, so one that
  // asks PASV after PASV without ever connecting cannot lock everybody else out.
  Session* donor = PassiveDonor(peer_ip);
  if (donor == nullptr) return fd;
  donor->GiveUpPassive();
  return BindPassive(local, port);
}

Result<ScopedFd> FtpServer::BindPassive(const sockaddr_storage& local, uint16_t* port) {
  char host[INET6_ADDRSTRLEN] = {};
  ListenAddress a;
  a.ipv6 = local.ss_family == AF_INET6;
  if (a.ipv6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&local)->sin6_addr, host,
              sizeof host);
  } else {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&local)->sin_addr, host, sizeof host);
  }
  a.host = host;
  uint32_t span = static_cast<uint32_t>(limits_.passive_port_max - limits_.passive_port_min) + 1;
  Status last = Status::ResourceExhausted("no passive port free");
  // The next port after the last one handed out, round the range once: a port just closed is not
  // reused at once (a late packet of the last transfer cannot land in the next one).
  for (uint32_t i = 0; i < span; ++i) {
    uint16_t p = next_passive_;
    next_passive_ = p >= limits_.passive_port_max ? limits_.passive_port_min
                                                  : static_cast<uint16_t>(p + 1);
    a.port = p;
    auto fd = net::ListenTcp(a, 1, port);
    if (fd.ok()) return fd;
    last = fd.status();
  }
  return Status::ResourceExhausted("every passive port in " +
                                   std::to_string(limits_.passive_port_min) + "-" +
                                   std::to_string(limits_.passive_port_max) +
                                   " is taken (last: " + last.message() + ")");
}

Session* FtpServer::PassiveDonor(const std::string& peer_ip) const {
  std::map<std::string, size_t> held;  // unused passive ports by address
  for (const auto& [s, owned] : sessions_) {
    if (s->HoldsIdlePassive()) ++held[s->peer().ip];
  }
  auto top = std::max_element(held.begin(), held.end(),
                              [](const auto& x, const auto& y) { return x.second < y.second; });
  auto mine = held.find(peer_ip);
  size_t own = mine == held.end() ? 0 : mine->second;
  // At least two more than the asker: after the move the donor still holds as many as the asker,
  // so it could not take the port back (no ping-pong between two addresses).
  if (top == held.end() || top->second < own + 2) return nullptr;
  Session* oldest = nullptr;
  uint64_t oldest_since = 0;
  for (const auto& [s, owned] : sessions_) {
    uint64_t since = 0;
    if (s->peer().ip != top->first || !s->HoldsIdlePassive(&since)) continue;
    if (oldest == nullptr || since < oldest_since) {
      oldest = s;
      oldest_since = since;
    }
  }
  return oldest;
}

int64_t FtpServer::LoginWaitMs(const std::string& ip) const {
  auto it = failures_.find(ip);
  if (it == failures_.end()) return 0;
  uint64_t now = uv_now(loop_);
  return it->second.not_before_ms > now ? static_cast<int64_t>(it->second.not_before_ms - now) : 0;
}

int64_t FtpServer::LoginFailed(const std::string& ip, const std::string& user) {
  uint64_t now = uv_now(loop_);
  Failures& f = failures_[ip];
  if (now - f.last_ms >= kForgetFailuresMs) f = Failures{};
  ++f.count;
  // A guesser that names a new user each time is still counted per address; only the map of
  // names is capped, folding the excess into one entry no login clears.
  std::string key = user.substr(0, kMaxUserKeyBytes);
  if (f.by_user.size() < kMaxUsersPerFailureRecord || f.by_user.count(key) != 0) {
    ++f.by_user[key];
  }
  f.last_ms = now;
  int64_t delay = limits_.login_delay_ms;
  for (int i = 1; i < f.count && delay < limits_.max_login_delay_ms; ++i) delay *= 2;
  delay = std::min(delay, limits_.max_login_delay_ms);
  // Until this failure's 530 is out, no other password from the address is checked.
  f.not_before_ms = now + static_cast<uint64_t>(delay);
  // Bounded: a flood from many addresses cannot grow this without end. Past the cap the
  // forgotten go first, then the oldest.
  if (failures_.size() > kMaxFailureRecords) {
    for (auto it = failures_.begin(); it != failures_.end();) {
      it = now - it->second.last_ms >= kForgetFailuresMs ? failures_.erase(it) : std::next(it);
    }
    while (failures_.size() > kMaxFailureRecords) {
      auto oldest = std::min_element(failures_.begin(), failures_.end(), [](auto& x, auto& y) {
        return x.second.last_ms < y.second.last_ms;
      });
      failures_.erase(oldest);
    }
  }
  return delay;
}

void FtpServer::LoginSucceeded(const std::string& ip, const std::string& user) {
  auto it = failures_.find(ip);
  if (it == failures_.end()) return;
  Failures& f = it->second;
  auto u = f.by_user.find(user.substr(0, kMaxUserKeyBytes));
  if (u == f.by_user.end()) return;
  f.count -= u->second;
  f.by_user.erase(u);
  if (f.count <= 0) failures_.erase(it);
}

}  // namespace siterelay::ftp
