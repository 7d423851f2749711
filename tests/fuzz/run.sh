#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz for SECONDS each, one after the other.
#
#   tests/fuzz/run.sh SECONDS [BUILD_DIR]      BUILD_DIR defaults to build-fuzz in the repository
#
# BUILD_DIR must be configured with -DSITERELAY_FUZZ=ON (see tests/fuzz/CMakeLists.txt) and built.
# Each target mutates a scratch copy of its seed corpus, BUILD_DIR/fuzz-run/corpus/<target>, so
# the checked-in corpus never changes; crash inputs and logs stay in BUILD_DIR/fuzz-run as well.
# Exit status: 0 when no target found anything, 1 when one crashed, timed out or ran out of
# memory, 2 on a usage error or a missing target.
set -euo pipefail

usage() {
  echo "usage: $0 SECONDS [BUILD_DIR]" >&2
  exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
# Not "SECONDS": bash gives that name a meaning of its own.
budget=$1
[[ $budget =~ ^[1-9][0-9]*$ ]] || usage

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${2:-$repo/build-fuzz}
[[ -d $build ]] || { echo "$0: no build directory $build" >&2; exit 2; }
build=$(cd "$build" && pwd)

run_dir=$build/fuzz-run
rm -rf "$run_dir"
mkdir -p "$run_dir/corpus" "$run_dir/artifacts" "$run_dir/logs"

failed=()
for seeds in "$here"/corpus/*/; do
  target=$(basename "$seeds")
  bin=$build/tests/fuzz/$target
  if [[ ! -x $bin ]]; then
    echo "$0: $bin is missing; build $build with -DSITERELAY_FUZZ=ON first" >&2
    exit 2
  fi
  corpus=$run_dir/corpus/$target
  cp -R "$seeds" "$corpus"
  log=$run_dir/logs/$target.log
  args=(-max_total_time="$budget" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$run_dir/artifacts/$target-")
  dict=$here/${target%_fuzz}.dict
  [[ -f $dict ]] && args+=(-dict="$dict")

  echo "== $target: ${budget}s"
  status=0
  "$bin" "${args[@]}" "$corpus" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
  if [[ $status -eq 0 ]]; then
    echo "   ok: ${execs:-?} runs, ${rate:-?} exec/s, ${cov:-cov: ?}"
  else
    failed+=("$target")
    echo "   FAILED (exit $status): ${execs:-?} runs, ${rate:-?} exec/s; log: $log"
    grep -E '^(==[0-9]+==ERROR|fuzz invariant broken|SUMMARY|.*runtime error)' "$log" | head -n 5 |
      sed 's/^/   /' || true
    for artifact in "$run_dir/artifacts/$target-"*; do
      if [[ -e $artifact ]]; then echo "   input: $artifact"; fi
    done
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzzing found problems in: ${failed[*]}" >&2
  exit 1
fi
echo "no findings"
