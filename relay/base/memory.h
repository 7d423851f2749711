// How the relay's process asks the C library's allocator to behave.
#pragma once

#include <cstddef>

namespace siterelay {

// Blocks of this size or more are mapped on their own and unmapped when freed: upload pieces,
// the 64 KiB read buffers of curl and of log appends.
inline constexpr size_t kOwnMappingBytes = 64 * 1024;

// Called once by `siterelay serve` before any thread starts. glibc's malloc raises its mmap
// threshold each time it unmaps a large block, up to 32 MiB, so after a boot storm's first
// freed buffers every 64 KiB piece came from the heaps instead, and a thousand uploads at once
// left their pieces scattered across them: peak RSS varied from 38 to 78 MiB between runs of one
// storm (docs/BENCHMARKS.md). A fixed threshold keeps such buffers out of the heaps, which then
// hold only small objects. Elsewhere (other C libraries, sanitizers) it does nothing.
void TuneAllocator();

}  // namespace siterelay
