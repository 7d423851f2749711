#include "relay/files/parsed_files.h"

#include <unistd.h>

namespace siterelay::files {

std::optional<std::string> ReadWhole(const OpenFile& f, size_t max) {
  if (f.size > max) return std::nullopt;
  std::string bytes(f.size, '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = ::pread(f.fd.get(), bytes.data() + got, bytes.size() - got,
                        static_cast<off_t>(got));
    if (n <= 0) return std::nullopt;
    got += static_cast<size_t>(n);
  }
  return bytes;
}

MasterConfigs::MasterConfigs(FileService* files)
    : files_(files, kMaxMasterConfigBytes,
             [](const std::string& xml) -> std::optional<MasterConfig> {
               Result<MasterConfig> c = ParseMasterConfig(xml);
               if (!c.ok()) return std::nullopt;
               return std::move(c).value();
             }) {}

const MasterConfig* MasterConfigs::For(std::string_view dir, std::string_view mac) {
  std::string base(dir);
  if (!mac.empty()) {
    if (const MasterConfig* c = files_.Get(base + std::string(mac) + ".cfg")) return c;
  }
  return files_.Get(base + "000000000000.cfg");
}

}  // namespace siterelay::files
