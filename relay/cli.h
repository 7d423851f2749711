// The `siterelay` command line (CONTRACT.md): argument parsing and the sub-commands that do not
// need a running relay. Runs on the main thread; each command owns its own loop when it needs one.
#pragma once

namespace siterelay {

// Exit codes: 0 success, 1 the command ran and found a problem (corrupt objects, files it could
// not import), 2 usage or configuration error.
int RunCli(int argc, char** argv);

}  // namespace siterelay
