#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz for SECONDS each, one after the other.
#
#   tests/fuzz/run.sh [--jobs N] SECONDS [BUILD_DIR]
#
# BUILD_DIR defaults to build-fuzz in the repository. --jobs runs N targets at a time (default 1):
# each target still gets SECONDS of wall time, so a long run on a quiet machine uses every core.
#
# BUILD_DIR must be configured with -DSITERELAY_FUZZ=ON (see tests/fuzz/CMakeLists.txt) and built.
# Each target mutates a scratch copy of its seed corpus, BUILD_DIR/fuzz-run/corpus/<target>, so
# the checked-in corpus never changes; crash inputs and logs stay in BUILD_DIR/fuzz-run as well.
# Exit status: 0 when no target found anything, 1 when one crashed, timed out or ran out of
# memory, 2 on a usage error or a missing target.
set -euo pipefail

usage() {
  echo "usage: $0 [--jobs N] SECONDS [BUILD_DIR]" >&2
  exit 2
}

jobs=1
if [[ ${1:-} == --jobs ]]; then
  [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || usage
  jobs=$2
  shift 2
fi
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

# run_target TARGET: fuzzes one target and writes its summary to logs/TARGET.summary; a first
# line "ok" or "FAILED" says how it went.
run_target() {
  local target=$1 seeds=$here/corpus/$1
  local bin=$build/tests/fuzz/$target corpus=$run_dir/corpus/$target log=$run_dir/logs/$target.log
  local summary=$run_dir/logs/$target.summary
  cp -R "$seeds" "$corpus"
  local args=(-max_total_time="$budget" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
              -artifact_prefix="$run_dir/artifacts/$target-")
  local dict=$here/${target%_fuzz}.dict
  [[ -f $dict ]] && args+=(-dict="$dict")

  local status=0
  "$bin" "${args[@]}" "$corpus" >"$log" 2>&1 || status=$?
  local execs rate cov ft edges units
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 || true)
  # "INFO: Loaded 1 modules (N inline 8-bit counters)": the edges instrumented in the binary.
  edges=$(sed -n 's/^INFO: Loaded [0-9]* modules *(\([0-9]*\) inline 8-bit counters).*/\1/p' "$log" |
          head -n 1)
  units=$(find "$corpus" -type f | wc -l)
  {
    if [[ $status -eq 0 ]]; then
      echo "ok"
      echo "   ok: ${execs:-?} runs, ${rate:-?} exec/s, ${cov:-cov: ?} of ${edges:-?} edges," \
           "${ft:-ft: ?}, corpus $units"
    else
      echo "FAILED"
      echo "   FAILED (exit $status): ${execs:-?} runs, ${rate:-?} exec/s; log: $log"
      grep -E '^(==[0-9]+==ERROR|fuzz invariant broken|SUMMARY|.*runtime error)' "$log" |
        head -n 5 | sed 's/^/   /' || true
      for artifact in "$run_dir/artifacts/$target-"*; do
        if [[ -e $artifact ]]; then echo "   input: $artifact"; fi
      done
    fi
  } >"$summary"
}

targets=()
for seeds in "$here"/corpus/*/; do
  target=$(basename "$seeds")
  if [[ ! -x $build/tests/fuzz/$target ]]; then
    echo "$0: $build/tests/fuzz/$target is missing; build $build with -DSITERELAY_FUZZ=ON first" >&2
    exit 2
  fi
  targets+=("$target")
done

# With --jobs 1 each target's summary follows its run; otherwise all follow the last run.
running=()
for target in "${targets[@]}"; do
  if [[ $jobs -eq 1 ]]; then echo "== $target: ${budget}s"; fi
  run_target "$target" &
  running+=($!)
  if [[ ${#running[@]} -ge $jobs ]]; then
    wait "${running[0]}"
    running=("${running[@]:1}")
  fi
  if [[ $jobs -eq 1 ]]; then tail -n +2 "$run_dir/logs/$target.summary"; fi
done
if [[ ${#running[@]} -gt 0 ]]; then wait "${running[@]}"; fi

failed=()
for target in "${targets[@]}"; do
  if [[ $jobs -gt 1 ]]; then
    echo "== $target: ${budget}s"
    tail -n +2 "$run_dir/logs/$target.summary"
  fi
  if [[ $(head -n 1 "$run_dir/logs/$target.summary") != ok ]]; then failed+=("$target"); fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzzing found problems in: ${failed[*]}" >&2
  exit 1
fi
echo "no findings"
