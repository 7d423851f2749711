// TftpServer: phones over TFTP (RFC 1350, options RFC 2347-2349, windowsize RFC 7440) on libuv
// UDP. Reads go through FileService exactly as over HTTP, so a cache miss pulls through and
// streams: a block that has not arrived from the origin yet is sent when it does.
//
// Each transfer has its own socket on an ephemeral port (RFC 1350's TID), bound to the address
// the request came in on. Blocks are numbered from 1 and roll over past 65535 to 0 (as tftp-hpa,
// curl and atftp expect), so files over 32 MiB at 512-byte blocks go through whole. A window
// (windowsize blocks) is kept in memory until acknowledged: a timeout resends it, an ACK inside it
// moves it on, and a duplicate ACK never re-sends DATA (RFC 1123 4.2.3.1: Sorcerer's Apprentice).
// A datagram from any other address or port gets error 5 and leaves the transfer alone. The
// listen port answers only RRQ and WRQ (a malformed one with error 4), and no port ever answers
// an ERROR: two servers answering each other's errors would loop for ever (CVE-2024-2169).
//
// A WRQ is taken only with tftp.allow_uploads and only for the phone upload names (logs append,
// settings replace, as over HTTP); the last block is acknowledged once the upload is durable.
//
// Thread safety: loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "relay/base/config.h"
#include "relay/base/status.h"
#include "relay/files/file_service.h"
#include "relay/files/uploads.h"
#include "relay/tftp/packet.h"

namespace siterelay::tftp {

struct TftpLimits {
  uint16_t max_blksize = 1468;  // one Ethernet frame: 1500 - IP 20 - UDP 8 - TFTP 4
  uint16_t max_windowsize = 64;
  uint64_t retransmit_ms = 1000;  // when the client asks no timeout
  int max_retries = 5;            // resends of one window before giving up
  // Silence from a peer the relay waits for in all, whatever timeout (RFC 2349, up to 255 s) the
  // peer asked for; 0: no ceiling. At the default 1 s a silent peer is given up after 6 s, well
  // inside it; a peer that asked for a long timeout is resent to at its interval until then.
  uint64_t max_silence_ms = 20'000;
  size_t max_transfers = 1024;
  // CONTRACT.md: at least 256 concurrent transfers from one address.
  size_t max_transfers_per_peer = 256;
  // Requests past those limits wait, oldest first, for a transfer to end: at most this many, for
  // at most queue_ms (by then the client has repeated its request or given up).
  size_t max_queued = 1024;
  uint64_t queue_ms = 5000;
  bool allow_uploads = false;                // [tftp] allow_uploads
  uint64_t max_upload_bytes = 16ull << 20;  // uploads.max_bytes
};

class TftpServer {
 public:
  // `uploads` may be null when uploads are off.
  TftpServer(uv_loop_t* loop, files::FileService* files, files::Uploads* uploads,
             TftpLimits limits = {});
  ~TftpServer();
  TftpServer(const TftpServer&) = delete;
  TftpServer& operator=(const TftpServer&) = delete;

  // Makes the listeners exactly `addresses` (as HttpServer::Listen): on error nothing changes.
  Status Listen(const std::vector<ListenAddress>& addresses);
  const std::vector<ListenAddress>& bound() const { return bound_; }
  void StopAccepting();
  void CloseAll();
  size_t transfers() const { return transfers_.size(); }
  // Transfers ended, "ok" or "failed" (/metrics).
  const std::map<std::string, uint64_t>& outcomes() const { return outcomes_; }
  size_t queued() const { return queue_.size(); }
  // Called (once) when StopAccepting() was called and the last transfer has ended.
  void OnDrained(std::function<void()> cb) { on_drained_ = std::move(cb); }

  // Testing seam for the packet-loss case: when set, DATA datagrams for which it returns true are
  // not sent (as if lost on the way).
  void SetDropFilter(std::function<bool(uint64_t block)> drop) { drop_ = std::move(drop); }

 private:
  friend class Transfer;
  struct Listener;
  Result<std::unique_ptr<Listener>> Bind(const ListenAddress& address);
  void CloseListener(std::unique_ptr<Listener> l);
  void OnRequest(Listener* l, std::span<const uint8_t> datagram, const sockaddr* from);
  bool HasRoom(const std::string& peer_ip) const;
  void Enqueue(Listener* l, std::span<const uint8_t> datagram, const sockaddr* from);
  void DrainQueue();
  void Ended(class Transfer* t);

  // A request that came while the server was at a limit.
  struct Queued {
    Listener* listener;
    sockaddr_storage from;
    std::string peer_ip;
    std::string datagram;
    uint64_t since_ms;  // uv_now
  };

  uv_loop_t* loop_;
  files::FileService* files_;
  files::Uploads* uploads_;
  TftpLimits limits_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<ListenAddress> bound_;
  std::map<Transfer*, std::unique_ptr<Transfer>> transfers_;
  std::map<std::string, size_t> per_peer_;
  std::map<std::string, uint64_t> outcomes_;
  std::deque<Queued> queue_;
  bool draining_ = false;  // DrainQueue() is on the stack
  bool accepting_ = true;
  std::function<void()> on_drained_;
  std::function<bool(uint64_t)> drop_;
};

}  // namespace siterelay::tftp
