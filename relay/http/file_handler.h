// FileHandler: what phones get over HTTP and HTTPS (CONTRACT.md "What phones get"): GET and
// HEAD of cached files through FileService, with ETag (the sha256), Last-Modified, single
// Range, If-None-Match / If-Modified-Since and Basic auth; PUT of the phone upload names through
// Uploads, answered only once the bytes are durable. Runs on the loop thread.
#pragma once

#include "relay/files/file_service.h"
#include "relay/files/uploads.h"
#include "relay/http/server.h"

namespace siterelay::http {

class FileHandler final : public Handler {
 public:
  FileHandler(files::FileService* files, files::Uploads* uploads, uint64_t max_upload_bytes)
      : files_(files), uploads_(uploads), max_upload_bytes_(max_upload_bytes) {}
  Response Handle(const Request& request, const files::Peer& peer) override;

 private:
  Response Put(const Request& request, const files::Peer& peer, const std::string& path);

  files::FileService* files_;
  files::Uploads* uploads_;
  uint64_t max_upload_bytes_;
};

}  // namespace siterelay::http
