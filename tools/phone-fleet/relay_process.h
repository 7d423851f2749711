// RelayProcess: the relay under test, started by phone_fleet (`--relay-binary`) as
// `siterelay serve --config FILE` with its stderr in a log file, the way
// tests/integration/lib.sh starts it: the listeners are on port 0 and the ports are read back
// from the "phones: <scheme>://host:port/" lines it logs once it serves (the "admin:" line comes
// last). Also the /proc readers phone_fleet samples any relay with (`--relay-pid`).
//
// Ownership: the process handle belongs to the caller's loop and is freed in its close callback;
// the object must outlive the loop run after Stop()/Close(). Thread safety: loop thread only.
#pragma once

#include <uv.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "relay/base/status.h"
#include "tools/phone-fleet/model.h"

namespace siterelay::fleet {

// The relay's config for a run: data in `data_dir`, the origin at `origin_url`, a listener on
// 127.0.0.1:0 for each protocol in `protos` (the rest off), the admin API on 127.0.0.1:0, TFTP
// uploads on, passive FTP ports [passive_lo, passive_lo + 999], and with `account` the
// PlcmSpIp/PlcmSpIp account (which then applies to HTTP, HTTPS and FTP alike; TFTP has no login).
std::string RelayConfig(const std::string& data_dir, const std::string& origin_url,
                        const std::array<bool, kProtoCount>& protos, uint16_t passive_lo,
                        bool account);

// The announced phone ports by protocol, from the relay's log text; nullopt until the "admin:"
// line, which the relay logs after every listener, is there.
std::optional<std::array<uint16_t, kProtoCount>> ParseAnnouncedPorts(std::string_view log);

struct ProcSample {
  uint64_t rss_kib = 0;   // VmRSS
  uint64_t hwm_kib = 0;   // VmHWM: the peak resident set since the process started
  double cpu_s = 0;       // utime + stime
  bool ok = false;
};
ProcSample SampleProc(int pid);

class RelayProcess {
 public:
  explicit RelayProcess(uv_loop_t* loop) : loop_(loop) {}
  RelayProcess(const RelayProcess&) = delete;
  RelayProcess& operator=(const RelayProcess&) = delete;

  Status Spawn(const std::string& binary, const std::string& config, const std::string& log);
  int pid() const { return pid_; }
  bool exited() const { return exited_; }
  int64_t exit_status() const { return exit_status_; }
  int term_signal() const { return term_signal_; }
  // Sends `signum` if the process still runs.
  void Kill(int signum);
  // Frees the handle once the process has exited (call after exited()).
  void Close();

 private:
  uv_loop_t* loop_;
  uv_process_t process_{};
  bool spawned_ = false, exited_ = false, closed_ = false;
  int pid_ = 0;
  int64_t exit_status_ = 0;
  int term_signal_ = 0;
};

}  // namespace siterelay::fleet
