// The operator's listener ([admin]): /healthz now; the JSON API, /metrics and the console come
// with the console issue. Runs on the loop thread.
#pragma once

#include "relay/http/server.h"

namespace siterelay::admin {

class AdminHandler final : public http::Handler {
 public:
  http::Response Handle(const http::Request& request, const files::Peer& peer) override;
};

}  // namespace siterelay::admin
