#include "relay/http/file_handler.h"

#include "relay/base/http_date.h"
#include "relay/base/log.h"
#include "relay/files/path.h"
#include "relay/files/phone.h"
#include "relay/http/fields.h"

namespace siterelay::http {
namespace {

Response Unauthorized() {
  Response r = ErrorResponse(401);
  r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"siterelay\", charset=\"UTF-8\"");
  return r;
}

// RFC 9110 section 13.1.3: If-Modified-Since is evaluated only without If-None-Match.
bool NotModified(const Request& req, const std::string& etag, int64_t modified) {
  if (const std::string* inm = req.Header("if-none-match")) return EtagListMatches(*inm, etag);
  if (const std::string* ims = req.Header("if-modified-since")) {
    auto since = ParseHttpDate(*ims);
    return since && modified <= *since;
  }
  return false;
}

// If-Range (RFC 9110 section 13.1.5): the Range applies only if the validator still matches.
bool RangeStillValid(const Request& req, const std::string& etag, int64_t modified) {
  const std::string* ir = req.Header("if-range");
  if (ir == nullptr) return true;
  if (!ir->empty() && (ir->front() == '"' || ir->starts_with("W/"))) return *ir == etag;
  auto date = ParseHttpDate(*ir);
  return date && *date == modified;
}

// files::UploadSink as the HTTP server's BodySink: statuses become responses.
class HttpUploadSink final : public BodySink {
 public:
  explicit HttpUploadSink(std::shared_ptr<files::UploadSink> sink) : sink_(std::move(sink)) {}
  Status Write(std::string_view data) override { return sink_->Write(data); }
  bool WantsMore() const override { return sink_->WantsMore(); }
  void OnWantsMore(std::function<void()> cb) override { sink_->OnWantsMore(std::move(cb)); }
  void Abort() override { sink_->Abort(); }
  void Finish(std::function<void(Response)> done) override {
    sink_->Finish([done = std::move(done)](Result<files::UploadResult> r) {
      if (!r.ok()) {
        SR_LOG(kError) << "upload: " << r.status().ToString();
        done(ErrorResponse(r.status().Is(StatusCode::kResourceExhausted) ? 507 : 500));
        return;
      }
      Response ok;
      ok.status = r->created ? 201 : 204;
      done(std::move(ok));
    });
  }

 private:
  std::shared_ptr<files::UploadSink> sink_;
};

}  // namespace

Response FileHandler::Put(const Request& req, const files::Peer& peer, const std::string& path) {
  files::UploadName name = files::ClassifyUpload(files::BaseName(path));
  if (name.kind == files::UploadName::kNone) {
    // Only the phone upload names of CONTRACT.md are accepted, anywhere in the tree.
    SR_LOG(kInfo) << "http: " << peer.ip << ": upload refused: " << path
                  << " is not a phone upload name";
    return ErrorResponse(403);
  }
  if (!req.chunked && !req.content_length) return ErrorResponse(411);
  if (req.content_length && *req.content_length > max_upload_bytes_) return ErrorResponse(413);
  const std::string* ua = req.Header("user-agent");
  files_->RecordSighting(peer, path, ua != nullptr ? *ua : "");
  Response r;
  r.mac = name.mac;
  r.sink = std::make_shared<HttpUploadSink>(uploads_->Begin(path, name, max_upload_bytes_));
  return r;
}

Response FileHandler::Handle(const Request& req, const files::Peer& peer) {
  if (req.method != Method::kGet && req.method != Method::kHead && req.method != Method::kPut) {
    Response r = ErrorResponse(405);
    r.headers.emplace_back("Allow", "GET, HEAD, PUT");
    return r;
  }
  const Account* account = files_->Anonymous();
  if (files_->RequiresCredentials()) {
    const std::string* auth = req.Header("authorization");
    auto creds = auth != nullptr ? ParseBasicAuth(*auth) : std::nullopt;
    if (!creds) return Unauthorized();
    account = files_->Authenticate(creds->user, creds->password);
    if (account == nullptr) {
      SR_LOG(kInfo) << "http: " << peer.ip << ": wrong password for user \"" << creds->user
                    << "\"";
      return Unauthorized();
    }
  }
  std::string_view target = req.target;
  target = target.substr(0, target.find_first_of("?#"));
  auto path = files_->Resolve(*account, target, /*encoded=*/true);
  if (!path.ok()) {
    SR_LOG(kInfo) << "http: " << peer.ip << ": refused path: " << path.status().message();
    return ErrorResponse(path.status().Is(StatusCode::kPermissionDenied) ? 403 : 400);
  }
  if (req.method == Method::kPut) return Put(req, peer, *path);
  const std::string* ua = req.Header("user-agent");
  files_->RecordSighting(peer, *path, ua != nullptr ? *ua : "");

  auto file = files_->Open(*path);
  Response r;
  if (auto mac = files::MacFromFileName(files::BaseName(*path))) r.mac = *mac;
  if (!file.ok()) {
    if (file.status().Is(StatusCode::kNotFound)) {
      Response nf = ErrorResponse(404);
      nf.mac = r.mac;
      return nf;
    }
    SR_LOG(kError) << "http: " << *path << ": " << file.status().ToString();
    return ErrorResponse(500);
  }
  // A phone's log grows, so it gets a weak validator from its size and time instead of a digest.
  std::string etag = file->has_digest ? "\"" + file->sha256.Hex() + "\""
                                      : "W/\"" + std::to_string(file->size) + "-" +
                                            std::to_string(file->modified) + "\"";
  std::string last_modified = FormatHttpDate(file->modified);
  r.headers.emplace_back("ETag", etag);
  r.headers.emplace_back("Last-Modified", last_modified);
  r.headers.emplace_back("Accept-Ranges", "bytes");
  r.head_only = req.method == Method::kHead;
  if (NotModified(req, etag, file->modified)) {
    r.status = 304;
    return r;
  }
  r.headers.emplace_back("Content-Type", file->content_type.empty()
                                             ? std::string("application/octet-stream")
                                             : file->content_type);
  r.file_offset = 0;
  r.file_length = file->size;
  if (const std::string* range = req.Header("range");
      range != nullptr && RangeStillValid(req, etag, file->modified)) {
    ByteRange br = ParseRange(*range, file->size);
    if (br.kind == ByteRange::kUnsatisfiable) {
      Response bad = ErrorResponse(416);
      bad.headers.emplace_back("Content-Range", "bytes */" + std::to_string(file->size));
      return bad;
    }
    if (br.kind == ByteRange::kSatisfiable) {
      r.status = 206;
      r.file_offset = br.first;
      r.file_length = br.last - br.first + 1;
      r.headers.emplace_back("Content-Range", "bytes " + std::to_string(br.first) + "-" +
                                                  std::to_string(br.last) + "/" +
                                                  std::to_string(file->size));
    }
  }
  r.file = std::move(file->fd);
  return r;
}

}  // namespace siterelay::http
