// HandshakeSlots: how many TLS handshakes a server runs at once, in all and per peer address.
//
// A handshake in progress holds 10-45 KiB of OpenSSL state until it ends or times out, and a
// half-open handshake costs its sender nothing: at a server's connection limits that was 180 MB
// (HTTPS, 4096 connections). A connection that finds no slot waits, accepted but with no TLS
// state and its socket unread; when a handshake ends, the first waiting connection whose address
// is under its own cap gets the slot. The per-address cap keeps one flooding address from
// stalling everyone else's handshakes. Used by the HTTPS and the FTP servers; each of their
// connections keeps its place in them with a HandshakeSlot.
//
// Thread safety: the loop thread's, like the servers that own it.
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <map>
#include <string>

namespace siterelay::tls {

class HandshakeSlots {
 public:
  struct Waiter {
    std::string ip;
    std::function<void()> grant;
  };
  using Ticket = std::list<Waiter>::iterator;

  HandshakeSlots(size_t max, size_t max_per_peer) : max_(max), max_per_peer_(max_per_peer) {}
  HandshakeSlots(const HandshakeSlots&) = delete;
  HandshakeSlots& operator=(const HandshakeSlots&) = delete;

  // A slot for a handshake from `ip`: true when taken now. Otherwise `grant` is queued and runs
  // (once, from a later Release) when the connection has its slot; *ticket then names it for
  // Cancel. The granted connection owns a slot and must Release it like any other.
  bool TakeOrWait(const std::string& ip, std::function<void()> grant, Ticket* ticket);
  // A waiting connection went away: its grant never runs.
  void Cancel(Ticket ticket);
  // A handshake from `ip` ended, whichever way: the slot goes to the next eligible waiter.
  void Release(const std::string& ip);

  size_t in_progress() const { return in_progress_; }
  size_t waiting() const { return waiting_.size(); }

 private:
  bool Free(const std::string& ip) const;
  void Take(const std::string& ip);

  size_t max_, max_per_peer_;
  size_t in_progress_ = 0;
  std::map<std::string, size_t> per_peer_;
  std::list<Waiter> waiting_;
};

// One connection's place in a HandshakeSlots: none, waiting for a slot, or holding one.
//
// The owner calls Reset() when its handshake is over and when it closes. The destructor does
// not: at a server's teardown, a slot given back would be handed to a connection being destroyed.
// Ownership: borrows the HandshakeSlots, which must outlive every Request() until its Reset().
class HandshakeSlot {
 public:
  HandshakeSlot() = default;
  HandshakeSlot(const HandshakeSlot&) = delete;
  HandshakeSlot& operator=(const HandshakeSlot&) = delete;

  // Asks `slots` for a slot for `ip` (after giving back any this one has): `begin` runs now, or
  // from a later HandshakeSlots::Release once there is a slot, unless Reset() came first. When
  // it runs, holding() is true.
  void Request(HandshakeSlots* slots, std::string ip, std::function<void()> begin);
  // The handshake is over, or the connection goes: the slot goes back, or the wait ends.
  void Reset();

  bool waiting() const { return state_ == State::kWaiting; }
  bool holding() const { return state_ == State::kHolding; }

 private:
  enum class State { kNone, kWaiting, kHolding };
  HandshakeSlots* slots_ = nullptr;
  std::string ip_;
  State state_ = State::kNone;
  HandshakeSlots::Ticket ticket_;
};

}  // namespace siterelay::tls
