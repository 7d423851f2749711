// Status and Result<T>: the one error type that crosses module boundaries.
//
// A Status is either OK or a code plus a one-line message meant for an operator's log. It is a
// small value type; copy it freely. Foreign error spaces (errno, libuv, OpenSSL, SQLite, libcurl)
// are translated into a Status in exactly one function each, next to the code that calls them:
// PosixError and UvError live here, the others in their modules.
//
// Result<T> holds either a T or a non-OK Status. Thread safety: none needed, they are values.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace siterelay {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   // bad input from a user, a peer or a config file
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,
  kCorruption,        // bytes on disk or from the origin are not what they claim to be
  kIoError,           // the operating system refused a file or socket operation
  kUnavailable,       // a peer or resource is temporarily not there; retrying may help
  kResourceExhausted, // a limit was reached (disk, size cap, connections)
  kUnimplemented,     // well-formed, but not something this program does (FTP's 504, 522)
  kFailedPrecondition,  // well-formed, but this relay is not set up for it (no sync configured)
  kInternal,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status PermissionDenied(std::string m) {
    return {StatusCode::kPermissionDenied, std::move(m)};
  }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status ResourceExhausted(std::string m) {
    return {StatusCode::kResourceExhausted, std::move(m)};
  }
  static Status Unimplemented(std::string m) {
    return {StatusCode::kUnimplemented, std::move(m)};
  }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  bool Is(StatusCode code) const { return code_ == code; }

  // "not found: objects/ab/abcd...: No such file or directory", or "ok".
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>".
  Status Annotate(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Translates an errno value. `context` names the operation and object, e.g. "open /var/x".
Status PosixError(std::string_view context, int error_number);

// Translates a negative libuv error code (UV_ENOENT, ...).
Status UvError(std::string_view context, int uv_error);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "a Result built from a Status must carry an error");
    if (status_.ok()) status_ = Status::Internal("Result built from an OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace siterelay

// Returns early from the calling function when `expr` yields a non-OK Status.
#define SR_RETURN_IF_ERROR(expr)                 \
  do {                                           \
    ::siterelay::Status _sr_status = (expr);     \
    if (!_sr_status.ok()) return _sr_status;     \
  } while (0)

#define SR_CONCAT_INNER(a, b) a##b
#define SR_CONCAT(a, b) SR_CONCAT_INNER(a, b)
// `SR_ASSIGN_OR_RETURN(auto x, Foo());` assigns the value or returns the error.
#define SR_ASSIGN_OR_RETURN(lhs, expr) \
  SR_ASSIGN_OR_RETURN_IMPL(SR_CONCAT(_sr_result_, __LINE__), lhs, expr)
#define SR_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
