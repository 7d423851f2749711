#include "sync/sender.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "relay/base/uv.h"
#include "tests/testing/fake_origin.h"
#include "tests/testing/loop.h"

namespace siterelay::sync {
namespace {

using siterelay::testing::FakeOrigin;
using siterelay::testing::OriginReply;
using siterelay::testing::OriginRequest;

Upstream To(const FakeOrigin& origin) {
  Upstream up;
  up.url = origin.url();
  up.name = "test";
  return up;
}

TEST(SenderTest, PostsTheBodyAndReportsTheStatusAndRetryAfter) {
  Loop loop;
  FakeOrigin origin([](const OriginRequest&) {
    return OriginReply{503, {{"Retry-After", "7"}}, "busy"};
  });
  Sender sender(loop.get(), nullptr);
  std::optional<SendReply> reply;
  sender.Send(To(origin), {"POST", origin.url() + "in", {"X-Test: 1"}, "payload"},
              [&](SendReply r) { reply = std::move(r); });
  EXPECT_FALSE(reply.has_value()) << "never before Send() returns";
  siterelay::testing::RunUntil(loop.get(), [&] { return reply.has_value(); });
  ASSERT_TRUE(reply->status.ok());
  EXPECT_EQ(reply->http_status, 503);
  EXPECT_EQ(reply->retry_after_ms, 7000);
  EXPECT_EQ(reply->body, "busy");
  auto reqs = origin.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].body, "payload");
  EXPECT_EQ(*reqs[0].Header("x-test"), "1");
  EXPECT_EQ(reqs[0].Header("expect"), nullptr) << "no 100-continue round trip";
}

TEST(SenderTest, NoAnswerIsUnavailable) {
  Loop loop;
  Sender sender(loop.get(), nullptr);
  std::optional<SendReply> reply;
  Upstream up;
  up.url = "http://127.0.0.1:1/";  // nothing listens on port 1
  up.name = "nowhere";
  sender.Send(up, {"PUT", up.url + "x", {}, "b"}, [&](SendReply r) { reply = std::move(r); });
  siterelay::testing::RunUntil(loop.get(), [&] { return reply.has_value(); });
  EXPECT_TRUE(reply->status.Is(StatusCode::kUnavailable)) << reply->status.ToString();
}

TEST(SenderTest, UploadsWaitWhilePhonesDownload) {
  Loop loop;
  FakeOrigin origin([](const OriginRequest&) { return OriginReply{200, {}, ""}; });
  RateLimiter limiter(loop.get(), 0);
  Sender sender(loop.get(), &limiter);
  limiter.ForegroundStarted();  // a phone-facing download is running
  std::optional<SendReply> reply;
  sender.Send(To(origin), {"POST", origin.url(), {}, "log batch"},
              [&](SendReply r) { reply = std::move(r); });
  Timer wait(loop.get());
  bool waited = false;
  wait.Start(300, [&] { waited = true; });
  siterelay::testing::RunUntil(loop.get(), [&] { return waited; });
  EXPECT_FALSE(reply.has_value());
  EXPECT_TRUE(origin.requests().empty()) << "background work yields to phones";
  limiter.ForegroundEnded();
  siterelay::testing::RunUntil(loop.get(), [&] { return reply.has_value(); });
  EXPECT_EQ(reply->http_status, 200);
}

}  // namespace
}  // namespace siterelay::sync
