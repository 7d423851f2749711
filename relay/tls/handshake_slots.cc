#include "relay/tls/handshake_slots.h"

#include <utility>

namespace siterelay::tls {

bool HandshakeSlots::Free(const std::string& ip) const {
  if (in_progress_ >= max_) return false;
  auto it = per_peer_.find(ip);
  return it == per_peer_.end() || it->second < max_per_peer_;
}

void HandshakeSlots::Take(const std::string& ip) {
  ++in_progress_;
  ++per_peer_[ip];
}

bool HandshakeSlots::TakeOrWait(const std::string& ip, std::function<void()> grant,
                                Ticket* ticket) {
  if (Free(ip)) {
    Take(ip);
    return true;
  }
  *ticket = waiting_.insert(waiting_.end(), Waiter{ip, std::move(grant)});
  return false;
}

void HandshakeSlots::Cancel(Ticket ticket) { waiting_.erase(ticket); }

void HandshakeSlots::Release(const std::string& ip) {
  --in_progress_;
  auto it = per_peer_.find(ip);
  if (it != per_peer_.end() && --it->second == 0) per_peer_.erase(it);
  // The first waiter whose address is under its cap; none once every slot is taken.
  for (auto w = waiting_.begin(); w != waiting_.end() && in_progress_ < max_; ++w) {
    if (!Free(w->ip)) continue;
    Take(w->ip);
    std::function<void()> grant = std::move(w->grant);
    waiting_.erase(w);
    grant();
    return;
  }
}

void HandshakeSlot::Request(HandshakeSlots* slots, std::string ip, std::function<void()> begin) {
  Reset();
  slots_ = slots;
  ip_ = std::move(ip);
  auto grant = [this, begin] {
    state_ = State::kHolding;
    begin();
  };
  if (slots_->TakeOrWait(ip_, grant, &ticket_)) {
    grant();
    return;
  }
  state_ = State::kWaiting;
}

void HandshakeSlot::Reset() {
  State was = std::exchange(state_, State::kNone);
  if (was == State::kWaiting) slots_->Cancel(ticket_);
  if (was == State::kHolding) slots_->Release(ip_);
}

}  // namespace siterelay::tls
