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

TEST(HandshakeSlotTest, HoldsAFreeSlotAtOnceAndGivesItBackOnReset) {
  HandshakeSlots slots(1, 1);
  HandshakeSlot slot;
  int began = 0;
  slot.Request(&slots, "10.0.0.1", [&] {
    EXPECT_TRUE(slot.holding());
    ++began;
  });
  EXPECT_EQ(began, 1);
  EXPECT_TRUE(slot.holding());
  EXPECT_EQ(slots.in_progress(), 1u);
  slot.Reset();
  EXPECT_FALSE(slot.holding());
  EXPECT_EQ(slots.in_progress(), 0u);
  slot.Reset();  // twice is once
  EXPECT_EQ(slots.in_progress(), 0u);
}

TEST(HandshakeSlotTest, WaitsUntilAnotherGivesItsSlotBack) {
  HandshakeSlots slots(1, 1);
  HandshakeSlot first, second;
  bool second_began = false;
  first.Request(&slots, "10.0.0.1", [] {});
  second.Request(&slots, "10.0.0.2", [&] {
    EXPECT_TRUE(second.holding()) << "it holds the slot when its handshake begins";
    second_began = true;
  });
  EXPECT_TRUE(second.waiting());
  EXPECT_FALSE(second_began);
  first.Reset();
  EXPECT_TRUE(second_began);
  EXPECT_TRUE(second.holding());
  EXPECT_EQ(slots.in_progress(), 1u);
  second.Reset();
  EXPECT_EQ(slots.in_progress(), 0u);
}

TEST(HandshakeSlotTest, AResetWhileWaitingLeavesTheQueue) {
  HandshakeSlots slots(1, 1);
  HandshakeSlot first, gone, next;
  bool gone_began = false, next_began = false;
  first.Request(&slots, "10.0.0.1", [] {});
  gone.Request(&slots, "10.0.0.2", [&] { gone_began = true; });
  next.Request(&slots, "10.0.0.3", [&] { next_began = true; });
  gone.Reset();
  EXPECT_FALSE(gone.waiting());
  EXPECT_EQ(slots.waiting(), 1u);
  first.Reset();
  EXPECT_FALSE(gone_began);
  EXPECT_TRUE(next_began);
  EXPECT_EQ(slots.in_progress(), 1u);
}

// A connection whose handshake cannot begin closes from inside its grant (TLS turned off by a
// SIGHUP meanwhile): its slot goes on to the next waiter, and each is counted once.
TEST(HandshakeSlotTest, AGrantThatGivesTheSlotBackAtOnceHandsItOn) {
  HandshakeSlots slots(1, 1);
  HandshakeSlot first, failing, next;
  bool next_began = false;
  first.Request(&slots, "10.0.0.1", [] {});
  failing.Request(&slots, "10.0.0.2", [&] { failing.Reset(); });
  next.Request(&slots, "10.0.0.3", [&] { next_began = true; });
  first.Reset();
  EXPECT_FALSE(failing.holding());
  EXPECT_TRUE(next_began);
  EXPECT_TRUE(next.holding());
  EXPECT_EQ(slots.in_progress(), 1u);
  EXPECT_EQ(slots.waiting(), 0u);
  next.Reset();
  EXPECT_EQ(slots.in_progress(), 0u);
}

}  // namespace
}  // namespace siterelay::tls
