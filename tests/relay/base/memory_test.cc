#include "relay/base/memory.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SITERELAY_SANITIZED_MALLOC 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SITERELAY_SANITIZED_MALLOC 1
#endif

namespace siterelay {
namespace {

// A burst of 64 KiB buffers, as a thousand uploads at once make. Without the fixed threshold,
// freeing the 1 MiB block first raises glibc's threshold past 64 KiB and the burst grows the heap
// instead: hblks (blocks mapped on their own) stays put. With it, only what fits the heap's free
// space comes from there, and everything is given back when freed.
TEST(TuneAllocatorTest, ABurstOf64KiBBuffersIsMappedOnItsOwnAfterALargerBlockWasFreed) {
#if !defined(__GLIBC__) || defined(SITERELAY_SANITIZED_MALLOC)
  GTEST_SKIP() << "glibc's own malloc only";
#else
  TuneAllocator();
  void* big = std::malloc(1 << 20);
  ASSERT_NE(big, nullptr);
  std::free(big);
  struct mallinfo2 before = mallinfo2();
  std::vector<void*> burst;
  for (int i = 0; i < 200; ++i) {
    burst.push_back(std::malloc(kOwnMappingBytes));
    ASSERT_NE(burst.back(), nullptr);
  }
  struct mallinfo2 during = mallinfo2();
  for (void* p : burst) std::free(p);
  struct mallinfo2 after = mallinfo2();
  EXPECT_GE(during.hblks, before.hblks + 150);
  EXPECT_EQ(after.hblks, before.hblks) << "given back when freed";
#endif
}

}  // namespace
}  // namespace siterelay
