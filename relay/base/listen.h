// What every listening front-end (HTTP, HTTPS, TFTP, later FTP) does with its `listen` list:
// turn a ListenAddress into a sockaddr, and make the running listeners exactly the configured
// ones (at start and on SIGHUP) without touching those that stay. Loop thread only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <functional>
#include <memory>
#include <vector>

#include "relay/base/config.h"
#include "relay/base/status.h"

namespace siterelay {

// `a` as a socket address (a.port included); returns its length.
inline socklen_t ToSockaddr(const ListenAddress& a, sockaddr_storage* ss) {
  *ss = sockaddr_storage{};
  if (a.ipv6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(a.port);
    inet_pton(AF_INET6, a.host.c_str(), &in6->sin6_addr);
    return sizeof *in6;
  }
  auto* in4 = reinterpret_cast<sockaddr_in*>(ss);
  in4->sin_family = AF_INET;
  in4->sin_port = htons(a.port);
  inet_pton(AF_INET, a.host.c_str(), &in4->sin_addr);
  return sizeof *in4;
}

// Makes `running` (listeners with a `configured` and an `actual` ListenAddress) exactly `wanted`:
// binds the addresses not running yet with `bind`, hands those no longer wanted to `close`, and
// fills `bound` with the actual addresses. If any bind fails, what was bound is closed again and
// nothing changes.
template <typename L>
Status ReconcileListeners(std::vector<std::unique_ptr<L>>* running,
                          const std::vector<ListenAddress>& wanted,
                          const std::function<Result<std::unique_ptr<L>>(const ListenAddress&)>& bind,
                          const std::function<void(std::unique_ptr<L>)>& close,
                          std::vector<ListenAddress>* bound) {
  std::vector<std::unique_ptr<L>> added;
  for (const ListenAddress& a : wanted) {
    bool have = false;
    for (const auto& l : *running) have = have || l->configured == a;
    if (have) continue;
    auto l = bind(a);
    if (!l.ok()) {
      for (auto& done : added) close(std::move(done));
      return l.status();
    }
    added.push_back(std::move(l).value());
  }
  for (auto it = running->begin(); it != running->end();) {
    bool keep = false;
    for (const ListenAddress& a : wanted) keep = keep || (*it)->configured == a;
    if (keep) {
      ++it;
    } else {
      close(std::move(*it));
      it = running->erase(it);
    }
  }
  for (auto& l : added) running->push_back(std::move(l));
  bound->clear();
  for (const auto& l : *running) bound->push_back(l->actual);
  return Status::Ok();
}

}  // namespace siterelay
