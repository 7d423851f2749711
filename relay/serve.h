// `siterelay serve`: the relay in the foreground. See serve.cc.
#pragma once

#include <string>

namespace siterelay {

// Runs until SIGTERM or SIGINT; returns the process exit code.
int Serve(const std::string& config_path);

}  // namespace siterelay
