#include "tools/phone-fleet/relay_process.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace siterelay::fleet {

std::string RelayConfig(const std::string& data_dir, const std::string& origin_url,
                        const std::array<bool, kProtoCount>& protos, uint16_t passive_lo,
                        bool account) {
  auto on = [&](Proto p) {
    return protos[static_cast<size_t>(p)] ? std::string("[\"127.0.0.1:0\"]") : std::string("[]");
  };
  std::ostringstream c;
  c << "# Written by phone_fleet (tools/phone-fleet): loopback listeners on ports the kernel\n"
       "# picks for the protocols of the run, the fleet's origin emulator as [origin], no\n"
       "# background sync passes (the cache starts cold and only phones fill it).\n"
    << "data_dir = \"" << data_dir << "\"\n"
    << "relay_id = \"phone-fleet\"\n"
    << "[origin]\nurl = \"" << origin_url << "\"\nsync_interval = 0\n"
    << "[http]\nlisten = " << on(Proto::kHttp) << "\n"
    << "[https]\nlisten = " << on(Proto::kHttps) << "\n"
    << "[tftp]\nlisten = " << on(Proto::kTftp) << "\nallow_uploads = true\n"
    << "[ftp]\nlisten = " << on(Proto::kFtp) << "\nimplicit_tls_listen = " << on(Proto::kFtps)
    << "\npassive_ports = [" << passive_lo << ", " << passive_lo + 999 << "]\n"
    << "[admin]\nlisten = [\"127.0.0.1:0\"]\npassword = \"phone-fleet\"\n";
  if (account) c << "[[account]]\nuser = \"PlcmSpIp\"\npassword = \"PlcmSpIp\"\n";
  return c.str();
}

std::optional<std::array<uint16_t, kProtoCount>> ParseAnnouncedPorts(std::string_view log) {
  if (log.find(" admin: http://") == std::string_view::npos) return std::nullopt;
  std::array<uint16_t, kProtoCount> ports{};
  size_t at = 0;
  while ((at = log.find(" phones: ", at)) != std::string_view::npos) {
    at += 9;
    size_t eol = log.find('\n', at);
    std::string_view line = log.substr(at, eol == std::string_view::npos ? eol : eol - at);
    size_t scheme_end = line.find("://");
    if (scheme_end == std::string_view::npos) continue;
    Proto proto;
    if (!ParseProto(line.substr(0, scheme_end), &proto)) continue;
    size_t slash = line.find('/', scheme_end + 3);
    std::string_view authority = line.substr(scheme_end + 3, slash - scheme_end - 3);
    size_t colon = authority.rfind(':');
    if (colon == std::string_view::npos) continue;
    std::string_view port = authority.substr(colon + 1);
    uint16_t n = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (ec == std::errc() && end == port.data() + port.size()) {
      auto& slot = ports[static_cast<size_t>(proto)];
      if (slot == 0) slot = n;  // the first listener of a protocol
    }
  }
  return ports;
}

ProcSample SampleProc(int pid) {
  ProcSample s;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    unsigned long long v = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %llu", &v) == 1) s.rss_kib = v;
    if (std::sscanf(line.c_str(), "VmHWM: %llu", &v) == 1) s.hwm_kib = v;
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // The command name may hold spaces and parentheses: the fields follow the last ')'.
  size_t close = text.rfind(')');
  if (close == std::string::npos) return s;
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  s.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  s.ok = s.hwm_kib > 0;
  return s;
}

Status RelayProcess::Spawn(const std::string& binary, const std::string& config,
                           const std::string& log) {
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return PosixError("open " + log, errno);
  std::string serve = "serve", flag = "--config";
  std::vector<char*> args = {const_cast<char*>(binary.c_str()), serve.data(), flag.data(),
                             const_cast<char*>(config.c_str()), nullptr};
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = fd;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = fd;
  uv_process_options_t opts{};
  opts.file = binary.c_str();
  opts.args = args.data();
  opts.stdio = stdio;
  opts.stdio_count = 3;
  opts.exit_cb = [](uv_process_t* p, int64_t status, int signal) noexcept {
    auto* self = static_cast<RelayProcess*>(p->data);
    self->exited_ = true;
    self->exit_status_ = status;
    self->term_signal_ = signal;
  };
  process_.data = this;
  int rc = uv_spawn(loop_, &process_, &opts);
  close(fd);
  spawned_ = true;  // even on failure the handle must be closed (libuv's rule for uv_spawn)
  if (rc != 0) {
    exited_ = true;
    return UvError("start " + binary, rc);
  }
  pid_ = process_.pid;
  return Status::Ok();
}

void RelayProcess::Kill(int signum) {
  if (spawned_ && !exited_) uv_process_kill(&process_, signum);
}

void RelayProcess::Close() {
  if (!spawned_ || closed_) return;
  closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&process_), nullptr);
}

}  // namespace siterelay::fleet
