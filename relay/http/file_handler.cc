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
template <typename C>
bool NotModified(const C& c, const std::string& etag, int64_t modified) {
  if (c.if_none_match) return EtagListMatches(*c.if_none_match, etag);
  if (c.if_modified_since) {
    auto since = ParseHttpDate(*c.if_modified_since);
    return since && modified <= *since;
  }
  return false;
}

// If-Range (RFC 9110 section 13.1.5): the Range applies only if the validator still matches.
template <typename C>
bool RangeStillValid(const C& c, const std::string& etag, int64_t modified) {
  const std::optional<std::string>& ir = c.if_range;
  if (!ir) return true;
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

  // A cached file is answered at once; a file the origin is asked for answers later. HEAD, and
  // HTTP/1.0 clients (which cannot tell a cut-off body of unknown length from a whole one),
  // wait for the whole file.
  struct Pending {
    Conditions conditions;
    std::optional<Response> now;
    std::function<void(Response)> answer;
  };
  auto pending = std::make_shared<Pending>();  // shared by the open callback and `later`
  pending->conditions = ConditionsOf(req);
  if (auto mac = files::MacFromFileName(files::BaseName(*path))) pending->conditions.mac = *mac;
  files::ReadMode mode = req.method == Method::kHead || req.minor_version == 0
                             ? files::ReadMode::kWhole
                             : files::ReadMode::kStream;
  auto opened = [this, pending, peer, path = *path](Result<files::OpenFile> file) {
    // An origin that is away was logged by sync once per transfer; this is about the disk.
    if (!file.ok() && !file.status().Is(StatusCode::kNotFound) &&
        !file.status().Is(StatusCode::kUnavailable)) {
      SR_LOG(kError) << "http: " << path << ": " << file.status().ToString();
    }
    Response r = FileResponse(pending->conditions, std::move(file));
    CountRead(peer, path, r);
    if (pending->answer) {
      pending->answer(std::move(r));
    } else {
      pending->now = std::move(r);
    }
  };
  files_->Open(*path, mode, std::move(opened), files::SmallFiles::kInMemory);
  if (pending->now) return std::move(*pending->now);
  Response later;
  later.later = [pending](std::function<void(Response)> answer) {
    if (pending->now) {
      answer(std::move(*pending->now));
      return;
    }
    pending->answer = std::move(answer);
  };
  return later;
}

void FileHandler::CountRead(const files::Peer& peer, const std::string& path, const Response& r) {
  if (r.status >= 500) {
    files_->CountFailed(peer, path);
    return;
  }
  if (r.head_only || (r.status != 200 && r.status != 206)) return;
  if (r.file.get() < 0 && !r.file_bytes) return;
  if (!r.growing) {
    files_->CountServed(peer, path, r.file_length);
    return;
  }
  // A body still arriving counts once it is whole (its size may not be known before).
  std::weak_ptr<cache::GrowingFile> weak = r.growing;
  r.growing->Wait(UINT64_MAX - 1, [files = files_, peer, path, weak] {
    auto g = weak.lock();
    if (g && g->complete()) files->CountServed(peer, path, g->written());
    if (g && g->failed()) files->CountFailed(peer, path);
  });
}

FileHandler::Conditions FileHandler::ConditionsOf(const Request& req) {
  Conditions c;
  c.head = req.method == Method::kHead;
  auto copy = [&req](const char* name) -> std::optional<std::string> {
    const std::string* v = req.Header(name);
    return v != nullptr ? std::optional<std::string>(*v) : std::nullopt;
  };
  c.if_none_match = copy("if-none-match");
  c.if_modified_since = copy("if-modified-since");
  c.range = copy("range");
  c.if_range = copy("if-range");
  return c;
}

Response FileHandler::FileResponse(const Conditions& c, Result<files::OpenFile> file) {
  Response r;
  r.mac = c.mac;
  if (!file.ok()) {
    int code = file.status().Is(StatusCode::kNotFound) ? 404
               : file.status().Is(StatusCode::kUnavailable) ? 502
                                                             : 500;
    Response e = ErrorResponse(code);
    e.mac = c.mac;
    return e;
  }
  r.head_only = c.head;
  std::string type =
      file->content_type.empty() ? std::string("application/octet-stream") : file->content_type;
  if (file->growing) {
    // Still arriving: the whole body as it lands, validators only once it is cached.
    r.headers.emplace_back("Content-Type", type);
    r.headers.emplace_back("Last-Modified", FormatHttpDate(file->modified));
    r.file_length = file->size;
    r.growing = std::move(file->growing);
    r.file = std::move(file->fd);
    return r;
  }
  // A phone's log grows, so it gets a weak validator from its size and time instead of a digest.
  std::string etag = file->has_digest ? "\"" + file->sha256.Hex() + "\""
                                      : "W/\"" + std::to_string(file->size) + "-" +
                                            std::to_string(file->modified) + "\"";
  r.headers.emplace_back("ETag", etag);
  r.headers.emplace_back("Last-Modified", FormatHttpDate(file->modified));
  r.headers.emplace_back("Accept-Ranges", "bytes");
  if (NotModified(c, etag, file->modified)) {
    r.status = 304;
    return r;
  }
  r.headers.emplace_back("Content-Type", type);
  r.file_offset = 0;
  r.file_length = file->size;
  if (c.range && RangeStillValid(c, etag, file->modified)) {
    ByteRange br = ParseRange(*c.range, file->size);
    if (br.kind == ByteRange::kUnsatisfiable) {
      Response bad = ErrorResponse(416);
      bad.mac = c.mac;
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
  r.file_bytes = std::move(file->bytes);
  return r;
}

}  // namespace siterelay::http
