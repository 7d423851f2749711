#include "relay/tls/handshake_slots.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace siterelay::tls {
namespace {

TEST(HandshakeSlotsTest, PastTheCapConnectionsWaitAndGetSlotsInOrder) {
  HandshakeSlots slots(2, 2);
  std::vector<std::string> granted;
  HandshakeSlots::Ticket t;
  EXPECT_TRUE(slots.TakeOrWait("10.0.0.1", nullptr, &t));
  EXPECT_TRUE(slots.TakeOrWait("10.0.0.2", nullptr, &t));
  EXPECT_FALSE(slots.TakeOrWait("10.0.0.3", [&] { granted.push_back("3"); }, &t));
  EXPECT_FALSE(slots.TakeOrWait("10.0.0.4", [&] { granted.push_back("4"); }, &t));
  EXPECT_EQ(slots.waiting(), 2u);
  slots.Release("10.0.0.1");
  EXPECT_EQ(granted, std::vector<std::string>{"3"});
  EXPECT_EQ(slots.in_progress(), 2u);
  slots.Release("10.0.0.2");
  EXPECT_EQ(granted, (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(slots.waiting(), 0u);
}

TEST(HandshakeSlotsTest, AnAddressAtItsCapWaitsWhileOthersGoAhead) {
  HandshakeSlots slots(10, 2);
  std::vector<std::string> granted;
  HandshakeSlots::Ticket t;
  EXPECT_TRUE(slots.TakeOrWait("10.0.0.9", nullptr, &t));
  EXPECT_TRUE(slots.TakeOrWait("10.0.0.9", nullptr, &t));
  EXPECT_FALSE(slots.TakeOrWait("10.0.0.9", [&] { granted.push_back("flooder"); }, &t));
  EXPECT_TRUE(slots.TakeOrWait("10.0.0.1", nullptr, &t)) << "another address is not held up";
  slots.Release("10.0.0.1");
  EXPECT_TRUE(granted.empty()) << "the freed slot is not the flooder's: it is at its cap";
  slots.Release("10.0.0.9");
  EXPECT_EQ(granted, std::vector<std::string>{"flooder"});
}

TEST(HandshakeSlotsTest, ACancelledWaiterIsNeverGranted) {
  HandshakeSlots slots(1, 1);
  int granted = 0;
  HandshakeSlots::Ticket gone, next;
  EXPECT_TRUE(slots.TakeOrWait("10.0.0.1", nullptr, &gone));
  EXPECT_FALSE(slots.TakeOrWait("10.0.0.2", [&] { granted += 10; }, &gone));
  EXPECT_FALSE(slots.TakeOrWait("10.0.0.3", [&] { granted += 1; }, &next));
  slots.Cancel(gone);
  slots.Release("10.0.0.1");
  EXPECT_EQ(granted, 1);
  EXPECT_EQ(slots.in_progress(), 1u);
}

}  // namespace
}  // namespace siterelay::tls
