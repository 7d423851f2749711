// SHA-256 digests: the names of cached objects and the ETags phones see.
//
// Sha256 wraps OpenSSL's EVP interface, which uses the CPU's SHA extensions where present.
// A Sha256 object is used by one thread at a time; Digest is a plain value.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "relay/base/status.h"

namespace siterelay {

struct Digest {
  std::array<uint8_t, 32> bytes{};

  // 64 lower-case hex digits.
  std::string Hex() const;
  // Accepts 64 hex digits of either case.
  static Result<Digest> FromHex(std::string_view hex);

  friend bool operator==(const Digest&, const Digest&) = default;
  friend auto operator<=>(const Digest&, const Digest&) = default;
};

struct DigestHash {
  size_t operator()(const Digest& d) const noexcept {
    // The bytes are already uniformly distributed.
    size_t h;
    static_assert(sizeof h <= sizeof d.bytes);
    __builtin_memcpy(&h, d.bytes.data(), sizeof h);
    return h;
  }
};

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::span<const uint8_t> data);
  void Update(std::string_view data) {
    Update(std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  }
  // Returns the digest and resets the hasher for reuse.
  Digest Finish();

  static Digest Of(std::string_view data);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

}  // namespace siterelay
