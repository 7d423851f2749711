// FileHandler: what phones get over HTTP and HTTPS (CONTRACT.md "What phones get"): GET and
// HEAD of cached files through FileService, with ETag (the sha256), Last-Modified, single
// Range, If-None-Match / If-Modified-Since and Basic auth. Runs on the loop thread.
#pragma once

#include "relay/files/file_service.h"
#include "relay/http/server.h"

namespace siterelay::http {

class FileHandler final : public Handler {
 public:
  explicit FileHandler(files::FileService* files) : files_(files) {}
  Response Handle(const Request& request, const files::Peer& peer) override;

 private:
  files::FileService* files_;
};

}  // namespace siterelay::http
