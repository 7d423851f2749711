#include <cstring>

#include "relay/base/memory.h"
#include "relay/cli.h"

int main(int argc, char** argv) {
  // Before anything else, while only this thread runs: see memory.h.
  if (argc >= 2 && std::strcmp(argv[1], "serve") == 0) siterelay::SkipUnusedLibraryInit(argv);
  return siterelay::RunCli(argc, argv);
}
