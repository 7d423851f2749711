// FUZZ_CHECK: the invariant check of the libFuzzer targets in this folder.
//
// A broken invariant must stop the run the way a sanitizer report does, so libFuzzer saves the
// input as a crash artifact. The condition is printed first: a bare __builtin_trap() leaves only
// a line number in a stack trace, and whoever reads the report should not have to map it back.
#pragma once

#include <cstdio>

#define FUZZ_CHECK(cond)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "fuzz invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      __builtin_trap();                                                                        \
    }                                                                                          \
  } while (0)
