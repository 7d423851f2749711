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

// Debian's libcurl links librtmp and, through it, GnuTLS, whose library constructor initialises
// GnuTLS (and p11-kit) in every process that loads it: 1 MiB of the idle relay's 16 MiB, for a
// TLS library the relay never calls (curl is limited to http, https and file over OpenSSL).
// GnuTLS skips it when GNUTLS_NO_IMPLICIT_INIT=1 is in the environment as it loads, which is
// before main(), so `siterelay serve` sets it and executes itself again, once: same pid and
// arguments, so systemd, pid files and the tests notice nothing; the systemd unit sets it
// already. Returns when it did not run again (the variable was set, or exec failed: the relay
// then runs as it is). /proc/self/exe is the loader or the tool when the relay is started through
// ld.so or valgrind: set the variable yourself there, and nothing is executed again.
void SkipUnusedLibraryInit(char** argv);

}  // namespace siterelay
