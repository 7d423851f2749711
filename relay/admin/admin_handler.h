// The operator's listener ([admin]): /healthz and /metrics now; the JSON API and the console come
// with the rest of the console issue. Runs on the loop thread.
#pragma once

#include <functional>

#include "relay/admin/metrics.h"
#include "relay/http/server.h"

namespace siterelay::admin {

class AdminHandler final : public http::Handler {
 public:
  // `metrics` fills a snapshot of the relay's counters when /metrics is asked for.
  explicit AdminHandler(std::function<Metrics()> metrics = {}) : metrics_(std::move(metrics)) {}
  http::Response Handle(const http::Request& request, const files::Peer& peer) override;

 private:
  std::function<Metrics()> metrics_;
};

}  // namespace siterelay::admin
