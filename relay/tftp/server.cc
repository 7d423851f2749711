#include "relay/tftp/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <deque>
#include <vector>

#include "relay/base/listen.h"
#include "relay/base/log.h"
#include "relay/base/strings.h"
#include "relay/files/path.h"
#include "relay/files/phone.h"
#include "relay/files/uploads.h"

namespace siterelay::tftp {
namespace {

// Biggest datagram the server reads: a DATA block of the largest blksize (RFC 2348) and header.
constexpr size_t kRecvBuffer = 65464 + 4;
// A file read for netascii conversion, per step.
constexpr size_t kNetasciiRead = 64 * 1024;
// Octet blocks are copied out of one read of this size, not read one by one: a third of the
// system calls of a lock-step transfer were preads of one block.
constexpr size_t kReadAhead = 16 * 1024;

// A peer address that can be kept and compared (RFC 1350: the TID is the address and port).
struct Endpoint {
  sockaddr_storage ss{};

  static Endpoint From(const sockaddr* sa) {
    Endpoint e;
    std::memcpy(&e.ss, sa, sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
    return e;
  }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
  bool operator==(const Endpoint& o) const {
    if (ss.ss_family != o.ss.ss_family) return false;
    if (ss.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
      const auto* b = reinterpret_cast<const sockaddr_in*>(&o.ss);
      return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    const auto* b = reinterpret_cast<const sockaddr_in6*>(&o.ss);
    return a->sin6_port == b->sin6_port &&
           std::memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
  }
};

void SendTo(uv_udp_t* udp, const std::string& datagram, const Endpoint& to) {
  uv_buf_t buf = uv_buf_init(const_cast<char*>(datagram.data()),
                             static_cast<unsigned>(datagram.size()));
  // A datagram the socket cannot take now is as good as lost: the retransmission covers it.
  (void)uv_udp_try_send(udp, &buf, 1, to.get());
}

// One receive buffer for every socket: the loop thread handles one datagram at a time.
uv_buf_t* SharedBuffer() {
  static char storage[kRecvBuffer];
  static uv_buf_t buf = uv_buf_init(storage, sizeof storage);
  return &buf;
}

void Alloc(uv_handle_t*, size_t, uv_buf_t* buf) noexcept { *buf = *SharedBuffer(); }

ErrorCode CodeFor(const Status& s) {
  if (s.Is(StatusCode::kNotFound)) return ErrorCode::kFileNotFound;
  if (s.Is(StatusCode::kPermissionDenied) || s.Is(StatusCode::kInvalidArgument)) {
    return ErrorCode::kAccessViolation;
  }
  return ErrorCode::kNotDefined;
}

}  // namespace

// ---- Transfer ---------------------------------------------------------------------------------

class Transfer {
 public:
  Transfer(TftpServer* server, Endpoint peer, files::Peer fpeer, std::string filename,
           std::string path, Request request, Negotiated n)
      : server_(server),
        peer_(peer),
        fpeer_(std::move(fpeer)),
        filename_(std::move(filename)),
        path_(std::move(path)),
        write_(request.write),
        mode_(request.mode),
        n_(std::move(n)),
        start_ns_(uv_hrtime()) {
    udp_.data = this;
    timer_.data = this;
    if (auto mac = files::MacFromFileName(files::BaseName(path_))) mac_ = *mac;
  }

  // The transfer's own socket (its TID), on the address the request came to.
  Status Open(const ListenAddress& local) {
    sockaddr_storage ss;
    ToSockaddr(local, &ss);
    int rc = uv_udp_init(server_->loop_, &udp_);
    if (rc != 0) return UvError("uv_udp_init", rc);
    ++handles_;
    rc = uv_timer_init(server_->loop_, &timer_);
    if (rc != 0) return UvError("uv_timer_init", rc);
    ++handles_;
    rc = uv_udp_bind(&udp_, reinterpret_cast<const sockaddr*>(&ss), 0);
    if (rc != 0) return UvError("bind a transfer socket", rc);
    rc = uv_udp_recv_start(&udp_, Alloc,
                           [](uv_udp_t* u, ssize_t nread, const uv_buf_t* buf,
                              const sockaddr* from, unsigned) noexcept {
                             if (nread <= 0 || from == nullptr) return;
                             static_cast<Transfer*>(u->data)->OnDatagram(
                                 {reinterpret_cast<const uint8_t*>(buf->base),
                                  static_cast<size_t>(nread)},
                                 Endpoint::From(from));
                           });
    if (rc != 0) return UvError("uv_udp_recv_start", rc);
    return Status::Ok();
  }

  // FileService's answer for the requested file.
  void Begin(Result<files::OpenFile> file) {
    if (closing_) return;
    if (!file.ok()) {
      Abort(CodeFor(file.status()),
            file.status().Is(StatusCode::kNotFound) ? "file not found"
            : CodeFor(file.status()) == ErrorCode::kAccessViolation ? "access violation"
                                                                     : "file not available",
            file.status().ToString());
      return;
    }
    file_ = std::move(file).value();
    std::optional<uint64_t> size;
    if (!file_.growing) size = file_.size;
    else if (file_.growing->size()) size = file_.growing->size();
    if (n_.tsize_requested) {
      // RFC 2349: the real size, when known; netascii's is not (it grows in conversion).
      if (size && mode_ == Mode::kOctet) {
        SetTsize(&n_, *size);
      } else {
        DropOption(&n_, "tsize");
      }
    }
    retransmit_ms_ = n_.timeout_seconds > 0 ? static_cast<uint64_t>(n_.timeout_seconds) * 1000
                                            : server_->limits_.retransmit_ms;
    if (!n_.oack.empty()) {
      waiting_oack_ = true;
      EncodeOack(n_.oack, &oack_);
      SendTo(&udp_, oack_, peer_);
      ArmTimer();
      return;
    }
    Pump();
  }

  // A WRQ for a phone upload name: DATA goes into `sink`, and the last block is acknowledged only
  // once the upload is durable (CONTRACT.md "Uploads").
  void BeginUpload(std::shared_ptr<files::UploadSink> sink) {
    sink_ = std::move(sink);
    retransmit_ms_ = n_.timeout_seconds > 0 ? static_cast<uint64_t>(n_.timeout_seconds) * 1000
                                            : server_->limits_.retransmit_ms;
    if (n_.tsize_sent && *n_.tsize_sent > server_->limits_.max_upload_bytes) {
      Abort(ErrorCode::kDiskFull, "file too large",
            "upload of " + std::to_string(*n_.tsize_sent) + " bytes refused (tsize)");
      return;
    }
    if (n_.oack.empty()) {
      EncodeAck(0, &last_ack_);
    } else {
      EncodeOack(n_.oack, &last_ack_);  // the OACK stands for ACK 0 (RFC 2347)
    }
    SendTo(&udp_, last_ack_, peer_);
    ArmTimer();
  }

  void Close() {
    if (closing_) return;
    closing_ = true;
    *alive_ = false;
    if (sink_ && !upload_filed_) sink_->Abort();
    if (handles_ == 0) {
      server_->Ended(this);
      return;
    }
    auto on_close = [](uv_handle_t* h) noexcept {
      auto* t = static_cast<Transfer*>(h->data);
      if (--t->handles_ == 0) t->server_->Ended(t);
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&udp_), on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
  }

  // The error the client gets (terse) and the log line (detail).
  void Abort(ErrorCode code, std::string_view to_client, std::string_view why) {
    if (closing_) return;
    if (!write_ && code != ErrorCode::kFileNotFound) server_->files_->CountFailed(fpeer_, path_);
    std::string pkt;
    EncodeError(code, to_client, &pkt);
    if (handles_ > 0) SendTo(&udp_, pkt, peer_);
    Log(std::string(why));
    Close();
  }

  const files::Peer& fpeer() const { return fpeer_; }
  // False once the transfer is closing; for answers that may come after that.
  std::weak_ptr<bool> alive() const { return alive_; }

 private:
  void Log(const std::string& outcome) {
    bool ok = outcome == "done" || outcome == "stored";
    ++server_->outcomes_[ok ? "ok" : "failed"];
    uint64_t ms = (uv_hrtime() - start_ns_) / 1'000'000;
    SR_ACCESS_LOG(kInfo) << (write_ ? "tftp WRQ " : "tftp RRQ ") << EscapeControl(filename_) << " " << outcome << " " << bytes_
                  << " " << ms << "ms " << fpeer_.ip << (mac_.empty() ? "" : " mac=" + mac_)
                  << " blksize=" << n_.blksize << " windowsize=" << n_.windowsize;
  }

  void OnDatagram(std::span<const uint8_t> d, const Endpoint& from) {
    if (closing_) return;
    if (!(from == peer_)) {
      // RFC 1350: a packet from another TID gets error 5; this transfer carries on. Except an
      // ERROR: "error packets are not acknowledged", and answering one with another lets a single
      // spoofed datagram bounce between two servers for ever (CVE-2024-2169, "Loop DoS").
      auto stray = PeekOpcode(d);
      if (stray.ok() && *stray == Opcode::kError) return;
      std::string pkt;
      EncodeError(ErrorCode::kUnknownTid, "unknown transfer ID", &pkt);
      SendTo(&udp_, pkt, from);
      return;
    }
    auto op = PeekOpcode(d);
    if (write_ && op.ok() && *op == Opcode::kData) {
      auto data = ParseData(d, n_.blksize);
      if (data.ok()) {
        OnData(data->block, data->payload);
      } else {
        Abort(ErrorCode::kIllegalOperation, "illegal operation", data.status().message());
      }
      return;
    }
    if (!write_ && op.ok() && *op == Opcode::kAck) {
      auto ack = ParseAck(d);
      if (ack.ok()) OnAck(ack->block);
      return;
    }
    if (op.ok() && *op == Opcode::kError) {
      auto e = ParseError(d);
      Log("aborted by the client: " +
          (e.ok() ? EscapeControl(e->message) : std::string("malformed error packet")));
      Close();
      return;
    }
    Abort(ErrorCode::kIllegalOperation, "illegal operation", "client sent an unexpected packet");
  }

  // RFC 7440 on a WRQ: the client sends windowsize blocks, the relay ACKs the last of them (or
  // the short block that ends the file). Out of order — a lost block, a resent window — the relay
  // ACKs the last block it took, once, and the client resends from after it.
  void OnData(uint16_t block, std::span<const uint8_t> payload) {
    if (block != static_cast<uint16_t>(received_ + 1) || holding_ack_ || filing_) {
      // A repeat of the last block taken (its ACK was lost): ACK it again. A gap or an older
      // block: say where the upload is, once. Not while the ACK is held back for the disk: the
      // client's retransmissions just wait.
      if (holding_ack_ || filing_) return;
      bool repeat = block == static_cast<uint16_t>(received_);
      if (repeat || !told_position_) {
        told_position_ = true;
        Acknowledge();
      }
      return;
    }
    Status s;
    if (mode_ == Mode::kNetascii) {
      std::string plain;
      netascii_in_.Decode(payload, &plain);
      s = sink_->Write(plain);
    } else {
      s = sink_->Write({reinterpret_cast<const char*>(payload.data()), payload.size()});
    }
    if (!s.ok()) {
      bool full = s.Is(StatusCode::kResourceExhausted);
      Abort(full ? ErrorCode::kDiskFull : ErrorCode::kNotDefined,
            full ? "file too large" : "cannot store the file", s.message());
      return;
    }
    ++received_;
    ++in_window_;
    told_position_ = false;
    bytes_ += payload.size();
    Heard();
    if (payload.size() < n_.blksize) {
      FileUpload();
      return;
    }
    if (in_window_ < n_.windowsize) {
      ArmTimer();  // silence from here on: the timeout ACKs what arrived
      return;
    }
    if (sink_->WantsMore()) {
      Acknowledge();
      return;
    }
    // The disk is behind: the ACK waits, and so does the client (back-pressure, not loss).
    holding_ack_ = true;
    uv_timer_stop(&timer_);
    std::weak_ptr<bool> alive = alive_;
    sink_->OnWantsMore([this, alive] {
      if (alive.expired() || !*alive.lock() || !holding_ack_) return;
      holding_ack_ = false;
      Acknowledge();
    });
  }

  // ACKs the last block taken; the client's next window starts after it.
  void Acknowledge() {
    in_window_ = 0;
    EncodeAck(static_cast<uint16_t>(received_), &last_ack_);
    SendTo(&udp_, last_ack_, peer_);
    ArmTimer();
  }

  void FileUpload() {
    filing_ = true;
    uv_timer_stop(&timer_);
    if (mode_ == Mode::kNetascii) {
      std::string tail;
      netascii_in_.Finish(&tail);
      if (!tail.empty()) (void)sink_->Write(tail);
    }
    std::weak_ptr<bool> alive = alive_;
    sink_->Finish([this, alive](Result<files::UploadResult> r) {
      if (alive.expired() || !*alive.lock()) return;
      upload_filed_ = true;
      if (!r.ok()) {
        bool full = r.status().Is(StatusCode::kResourceExhausted);
        Abort(full ? ErrorCode::kDiskFull : ErrorCode::kNotDefined,
              full ? "disk full" : "cannot store the file", r.status().message());
        return;
      }
      // Durable now: the last ACK. Linger a little to ACK it again should it be lost.
      filing_ = false;
      Acknowledge();
      Log("stored");
      dallying_ = true;
    });
  }

  void OnAck(uint16_t block) {
    if (waiting_oack_) {
      if (block != 0) return;  // a stray: the OACK timer resends
      waiting_oack_ = false;
      Heard();
      Pump();
      return;
    }
    // Which block of the window does it acknowledge? Blocks roll over at 65536: compare the wire
    // numbers of the blocks in flight.
    size_t k = 0;
    for (size_t i = 1; i <= window_.size(); ++i) {
      if (static_cast<uint16_t>(acked_ + i) == block) {
        k = i;
        break;
      }
    }
    // A duplicate or old ACK: ignore it. Re-sending DATA for it would double every packet from
    // then on (RFC 1123 4.2.3.1, Sorcerer's Apprentice); the timer resends what is really lost.
    if (k == 0) return;
    bool loss = k < sent_;  // RFC 7440: an ACK inside the window; resend from after it
    acked_ += k;
    for (size_t i = 0; i < k; ++i) {
      spare_.push_back(std::move(window_.front()));
      window_.pop_front();
    }
    sent_ = loss ? 0 : sent_ - k;
    Heard();
    if (last_block_ != 0 && acked_ >= last_block_) {
      files_served();
      Log("done");
      Close();
      return;
    }
    Pump();
  }

  void files_served() { server_->files_->CountServed(fpeer_, path_, bytes_); }

  // Fills the window from the file and sends what has not been sent.
  void Pump() {
    if (closing_) return;
    while (window_.size() < n_.windowsize && last_block_ == 0) {
      std::string block = SpareBlock();
      bool last = false;
      int r = Produce(&block, &last);
      if (r < 0) return;  // aborted
      if (r == 0) {       // waiting for the origin
        spare_.push_back(std::move(block));
        break;
      }
      window_.push_back(std::move(block));
      if (last) last_block_ = acked_ + window_.size();
    }
    bool sent_any = false;
    for (; sent_ < window_.size(); ++sent_) {
      uint64_t abs = acked_ + sent_ + 1;
      if (server_->drop_ && server_->drop_(abs)) continue;  // the test seam: lost on the way
      SendTo(&udp_, window_[sent_], peer_);
      sent_any = true;
    }
    if (sent_any || !window_.empty()) ArmTimer();
  }

  // The next block, header included: 1 made, 0 must wait for the origin, -1 aborted.
  int Produce(std::string* block, bool* last) {
    uint64_t abs = acked_ + window_.size() + 1;
    EncodeDataHeader(static_cast<uint16_t>(abs), block);
    cache::GrowingFile* g = file_.growing.get();
    if (g != nullptr && g->failed()) {
      Abort(ErrorCode::kNotDefined, "file not available",
            "origin transfer failed: " + g->error().message());
      return -1;
    }
    uint64_t avail = g != nullptr ? g->readable() : file_.size;
    bool end_known = g == nullptr || g->complete();
    size_t blksize = n_.blksize;
    if (mode_ == Mode::kOctet) {
      uint64_t off = (abs - 1) * blksize;
      uint64_t have = avail > off ? avail - off : 0;
      if (have < blksize && !end_known) return Wait(off + blksize - 1);
      size_t n = static_cast<size_t>(std::min<uint64_t>(have, blksize));
      if (!ReadAhead(off, n, avail, block)) return -1;
      *last = n < blksize;
      bytes_ += n;
      return 1;
    }
    // netascii: the converted stream, read on as needed.
    while (pending_.size() < blksize) {
      if (raw_read_ < avail) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(avail - raw_read_, kNetasciiRead));
        std::string raw;
        if (!Read(raw_read_, n, &raw)) return -1;
        raw_read_ += n;
        std::string converted;
        netascii_.Encode({reinterpret_cast<const uint8_t*>(raw.data()), raw.size()}, &converted);
        pending_ += converted;
        continue;
      }
      if (!end_known) return Wait(raw_read_);
      break;
    }
    size_t n = std::min(pending_.size(), blksize);
    block->append(pending_, 0, n);
    pending_.erase(0, n);
    *last = n < blksize;
    bytes_ += n;
    return 1;
  }

  // A block's string from the ones the window gave back, so a transfer allocates its window once.
  std::string SpareBlock() {
    if (spare_.empty()) return {};
    std::string b = std::move(spare_.back());
    spare_.pop_back();
    b.clear();
    return b;
  }

  // Appends bytes [off, off+n) to *out from the read-ahead buffer, refilling it with up to
  // kReadAhead bytes below `avail` (what the file has) when it does not hold them.
  bool ReadAhead(uint64_t off, size_t n, uint64_t avail, std::string* out) {
    if (off < ahead_off_ || off + n > ahead_off_ + ahead_.size()) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(avail - off, kReadAhead));
      want = std::max(want, n);
      ahead_.clear();
      ahead_off_ = off;
      if (!Read(off, want, &ahead_)) return false;
    }
    out->append(ahead_, static_cast<size_t>(off - ahead_off_), n);
    return true;
  }

  bool Read(uint64_t off, size_t n, std::string* out) {
    size_t at = out->size();
    out->resize(at + n);
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(file_.fd.get(), out->data() + at + done, n - done,
                          static_cast<off_t>(off + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        Abort(ErrorCode::kNotDefined, "read error",
              std::string("reading ") + path_ + ": " + (r < 0 ? std::strerror(errno) : "short"));
        return false;
      }
      done += static_cast<size_t>(r);
    }
    return true;
  }

  int Wait(uint64_t offset) {
    if (waiting_origin_) return 0;
    waiting_origin_ = true;
    std::weak_ptr<bool> alive = alive_;
    file_.growing->Wait(offset, [this, alive] {
      if (alive.expired() || !*alive.lock()) return;
      waiting_origin_ = false;
      Pump();
    });
    return 0;
  }

  // The peer moved the transfer on: the count of resends and of silence start over.
  void Heard() {
    retries_ = 0;
    waited_ms_ = 0;
  }

  void ArmTimer() {
    // The interval the client asked for (RFC 2349), but the silence waited for in all stays
    // within max_silence_ms: a peer that asks for timeout 255 and vanishes would otherwise hold
    // its transfer for 6 x 255 s, and a few hundred such requests every transfer slot.
    uint64_t max_silence = server_->limits_.max_silence_ms;
    armed_ms_ = retransmit_ms_;
    if (max_silence != 0) {
      armed_ms_ = std::min(armed_ms_, max_silence > waited_ms_ ? max_silence - waited_ms_ : 1);
    }
    uv_timer_start(
        &timer_, [](uv_timer_t* t) noexcept { static_cast<Transfer*>(t->data)->OnTimeout(); },
        armed_ms_, 0);
  }

  // A timeout while waiting for the peer: true when it is time to give up (max_retries resends,
  // or max_silence_ms of silence).
  bool GiveUp() {
    waited_ms_ += armed_ms_;
    uint64_t max_silence = server_->limits_.max_silence_ms;
    return ++retries_ > server_->limits_.max_retries ||
           (max_silence != 0 && waited_ms_ >= max_silence);
  }

  void OnTimeout() {
    if (closing_) return;
    if (write_) {
      if (dallying_) {  // the client had its chance to repeat the last block
        Close();
        return;
      }
      if (filing_ || holding_ack_) return;
      if (GiveUp()) {
        Abort(ErrorCode::kNotDefined, "timed out", "timed out waiting for the client's DATA");
        return;
      }
      if (received_ == 0) {  // nothing came yet: the OACK (or ACK 0) again
        SendTo(&udp_, last_ack_, peer_);
        ArmTimer();
      } else {
        Acknowledge();  // what arrived of the window; the client resends the rest
      }
      return;
    }
    if (window_.empty() && !waiting_oack_) return;  // waiting for the origin, not the client
    if (GiveUp()) {
      Abort(ErrorCode::kNotDefined, "timed out", "timed out waiting for the client's ACK");
      return;
    }
    if (waiting_oack_) {
      SendTo(&udp_, oack_, peer_);
      ArmTimer();
      return;
    }
    sent_ = 0;  // resend the whole window
    Pump();
  }

  TftpServer* server_;
  Endpoint peer_;
  files::Peer fpeer_;
  std::string filename_;
  std::string path_;
  std::string mac_;
  bool write_;
  Mode mode_;
  Negotiated n_;
  uint64_t start_ns_;
  uv_udp_t udp_{};
  uv_timer_t timer_{};
  int handles_ = 0;
  bool closing_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  files::OpenFile file_;
  // Uploads (WRQ):
  std::shared_ptr<files::UploadSink> sink_;  // shared with the pool work filing it
  uint64_t received_ = 0;     // absolute number of the last DATA block taken
  uint16_t in_window_ = 0;    // blocks taken since the last ACK
  bool told_position_ = false;  // an out-of-order block was answered with an ACK already
  std::string last_ack_;      // the ACK (or OACK) to repeat
  bool holding_ack_ = false;  // the disk is behind: the ACK waits
  bool filing_ = false;       // last block taken, waiting for it to be durable
  bool upload_filed_ = false;
  bool dallying_ = false;     // final ACK sent; answering a repeated last block a while
  NetasciiDecoder netascii_in_;
  uint64_t retransmit_ms_ = 1000;
  int retries_ = 0;
  uint64_t armed_ms_ = 0;   // the timer's current interval
  uint64_t waited_ms_ = 0;  // silence since the peer last moved the transfer on
  bool waiting_oack_ = false;
  std::string oack_;
  // The window: blocks acked_+1 .. acked_+window_.size(), DATA header included.
  std::deque<std::string> window_;
  std::vector<std::string> spare_;  // blocks' strings to reuse
  std::string ahead_;               // octet: file bytes [ahead_off_, ahead_off_ + size)
  uint64_t ahead_off_ = 0;
  uint64_t acked_ = 0;      // absolute number of the last block acknowledged
  size_t sent_ = 0;         // of window_, how many went out since the last ACK or timeout
  uint64_t last_block_ = 0;  // absolute number of the short block that ends the file; 0: not yet
  bool waiting_origin_ = false;
  uint64_t bytes_ = 0;      // payload bytes produced
  // netascii:
  NetasciiEncoder netascii_;
  std::string pending_;
  uint64_t raw_read_ = 0;
};

// ---- Listeners and server ---------------------------------------------------------------------

struct TftpServer::Listener {
  TftpServer* server = nullptr;
  ListenAddress configured;
  ListenAddress actual;
  uv_udp_t udp{};
};

TftpServer::TftpServer(uv_loop_t* loop, files::FileService* files, files::Uploads* uploads,
                       TftpLimits limits)
    : loop_(loop), files_(files), uploads_(uploads), limits_(limits) {}

TftpServer::~TftpServer() = default;  // the owner closed everything and ran the loop first

Result<std::unique_ptr<TftpServer::Listener>> TftpServer::Bind(const ListenAddress& a) {
  sockaddr_storage ss;
  ToSockaddr(a, &ss);
  auto l = std::make_unique<Listener>();
  l->server = this;
  l->configured = a;
  l->actual = a;
  l->udp.data = l.get();
  int rc = uv_udp_init(loop_, &l->udp);
  if (rc != 0) return UvError("uv_udp_init", rc);
  rc = uv_udp_bind(&l->udp, reinterpret_cast<const sockaddr*>(&ss),
                   a.ipv6 ? UV_UDP_IPV6ONLY : 0);
  if (rc == 0) {
    int len = sizeof ss;
    uv_udp_getsockname(&l->udp, reinterpret_cast<sockaddr*>(&ss), &len);
    l->actual.port = ntohs(a.ipv6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                  : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    rc = uv_udp_recv_start(&l->udp, Alloc,
                           [](uv_udp_t* u, ssize_t nread, const uv_buf_t* buf, const sockaddr* from,
                              unsigned) noexcept {
                             if (nread <= 0 || from == nullptr) return;
                             auto* li = static_cast<Listener*>(u->data);
                             li->server->OnRequest(li,
                                                   {reinterpret_cast<const uint8_t*>(buf->base),
                                                    static_cast<size_t>(nread)},
                                                   from);
                           });
  }
  if (rc != 0) {
    Status s = UvError("tftp listen on " + a.ToString(), rc);
    CloseListener(std::move(l));
    return s;
  }
  return l;
}

void TftpServer::CloseListener(std::unique_ptr<Listener> l) {
  Listener* raw = l.release();
  std::erase_if(queue_, [raw](const Queued& q) { return q.listener == raw; });
  uv_close(reinterpret_cast<uv_handle_t*>(&raw->udp),
           [](uv_handle_t* h) noexcept { delete static_cast<Listener*>(h->data); });
}

Status TftpServer::Listen(const std::vector<ListenAddress>& addresses) {
  return ReconcileListeners<Listener>(
      &listeners_, addresses, [this](const ListenAddress& a) { return Bind(a); },
      [this](std::unique_ptr<Listener> l) { CloseListener(std::move(l)); }, &bound_);
}

void TftpServer::OnRequest(Listener* l, std::span<const uint8_t> datagram, const sockaddr* from) {
  if (!accepting_) return;
  Endpoint peer = Endpoint::From(from);
  files::Peer fpeer = files::Peer::FromSockaddr(files::Protocol::kTftp, from);
  auto reply_error = [&](ErrorCode code, std::string_view msg) {
    std::string pkt;
    EncodeError(code, msg, &pkt);
    SendTo(&l->udp, pkt, peer);
  };
  // Only what claims to be a request is answered here. DATA, ACK, OACK and ERROR belong to a
  // transfer's own port, and anything shorter than an opcode or with an unknown one is noise:
  // all are dropped unanswered, as tftp-hpa's tftpd drops them. Above all an ERROR must never be
  // answered with an ERROR: a spoofed one whose source is another TFTP server's port (or this
  // one's) would start two servers answering each other for ever (CVE-2024-2169, "Loop DoS").
  auto op = PeekOpcode(datagram);
  if (!op.ok() || (*op != Opcode::kRrq && *op != Opcode::kWrq)) return;
  auto request = ParseRequest(datagram);
  if (!request.ok()) {
    SR_LOG(kInfo) << "tftp: " << fpeer.ip << ": " << request.status().message();
    reply_error(ErrorCode::kIllegalOperation, "illegal operation");
    return;
  }
  if (!files_->Allowed(fpeer)) {
    SR_LOG(kInfo) << "tftp: " << fpeer.ip << " is not in tftp.allow_from";
    reply_error(ErrorCode::kAccessViolation, "access violation");
    return;
  }
  if (request->write && (!limits_.allow_uploads || uploads_ == nullptr)) {
    SR_LOG(kInfo) << "tftp: " << fpeer.ip << ": WRQ " << EscapeControl(request->filename)
                  << " refused: tftp.allow_uploads is off";
    reply_error(ErrorCode::kAccessViolation, "access violation");
    return;
  }
  if (!HasRoom(fpeer.ip)) {  // too busy: the request waits for a transfer to end
    Enqueue(l, datagram, from);
    return;
  }
  // TFTP has no credentials: it sees the whole namespace, limited by tftp.allow_from.
  static const Account kTftpAccount{"tftp", "", "/"};
  const Account* account = files_->Anonymous();
  if (account == nullptr) account = &kTftpAccount;
  auto path = files_->Resolve(*account, request->filename, /*encoded=*/false);
  if (!path.ok()) {
    SR_LOG(kInfo) << "tftp: " << fpeer.ip << ": refused path: " << path.status().message();
    reply_error(ErrorCode::kAccessViolation, "access violation");
    return;
  }
  auto n = Negotiate(*request, ServerLimits{limits_.max_blksize, limits_.max_windowsize});
  if (!n.ok()) {
    SR_LOG(kInfo) << "tftp: " << fpeer.ip << ": options refused: " << n.status().message();
    reply_error(ErrorCode::kOptionRefused, "option refused");
    return;
  }
  files::UploadName upload = files::ClassifyUpload(files::BaseName(*path));
  if (request->write && upload.kind == files::UploadName::kNone) {
    // Only the phone upload names of CONTRACT.md are accepted, as over HTTP and FTP.
    SR_LOG(kInfo) << "tftp: " << fpeer.ip << ": WRQ " << *path
                  << " refused: not a phone upload name";
    reply_error(ErrorCode::kAccessViolation, "access violation");
    return;
  }
  files_->RecordSighting(fpeer, *path, "");
  bool write = request->write;
  std::string filename = request->filename;
  auto owned = std::make_unique<Transfer>(this, peer, fpeer, filename, *path,
                                          std::move(request).value(), std::move(n).value());
  Transfer* t = owned.get();
  transfers_.emplace(t, std::move(owned));
  ++per_peer_[fpeer.ip];
  ListenAddress local = l->actual;
  local.port = 0;
  Status s = t->Open(local);
  if (!s.ok()) {
    SR_LOG(kError) << "tftp: " << s.ToString();
    t->Close();
    return;
  }
  if (write) {
    t->BeginUpload(uploads_->Begin(*path, upload, limits_.max_upload_bytes));
    return;
  }
  std::weak_ptr<bool> alive = t->alive();
  files_->Open(*path, files::ReadMode::kStream, [t, alive](Result<files::OpenFile> f) {
    if (alive.expired() || !*alive.lock()) return;  // ended meanwhile
    t->Begin(std::move(f));
  });
}

bool TftpServer::HasRoom(const std::string& peer_ip) const {
  if (transfers_.size() >= limits_.max_transfers) return false;
  auto pp = per_peer_.find(peer_ip);
  return pp == per_peer_.end() || pp->second < limits_.max_transfers_per_peer;
}

void TftpServer::Enqueue(Listener* l, std::span<const uint8_t> datagram, const sockaddr* from) {
  Endpoint peer = Endpoint::From(from);
  uint64_t now = uv_now(loop_);
  while (!queue_.empty() && now - queue_.front().since_ms >= limits_.queue_ms) queue_.pop_front();
  for (const Queued& q : queue_) {  // the client repeated a request that is waiting already
    if (Endpoint::From(reinterpret_cast<const sockaddr*>(&q.from)) == peer) return;
  }
  if (queue_.size() >= limits_.max_queued) {
    SR_LOG(kWarning) << "tftp: " << transfers_.size() << " transfers and " << queue_.size()
                     << " waiting: a request from "
                     << files::Peer::FromSockaddr(files::Protocol::kTftp, from).ip
                     << " is dropped (the client will repeat it)";
    return;
  }
  Queued q{l, peer.ss, files::Peer::FromSockaddr(files::Protocol::kTftp, from).ip,
           std::string(reinterpret_cast<const char*>(datagram.data()), datagram.size()), now};
  queue_.push_back(std::move(q));
}

// Starts the oldest waiting requests that fit now; a peer at its own limit does not hold up the
// others behind it.
void TftpServer::DrainQueue() {
  if (draining_) return;  // a request started below ended at once: the loop here goes on
  draining_ = true;
  uint64_t now = uv_now(loop_);
  size_t i = 0;  // an index, not an iterator: OnRequest() may touch the deque
  while (i < queue_.size() && accepting_ && transfers_.size() < limits_.max_transfers) {
    if (now - queue_[i].since_ms >= limits_.queue_ms) {
      queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    if (!HasRoom(queue_[i].peer_ip)) {
      ++i;
      continue;
    }
    Queued q = std::move(queue_[i]);
    queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(i));
    OnRequest(q.listener,
              {reinterpret_cast<const uint8_t*>(q.datagram.data()), q.datagram.size()},
              reinterpret_cast<const sockaddr*>(&q.from));
  }
  draining_ = false;
}

void TftpServer::Ended(Transfer* t) {
  auto it = transfers_.find(t);
  if (it == transfers_.end()) return;
  auto pp = per_peer_.find(t->fpeer().ip);
  if (pp != per_peer_.end() && --pp->second == 0) per_peer_.erase(pp);
  transfers_.erase(it);
  if (!queue_.empty()) DrainQueue();
  if (!accepting_ && transfers_.empty() && on_drained_) {
    auto cb = std::move(on_drained_);
    on_drained_ = nullptr;
    cb();
  }
}

void TftpServer::StopAccepting() {
  accepting_ = false;
  queue_.clear();
  for (auto& l : listeners_) CloseListener(std::move(l));
  listeners_.clear();
  bound_.clear();
  if (transfers_.empty() && on_drained_) {
    auto cb = std::move(on_drained_);
    on_drained_ = nullptr;
    cb();
  }
}

void TftpServer::CloseAll() {
  std::vector<Transfer*> all;
  for (auto& [t, owned] : transfers_) all.push_back(t);
  for (Transfer* t : all) t->Close();
}

}  // namespace siterelay::tftp
