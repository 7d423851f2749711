#include "relay/base/clock.h"

#include <ctime>

namespace siterelay {
namespace {
class SystemClock final : public Clock {
 public:
  int64_t NowSeconds() const override { return static_cast<int64_t>(std::time(nullptr)); }
};
}  // namespace

Clock* Clock::System() {
  static SystemClock clock;
  return &clock;
}

}  // namespace siterelay
