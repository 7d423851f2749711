#include "relay/base/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

namespace siterelay {

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
};

namespace {
// Failing to set up a digest context means out of memory or a broken OpenSSL: fatal (STYLE.md).
[[noreturn]] void DieOpenSsl(const char* what) {
  std::fprintf(stderr, "fatal: OpenSSL %s failed\n", what);
  std::abort();
}
}  // namespace

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  if (ctx_->md == nullptr) DieOpenSsl("EVP_MD_CTX_new");
  if (EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1) DieOpenSsl("EVP_DigestInit_ex");
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_->md); }

void Sha256::Update(std::span<const uint8_t> data) {
  if (data.empty()) return;
  if (EVP_DigestUpdate(ctx_->md, data.data(), data.size()) != 1) DieOpenSsl("EVP_DigestUpdate");
}

Digest Sha256::Finish() {
  Digest d;
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_->md, d.bytes.data(), &len) != 1 || len != d.bytes.size()) {
    DieOpenSsl("EVP_DigestFinal_ex");
  }
  if (EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1) DieOpenSsl("EVP_DigestInit_ex");
  return d;
}

Digest Sha256::Of(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Finish();
}

std::string Digest::Hex() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(64, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 0xf];
  }
  return out;
}

Result<Digest> Digest::FromHex(std::string_view hex) {
  if (hex.size() != 64) return Status::InvalidArgument("sha256 must be 64 hex digits");
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Digest d;
  for (size_t i = 0; i < d.bytes.size(); ++i) {
    int hi = nibble(hex[2 * i]);
    int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return Status::InvalidArgument("sha256 has a non-hex digit");
    d.bytes[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return d;
}

}  // namespace siterelay
