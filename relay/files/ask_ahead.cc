#include "relay/files/ask_ahead.h"

#include "relay/files/path.h"
#include "relay/files/phone.h"

namespace siterelay::files {

void AskAhead::Sighted(const Device& d, std::string_view path) {
  if (d.mac.empty()) return;
  State& s = devices_[d.mac];
  std::string_view base = BaseName(path);
  if (IsMasterConfigName(base)) {
    s.dir = std::string(path.substr(0, path.size() - base.size()));
  }
  if (s.boot == d.last_boot) return;
  const MasterConfig* config = files_->master_configs().For(s.dir, d.mac);
  if (config == nullptr) return;  // not cached yet: its next sighting tries again
  s.boot = d.last_boot;
  PhoneFacts facts;
  facts.mac = d.mac;
  facts.model = d.model;
  for (const std::string& name : PhoneFilesFor(*config, facts)) {
    if (IsUrl(name)) continue;  // another server's: the phone goes there itself
    Result<std::string> normal = NormalizePath(s.dir + name);
    if (normal.ok() && files_->FetchAhead(*normal)) ++asked_;
  }
}

}  // namespace siterelay::files
