#include "relay/base/status.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <cerrno>

namespace siterelay {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  SR_ASSIGN_OR_RETURN(int h, Half(x));
  SR_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = Status::NotFound("sip.ld");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.Is(StatusCode::kNotFound));
  EXPECT_EQ(s.ToString(), "not found: sip.ld");
  EXPECT_EQ(s.Annotate("open").message(), "open: sip.ld");
}

TEST(StatusTest, PosixErrorMapsErrno) {
  EXPECT_TRUE(PosixError("open x", ENOENT).Is(StatusCode::kNotFound));
  EXPECT_TRUE(PosixError("write", ENOSPC).Is(StatusCode::kResourceExhausted));
  EXPECT_TRUE(PosixError("open", EACCES).Is(StatusCode::kPermissionDenied));
  EXPECT_TRUE(PosixError("read", EIO).Is(StatusCode::kIoError));
  EXPECT_EQ(PosixError("open x", ENOENT).message(), "open x: No such file or directory");
}

TEST(StatusTest, UvErrorMapsNegatedErrno) {
  EXPECT_TRUE(UvError("bind", UV_EADDRINUSE).Is(StatusCode::kIoError));
  EXPECT_TRUE(UvError("connect", UV_ECONNREFUSED).Is(StatusCode::kUnavailable));
  EXPECT_EQ(UvError("bind", UV_EADDRINUSE).message(), "bind: address already in use");
}

TEST(ResultTest, PropagatesErrorsAndValues) {
  auto q = Quarter(8);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q, 2);
  auto bad = Quarter(6);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "odd");
}

}  // namespace
}  // namespace siterelay
