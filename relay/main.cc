#include "relay/cli.h"

int main(int argc, char** argv) { return siterelay::RunCli(argc, argv); }
