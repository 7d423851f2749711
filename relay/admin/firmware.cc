#include "relay/admin/firmware.h"

#include "relay/files/path.h"

namespace siterelay::admin {
namespace {

constexpr size_t kMaxVersionFileBytes = 4096;

}  // namespace

FirmwareExpectations::FirmwareExpectations(files::FileService* files)
    : files_(files),
      version_files_(files, kMaxVersionFileBytes,
                     [](const std::string& text) { return files::ParseVersionFile(text); }) {}

std::string FirmwareExpectations::For(const files::Device& d) {
  // The master configs are at the root, so the image path is relative to it.
  const files::MasterConfig* config = files_->master_configs().For("", d.mac);
  if (config == nullptr) return "";
  files::PhoneFacts facts;
  facts.mac = d.mac;
  facts.model = d.model;
  std::string image = files::ImageFor(*config, facts);
  if (image.empty()) return "";
  if (std::optional<std::string> v = files::VersionInPath(image)) return *v;
  if (files::IsUrl(image)) return "";
  Result<std::string> normal = files::NormalizePath(image);
  if (!normal.ok()) return "";
  size_t slash = normal->rfind('/');
  std::string dir = slash == std::string::npos ? "" : normal->substr(0, slash + 1);
  const std::string* v = version_files_.Get(dir + "sip.ver");
  return v != nullptr ? *v : "";
}

}  // namespace siterelay::admin
