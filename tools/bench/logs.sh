#!/usr/bin/env bash
# Measures zstd on the relay's log batches: compression ratio and speed, with and without a
# dictionary.
#
# The relay ships phones' log lines upstream as NDJSON, at most logs.batch_bytes (1 MiB) a batch,
# each batch one zstd frame that plain `zstd -d` decodes (CONTRACT.md "Log batches"). This script
# answers which level to compress at and whether a dictionary would pay for the trouble of
# sharing it with the upstream. It generates the records with tools/phone-logs (a 300-phone site,
# 1 GiB of NDJSON; --quick: 8 MiB), and measures, round by round:
#   1. batches of 1 MiB of whole lines, each compressed as one frame, at levels 1, 3 and 6,
#   2. the same with a dictionary trained on another site ("fleet": other names, addresses,
#      models and relay id; what one dictionary shipped with every relay would face), and with
#      one trained on the same site on other days ("site": the best case, a dictionary per relay,
#      which the upstream would have to hold for every relay),
#   3. both again with batches of 64 KiB, where a dictionary usually matters most (a relay with
#      few phones, or one that sends on batch_age rather than on size),
# and prints one table: compressed size, ratio, what each dictionary saves against none, and the
# speed. Nothing is judged: there are no targets yet. The last lines are RESULT lines for
# tools/bench/run (lib.sh's bench_result), in --quick too: the ratio and speed of what the relay
# does (level 6, sync/log_batch.h's kLogBatchLevel; 1 MiB batches; no dictionary), reported
# without a target.
#
# Method. `phone_logs --compress-bench` does the work in process with libzstd, as the relay will:
# it reads the NDJSON, cuts batches on line boundaries, compresses each with ZSTD_compress2 on one
# reused context (one thread, no zstd workers), the frame carrying its content size and a
# checksum as the zstd CLI writes them, and checks that every frame decompresses to its batch.
# A dictionary is loaded once into a prepared ZSTD_CDict before the clock starts, as the relay
# would at start. Speed is MB/s (10^6 bytes of NDJSON in) per second of that thread's CPU time
# inside ZSTD_compress2: one core's worth, and on a shared machine a much steadier figure than
# wall time, which the runs column shows beside it. The level-3 frames of both batch sizes are
# also written out once and decoded with the zstd CLI, which must give the input back byte for
# byte: the "plain zstd -d" promise for the no-dictionary frames.
#
# Dictionaries: `zstd --train` (fastcover, its defaults, tuned for level 3) on 1,000 samples of
# 64 KiB (62.5 MiB; --quick: 64 samples), about 600 times the dictionary size, into 112,640
# bytes (110 KiB, zstd's default --maxdict). The CLI takes samples of at most 128 KiB (-B1M fails
# an assertion in zstd 1.5.4), and what a dictionary helps with is the start of each frame. The
# training sets are generated with other seeds than the measured data, so no record is in both.
#
# Fairness. Every configuration compresses the same bytes from a warm page cache; rounds run all
# configurations in turn, the dictionaries' order alternating, and the median speed is reported
# (sizes are the same in every round: that is checked). The data is synthetic: the generator
# writes lines as PHONES.md shows them, with repeated and varying messages, but real logs with
# more unique text (or fewer debug-level phones) compress differently, so read the ratios as
# relative, the level and dictionary comparisons as the point.
#
# A full run takes about a minute per round (three rounds by default) plus 15 s to generate and
# train, on one core; --quick a few seconds. Everything happens in a fresh work directory under
# ${TMPDIR:-/tmp} (about 1.2 GiB), removed at the end.
#
# usage: tools/bench/logs.sh [--quick] [--runs N] [--mib N]
# Exit: 0 done; 2 usage error, missing tool or a failed command (a batch that did not give
#       itself back, frames that zstd -d rejects, sizes that differ between rounds).
set -euo pipefail
export LC_ALL=C  # '.' as the decimal separator in awk and printf.

readonly kPhones=300
readonly kDictBytes=112640   # zstd's default --maxdict
readonly kSampleBytes=65536  # one training sample; zstd --train -B takes at most 128 KiB
readonly kLevels=(1 3 6)
readonly kBatches=(1048576 65536)
readonly kDicts=(none fleet site)
readonly kRelay=branch-042        # the measured site's relay id
readonly kFleetRelay=branch-017   # the other site's
readonly kRelayLevel=6            # sync/log_batch.h's kLogBatchLevel: what the relay compresses at
readonly kRelayBatch=1048576      # logs.batch_bytes' default

usage() {
  cat <<EOF
usage: $0 [--quick] [--runs N] [--mib N]

  --quick    CI mode: 8 MiB of records, 64 training samples, 1 round; checks that it runs
  --runs N   rounds of every measurement; the median speed is reported (default 3)
  --mib N    MiB of NDJSON to measure (default 1024; --quick: 8)

Needs zstd (the CLI, for --train and the decode check) and phone_logs, built with
  cmake --build build --target phone_logs
(PHONE_LOGS=path overrides $repo_root/build/tools/phone-logs/phone_logs). Work directory: a
fresh one under \${TMPDIR:-/tmp}, removed at the end.
EOF
}

bench_name=logs.sh
# shellcheck source=tools/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mib=
bench_own_option() {
  BENCH_SHIFT=1
  case $1 in
    --mib)
      (($# >= 2)) || die "--mib needs a number"
      mib=$2
      BENCH_SHIFT=2
      ;;
    --mib=*) mib=${1#--mib=} ;;
    *) BENCH_SHIFT=0 ;;
  esac
}
default_binary=$binary
bench_parse_options "$@"
((check == 0)) || die "--check: this benchmark has no targets yet"
[[ $binary == "$default_binary" ]] || die "--binary: not used here (PHONE_LOGS=path picks phone_logs)"

if ((quick)); then
  : "${mib:=8}"
  samples=64
  : "${runs:=1}"
else
  : "${mib:=1024}"
  samples=1000
  : "${runs:=3}"
fi
bench_positive --mib "$mib"
bench_positive --runs "$runs"

# ---- prerequisites ----------------------------------------------------------------------------

bench_need_tools zstd:zstd cmp:diffutils
phone_logs=${PHONE_LOGS:-$repo_root/build/tools/phone-logs/phone_logs}
[[ -x $phone_logs ]] || die "no phone_logs at $phone_logs; build it with:" \
  "cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build --target phone_logs"

work=$(mktemp -d "${TMPDIR:-/tmp}/siterelay-bench-logs.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the data ---------------------------------------------------------------------------------

test_data="$work/test.ndjson"
echo "generating $mib MiB of NDJSON ($kPhones phones) ..." >&2
t0=$EPOCHREALTIME
"$phone_logs" --ndjson --phones "$kPhones" --bytes "${mib}M" --seed "$kSeed" --relay "$kRelay" \
  >"$test_data"
t1=$EPOCHREALTIME
test_bytes=$(stat -c %s "$test_data")
gen_mbps=$(awk -v b="$test_bytes" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.0f", b / 1e6 / (t1 - t0)}')
first_received=$(head -n 1 "$test_data" | sed 's/.*"received":"\([^"]*\)".*/\1/')
last_received=$(tail -n 1 "$test_data" | sed 's/.*"received":"\([^"]*\)".*/\1/')

# Training sets: other seeds than the measured data, so they share no record with it. The fleet
# set is another site altogether; the site set is the measured site (same phones, names and
# addresses) in other weeks.
train_bytes=$((samples * kSampleBytes))
echo "generating 2 training sets of $samples x $((kSampleBytes / 1024)) KiB and training ..." >&2
"$phone_logs" --ndjson --phones "$kPhones" --bytes "$train_bytes" --seed $((kSeed + 1)) \
  --site $((kSeed + 1)) --relay "$kFleetRelay" >"$work/train-fleet.ndjson"
"$phone_logs" --ndjson --phones "$kPhones" --bytes "$train_bytes" --seed $((kSeed + 2)) \
  --site "$kSeed" --relay "$kRelay" >"$work/train-site.ndjson"
declare -A train_seconds=()
for d in fleet site; do
  t0=$EPOCHREALTIME
  zstd -q -f --train -B"$kSampleBytes" --maxdict="$kDictBytes" -3 "$work/train-$d.ndjson" \
    -o "$work/$d.dict" || die "zstd --train failed on $work/train-$d.ndjson"
  t1=$EPOCHREALTIME
  train_seconds[$d]=$(awk -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.1f", t1 - t0}')
  rm -f "$work/train-$d.ndjson"
done

# ---- the measurements ---------------------------------------------------------------------------

# field KEY LINE: the value of KEY=value in a --compress-bench line.
field() {
  awk -v k="$1" '{for (i = 1; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k)
    print substr($i, n + 1) }}' <<<"$2"
}

declare -A compressed=() ratio=() batches=() speeds=() wall_speeds=()
libzstd=
lines=
# One pass over the data: level, batch bytes, dictionary (none|fleet|site), frames file or "".
measure() {
  local level=$1 batch=$2 dict=$3 frames=$4 key="$2/$1/$3" out args=()
  args=(--compress-bench "$level" --batch-bytes "$batch")
  [[ $dict == none ]] || args+=(--dict "$work/$dict.dict")
  [[ -z $frames ]] || args+=(--frames-out "$frames")
  out=$("$phone_logs" "${args[@]}" <"$test_data") || die "phone_logs ${args[*]} failed"
  if [[ -n ${compressed[$key]:-} ]]; then
    [[ $(field compressed_bytes "$out") == "${compressed[$key]}" ]] ||
      die "$key: $(field compressed_bytes "$out") bytes this round, ${compressed[$key]} before"
  fi
  compressed[$key]=$(field compressed_bytes "$out")
  ratio[$key]=$(field ratio "$out")
  batches[$key]=$(field batches "$out")
  speeds[$key]="${speeds[$key]:-} $(field mbps "$out")"
  wall_speeds[$key]="${wall_speeds[$key]:-} $(field mbps_wall "$out")"
  libzstd=$(field libzstd "$out")
  lines=$(field lines "$out")
  [[ $(field raw_bytes "$out") == "$test_bytes" ]] || die "$key: not all the input was compressed"
}

for ((r = 1; r <= runs; r++)); do
  echo "round $r/$runs ..." >&2
  for batch in "${kBatches[@]}"; do
    for level in "${kLevels[@]}"; do
      if ((r % 2)); then order=("${kDicts[@]}"); else order=(site fleet none); fi
      for dict in "${order[@]}"; do
        frames=
        if ((r == 1)) && [[ $level == 3 && $dict == none ]]; then frames="$work/frames.zst"; fi
        measure "$level" "$batch" "$dict" "$frames"
        if [[ -n $frames ]]; then
          # CONTRACT.md: plain `zstd -d` decodes a batch. The frames one after the other decode
          # to the input, whole.
          zstd -q -d -c "$frames" | cmp -s - "$test_data" ||
            die "zstd -d did not give back the input from the level-3 frames of $batch bytes"
          rm -f "$frames"
        fi
      done
    done
  done
done

# ---- the report -------------------------------------------------------------------------------

median() { bench_median 0 "$@"; }
human_bytes() {
  awk -v b="$1" 'BEGIN { if (b >= 1048576) printf "%.1f MiB", b / 1048576;
    else printf "%.1f KiB", b / 1024 }'
}

echo "# siterelay log-batch compression benchmark (zstd, in process, one frame per batch)"
bench_machine_lines
zstd_cli=$(zstd --version 2>&1 | grep -o 'v[0-9][0-9.]*' | head -n 1)
echo "zstd:       libzstd $libzstd in phone_logs --compress-bench; zstd CLI ${zstd_cli:-unknown} for" \
  "--train and the decode check"
echo "data:       $(human_bytes "$test_bytes") of NDJSON ($lines records, $((test_bytes / lines)) bytes" \
  "each on average), $kPhones phones, relay '$kRelay', seed $kSeed; received" \
  "$first_received .. $last_received; generated at $gen_mbps MB/s"
echo "dicts:      $kDictBytes bytes each, zstd --train -B$kSampleBytes -3 on $samples samples" \
  "($(human_bytes "$train_bytes")): fleet = another site, relay '$kFleetRelay'" \
  "(${train_seconds[fleet]} s); site = the same site, other weeks (${train_seconds[site]} s)"
echo "runs:       $runs round(s), dictionary order alternating; median MB/s; MB = 10^6 bytes of" \
  "NDJSON in, per CPU second of the compressing thread (wall-clock MB/s in the last column)"
echo "check:      every frame decompressed to its batch; level-3 frames (no dictionary) of both" \
  "batch sizes decoded by zstd -d to the input, byte for byte"
if ((quick)); then
  echo "note:       --quick checks that the benchmark runs; $mib MiB and $samples training" \
    "samples are too few for the figures to mean much"
fi
echo

printf '%-7s %-5s %-6s %8s %12s %7s %7s %8s   %s\n' batch level dict batches compressed ratio \
  saves MB/s "runs MB/s (CPU; wall)"
for batch in "${kBatches[@]}"; do
  if ((batch % 1048576 == 0)); then label="$((batch / 1048576)) MiB"; else label="$((batch / 1024)) KiB"; fi
  for level in "${kLevels[@]}"; do
    none=${compressed[$batch/$level/none]}
    for dict in "${kDicts[@]}"; do
      key="$batch/$level/$dict"
      saves=
      if [[ $dict != none ]]; then
        saves=$(awk -v a="$none" -v b="${compressed[$key]}" 'BEGIN {printf "%.1f%%", 100 * (a - b) / a}')
      fi
      # shellcheck disable=SC2086  # one speed a word
      printf '%-7s %-5s %-6s %8s %12s %7.2f %7s %8s   %s; %s\n' "$label" "$level" "$dict" \
        "${batches[$key]}" "$(human_bytes "${compressed[$key]}")" "${ratio[$key]}" "$saves" \
        "$(median ${speeds[$key]})" "${speeds[$key]# }" "${wall_speeds[$key]# }"
      label=
    done
  done
done
echo "(saves: compressed bytes saved against no dictionary at the same level and batch size)"
echo
key="$kRelayBatch/$kRelayLevel/none"
what="log batches as the relay cuts them (zstd $kRelayLevel, $((kRelayBatch >> 20)) MiB, no dict)"
bench_result "$what: NDJSON / zstd" "${ratio[$key]}" - x - - -
# shellcheck disable=SC2086  # one speed a word
bench_result "$what: speed, one core" "$(median ${speeds[$key]})" - MB/s - - -
exit 0
