#include "relay/base/memory.h"

#include <unistd.h>

#include <cstdlib>

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

void SkipUnusedLibraryInit(char** argv) {
  static constexpr char kVariable[] = "GNUTLS_NO_IMPLICIT_INIT";
  if (std::getenv(kVariable) != nullptr) return;
  if (::setenv(kVariable, "1", /*overwrite=*/1) != 0) return;
  ::execv("/proc/self/exe", argv);  // returns only on failure (no /proc): carry on as we are
}

}  // namespace siterelay
