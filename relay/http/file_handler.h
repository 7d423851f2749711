// FileHandler: what phones get over HTTP and HTTPS (CONTRACT.md "What phones get"): GET and
// HEAD of files through FileService, with ETag (the sha256), Last-Modified, single Range,
// If-None-Match / If-Modified-Since and Basic auth; PUT of the phone upload names through
// Uploads, answered only once the bytes are durable. A file still arriving from the origin is
// streamed as it grows, with no ETag yet (its digest is not known) and without Range (the whole
// file, 200): validators and ranges apply again once it is cached. Runs on the loop thread.
#pragma once

#include <optional>
#include <string>

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
  // What a GET or HEAD answer depends on besides the file, kept while the origin is asked.
  struct Conditions {
    bool head = false;
    std::optional<std::string> if_none_match, if_modified_since, range, if_range;
    std::string mac;
  };
  static Conditions ConditionsOf(const Request& request);
  static Response FileResponse(const Conditions& c, Result<files::OpenFile> file);
  // Tells FileService how a read went: a body about to be sent counts as served (a growing one
  // once it is whole), a 5xx or a cut-off growing body as failed.
  void CountRead(const files::Peer& peer, const std::string& path, const Response& r);
  Response Put(const Request& request, const files::Peer& peer, const std::string& path);

  files::FileService* files_;
  files::Uploads* uploads_;
  uint64_t max_upload_bytes_;
};

}  // namespace siterelay::http
