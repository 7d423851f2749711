#include "relay/base/memory.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace siterelay {

void TuneAllocator() {
#if defined(__GLIBC__)
  // Also fixes the trim threshold (glibc stops adjusting both once either is set).
  (void)mallopt(M_MMAP_THRESHOLD, static_cast<int>(kOwnMappingBytes));
#endif
}

}  // namespace siterelay
