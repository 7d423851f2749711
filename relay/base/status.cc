#include "relay/base/status.h"

#include <uv.h>

#include <cerrno>
#include <cstring>

namespace siterelay {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kNotFound: return "not found";
    case StatusCode::kAlreadyExists: return "already exists";
    case StatusCode::kPermissionDenied: return "permission denied";
    case StatusCode::kCorruption: return "corruption";
    case StatusCode::kIoError: return "I/O error";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kResourceExhausted: return "resource exhausted";
    case StatusCode::kUnimplemented: return "not implemented";
    case StatusCode::kFailedPrecondition: return "not set up";
    case StatusCode::kInternal: return "internal error";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out(StatusCodeName(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

Status Status::Annotate(std::string_view context) const {
  if (ok()) return *this;
  std::string m(context);
  if (!message_.empty()) {
    m += ": ";
    m += message_;
  }
  return Status(code_, std::move(m));
}

namespace {

StatusCode CodeForErrno(int e) {
  switch (e) {
    case ENOENT:
    case ENOTDIR: return StatusCode::kNotFound;
    case EEXIST: return StatusCode::kAlreadyExists;
    case EACCES:
    case EPERM:
    case EROFS: return StatusCode::kPermissionDenied;
    case EINVAL:
    case ENAMETOOLONG:
    case ELOOP: return StatusCode::kInvalidArgument;
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
    case ENOMEM: return StatusCode::kResourceExhausted;
    case EAGAIN:
    case ECONNREFUSED:
    case ECONNRESET:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH: return StatusCode::kUnavailable;
    default: return StatusCode::kIoError;
  }
}

}  // namespace

Status PosixError(std::string_view context, int error_number) {
  std::string m(context);
  m += ": ";
  m += std::strerror(error_number);
  return Status(CodeForErrno(error_number), std::move(m));
}

Status UvError(std::string_view context, int uv_error) {
  std::string m(context);
  m += ": ";
  m += uv_strerror(uv_error);
  // libuv error codes on Unix are negated errno values.
  return Status(CodeForErrno(-uv_error), std::move(m));
}

}  // namespace siterelay
