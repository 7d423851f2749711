#!/usr/bin/env bash
# Soaks the power-loss test: PowerLossTest (tests/sync/power_loss_test.cc) cuts the power at a
# random point of a relay's life — every write not yet fsynced dropped, through the FileSystem
# seam — restarts it, and checks the invariants of DESIGN.md "On disk". CI runs a few
# iterations; this runs many, each with its own seed (consecutive from --seed, random by
# default), and prints how many ran and how long they took. A failure prints its seed and the
# command that replays it alone.
#
# usage: tools/bench/power-loss.sh [--iterations N] [--seed S] [--binary PATH]
# Exit: 0 every iteration passed; 1 one failed; 2 usage error or missing binary.
set -euo pipefail
export LC_ALL=C

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
iterations=500
seed=
binary="$repo_root/build/tests/sync_test"
readonly test=PowerLossTest.AcknowledgedUploadsAndLogLinesSurviveAPowerCutAtAnyPoint

usage() {
  cat <<EOF
usage: $0 [--iterations N] [--seed S] [--binary PATH]

  --iterations N  power cuts to survive, each a fresh data_dir (default 500)
  --seed S        the first iteration's seed, the next ones count up (default: random)
  --binary PATH   the sync test binary (default: $repo_root/build/tests/sync_test)

Temporary data_dirs go to \$TMPDIR (default /tmp); TMPDIR=/dev/shm makes the soak faster.
EOF
}

die() {
  echo "power-loss: $*" >&2
  exit 2
}

while (($#)); do
  case $1 in
    --iterations)
      (($# >= 2)) || die "--iterations needs a number"
      iterations=$2
      shift 2
      ;;
    --iterations=*)
      iterations=${1#--iterations=}
      shift
      ;;
    --seed)
      (($# >= 2)) || die "--seed needs a number"
      seed=$2
      shift 2
      ;;
    --seed=*)
      seed=${1#--seed=}
      shift
      ;;
    --binary)
      (($# >= 2)) || die "--binary needs a path"
      binary=$2
      shift 2
      ;;
    --binary=*)
      binary=${1#--binary=}
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
done
[[ $iterations =~ ^[1-9][0-9]*$ ]] || die "--iterations must be a positive number"
[[ -z $seed || $seed =~ ^[0-9]+$ ]] || die "--seed must be a number"
[[ -x $binary ]] || die "no test binary at $binary (cmake --build build --target sync_test)"
[[ -n $seed ]] || seed=$(((RANDOM << 15 | RANDOM) + 1))

echo "power-loss: $iterations iterations from seed $seed ($binary)"
start=$EPOCHREALTIME
status=0
SITERELAY_POWER_LOSS_ITERATIONS=$iterations SITERELAY_POWER_LOSS_SEED=$seed \
  "$binary" --gtest_filter="$test" --gtest_brief=1 || status=$?
elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
if ((status == 0)); then
  per_min=$(awk -v n="$iterations" -v t="$elapsed" \
    'BEGIN { printf "%.0f", (t > 0) ? n / t * 60 : 0 }')
  echo "power-loss: $iterations iterations passed in $elapsed s ($per_min a minute)"
  exit 0
fi
echo "power-loss: FAILED after $elapsed s; the seed that failed is printed above, replay it with" \
  "SITERELAY_POWER_LOSS_SEED=<seed> SITERELAY_POWER_LOSS_ITERATIONS=1 $binary" \
  "--gtest_filter=$test" >&2
exit 1
