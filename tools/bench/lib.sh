# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154  # its variables are set and read by the sourcing script
# Shared by the benchmark scripts in this folder: sourced, not run. The sourcing script sets
# bench_name (for messages) and repo_root first.

die() {
  echo "$bench_name: $*" >&2
  exit 2
}

# The options every benchmark takes: --quick, --check, --runs N, --binary PATH. Sets quick,
# check, runs and binary; BENCH_SHIFT is how many arguments it used, 0 when $1 is not one of
# them (the script handles it).
quick=0
check=0
runs=
binary="$repo_root/build/siterelay"
bench_common_option() {
  BENCH_SHIFT=1
  case $1 in
    --quick) quick=1 ;;
    --check) check=1 ;;
    --runs)
      (($# >= 2)) || die "--runs needs a number"
      runs=$2
      BENCH_SHIFT=2
      ;;
    --runs=*) runs=${1#--runs=} ;;
    --binary)
      (($# >= 2)) || die "--binary needs a path"
      binary=$2
      BENCH_SHIFT=2
      ;;
    --binary=*) binary=${1#--binary=} ;;
    *) BENCH_SHIFT=0 ;;
  esac
}

# The command, date and machine lines that open every benchmark's output.
bench_machine_lines() {
  local cpu_model mem_total
  cpu_model=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
  mem_total=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null ||
    true)
  echo "command:    $command_line"
  echo "date:       $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine:    nproc=$(nproc), cpu=${cpu_model:-unknown}, mem=${mem_total:-unknown}," \
    "kernel $(uname -r)"
}
