#!/usr/bin/env bash
# Benchmarks `siterelay import` against single-threaded SHA-256 references.
#
# The import hashes every byte it copies, so the fastest it could be on one core is the speed of
# hashing alone. This script times, over the same warm tree and in the same run:
#   1. openssl dgst -sha256 over all files (one single-threaded process),
#   2. sha256sum over all files (coreutils, for reference),
#   3. siterelay import of the tree into a fresh, empty data_dir,
# and reports median wall times, throughput, the import/hash speed ratios and the relay's peak
# RSS, checked against the targets (issue 9, as the foundation issue set them): import >= 0.6x
# openssl dgst speed, peak RSS < 64 MiB. The last lines are RESULT lines for tools/bench/run
# (lib.sh's bench_result), in --quick too.
#
# The tree (1,000 files, 1 GiB; --quick: 100 files, 64 MiB) is generated once and cached under
# $BENCH_DIR (default /tmp/siterelay-bench-import). File sizes and contents are deterministic:
# sizes come from a fixed-seed LCG, contents are AES-128-CTR keystream under a fixed key with a
# per-file IV, so no two files are identical and the content-addressed store cannot deduplicate.
#
# The import's time includes making the objects durable (a syncfs per batch of files), so put
# $BENCH_DIR on the kind of disk the relay will use; a tmpfs flatters it.
#
# usage: tools/bench/import.sh [--quick] [--runs N] [--binary PATH] [--check]
# Exit: 0 done (targets are reported, not enforced); 1 a target failed under --check;
#       2 usage error, missing tool or a failed command.
set -euo pipefail
export LC_ALL=C  # '.' as the decimal separator in $EPOCHREALTIME, awk and printf.

readonly kTargetRatio=0.6  # import speed / openssl dgst speed, at least
readonly kTargetRssMiB=64  # peak resident set of the relay during import, below
readonly kMiB=$((1 << 20))

usage() {
  cat <<EOF
usage: $0 [--quick] [--runs N] [--binary PATH] [--check]

  --quick        CI mode: 100 files, 64 MiB, 1 run (unless --runs is given)
  --runs N       repetitions of each measurement; the median is reported (default 3)
  --binary PATH  siterelay binary (default: $repo_root/build/siterelay)
  --check        exit 1 when a target fails (default: report only)

Work directory: \$BENCH_DIR (default /tmp/siterelay-bench-import); the generated tree is kept
there between runs.
EOF
}

bench_name=import.sh
# shellcheck source=tools/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_parse_options "$@"

if ((quick)); then
  n_files=100
  total_bytes=$((64 * kMiB))
  # "Firmware" images: a few large files. Scaled down so the quick tree still has the same mix.
  n_large=2
  large_min=$((8 * kMiB))
  large_max=$((16 * kMiB))
  : "${runs:=1}"
else
  n_files=1000
  total_bytes=$((1024 * kMiB))
  n_large=8
  large_min=$((50 * kMiB))
  large_max=$((100 * kMiB))
  : "${runs:=3}"
fi
bench_positive --runs "$runs"

# ---- prerequisites ----------------------------------------------------------------------------

[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is missing; it measures the relay's" \
  "peak RSS. tools/install-deps installs it (Debian/Ubuntu package 'time')."
command -v openssl >/dev/null || die "openssl is missing"
command -v sha256sum >/dev/null || die "sha256sum (coreutils) is missing"
bench_resolve_binary

bench_dir=${BENCH_DIR:-/tmp/siterelay-bench-import}
mkdir -p "$bench_dir"
bench_dir=$(cd "$bench_dir" && pwd)
# data_dir goes into a TOML literal string, which cannot hold a quote or a newline.
[[ $bench_dir != *[\'$'\n']* ]] || die "BENCH_DIR must not contain a quote or newline"

# Every run times a private copy, so a rebuild of build/ during the benchmark can neither swap
# the binary between runs nor fail a run with "text file busy".
relay="$bench_dir/siterelay"
cp "$binary" "$relay.tmp"
mv "$relay.tmp" "$relay"

now() {
  if [[ -n ${EPOCHREALTIME:-} ]]; then
    echo "$EPOCHREALTIME"
  else
    date +%s.%N
  fi
}

# ---- the tree ---------------------------------------------------------------------------------

# A 31-bit LCG (glibc's constants) in shell arithmetic: the same sizes on every machine, unlike
# awk's rand(), which differs between mawk and gawk.
lcg_state=$kSeed
lcg_next() { lcg_state=$(((lcg_state * 1103515245 + 12345) % 2147483648)); }

# Writes "size<TAB>relative path" lines, n_files of them, summing exactly to total_bytes.
plan_tree() {
  local i size remaining=$total_bytes span
  local -a weights=()
  local weight_sum=0
  span=$((large_max - large_min + 1))
  for ((i = 0; i < n_large; i++)); do
    lcg_next
    size=$((large_min + lcg_state % span))
    remaining=$((remaining - size))
    printf '%d\tfirmware/image-%03d.ld\n' "$size" "$i"
  done
  # Small files: log-uniform weights from 1 KiB to 8 MiB (configs, directories, ringtones,
  # wallpapers), scaled so the tree adds up to the total; the last file takes the rounding.
  local n_small=$((n_files - n_large)) e base
  for ((i = 0; i < n_small; i++)); do
    lcg_next
    e=$((lcg_state % 13))
    base=$((1024 << e))
    lcg_next
    weights[i]=$((base + lcg_state % base))
    weight_sum=$((weight_sum + weights[i]))
  done
  ((remaining >= n_small)) || die "internal: no room left for the small files"
  local left=$remaining dir ext
  local -a exts=(cfg xml txt wav bmp)
  for ((i = 0; i < n_small; i++)); do
    if ((i == n_small - 1)); then
      size=$left
    else
      size=$((remaining * weights[i] / weight_sum))
      ((size > 0)) || size=1
    fi
    left=$((left - size))
    printf -v dir "site/%02d" $((i % 20))
    ext=${exts[i % ${#exts[@]}]}
    printf '%d\t%s/file-%04d.%s\n' "$size" "$dir" "$i" "$ext"
  done
}

tree_name="tree-${n_files}f-${total_bytes}b-seed${kSeed}"
tree="$bench_dir/$tree_name"
plan="$bench_dir/$tree_name.plan"

tree_is_complete() {
  [[ -d $tree && -f $plan ]] || return 1
  local count bytes
  read -r count bytes < <(find "$tree" -type f -printf '%s\n' |
    awk '{n++; s+=$1} END {printf "%d %d\n", n, s}')
  ((count == n_files && bytes == total_bytes))
}

generate_tree() {
  local tmp="$tree.tmp" i=0 size rel t0
  echo "generating $n_files files, $total_bytes bytes in $tree (once) ..." >&2
  t0=$(now)
  rm -rf "$tmp" "$tree" "$plan"
  mkdir -p "$tmp"
  plan_tree >"$plan.tmp"
  while IFS=$'\t' read -r size rel; do
    mkdir -p "$tmp/$(dirname "$rel")"
    bench_keystream "$size" "$i" >"$tmp/$rel"
    i=$((i + 1))
  done <"$plan.tmp"
  mv "$plan.tmp" "$plan"
  mv "$tmp" "$tree"
  awk -v t0="$t0" -v t1="$(now)" 'BEGIN {printf "generated in %.1f s\n", t1 - t0}' >&2
}

tree_is_complete || generate_tree
tree_is_complete || die "generated tree at $tree does not match the plan"

# One NUL-separated list, sorted, so every tool reads the files in the same order.
file_list="$bench_dir/$tree_name.files"
find "$tree" -type f -print0 | sort -z >"$file_list"

# ---- header: what ran where -------------------------------------------------------------------

bench_relay_facts "$bench_dir"

echo "# siterelay import benchmark"
bench_machine_lines
echo "openssl:    $(openssl version)"
echo "sha256sum:  $(sha256sum --version | head -n 1)"
echo "siterelay:  $relay_version ($binary, sha256 $relay_sha; source $source_rev)"
echo "threads:    UV_THREADPOOL_SIZE=${UV_THREADPOOL_SIZE:-unset (relay default 4)}"
small_range=$(awk -F'\t' -v skip="$n_large" 'NR > skip {
  if (min == "" || $1 < min) min = $1; if ($1 > max) max = $1 }
  END {printf "%.1f KiB-%.1f MiB", min / 1024, max / 1048576}' "$plan")
echo "tree:       $n_files files, $total_bytes bytes ($((total_bytes / kMiB)) MiB):" \
  "$n_large firmware images of $((large_min / kMiB))-$((large_max / kMiB)) MiB," \
  "$((n_files - n_large)) others of $small_range; seed $kSeed"
echo "bench dir:  $bench_dir ($fs_type)"
echo "runs:       $runs per tool, median reported, page cache warm"
if ((quick)); then
  echo "note:       --quick checks that the benchmark runs; its tree is too small for the" \
    "targets to mean much (start-up and fsyncs dominate)"
fi
echo

# ---- measurements -----------------------------------------------------------------------------

echo "warming the page cache ..." >&2
xargs -0 -a "$file_list" cat >/dev/null

data_dir="$bench_dir/data"
config="$bench_dir/bench.toml"
printf "# Written by tools/bench/import.sh.\ndata_dir = '%s'\n" "$data_dir" >"$config"
import_log="$bench_dir/import.log"
rss_file="$bench_dir/import.rss"

declare -a t_openssl=() t_sha256sum=() t_import=() rss_kib=() cpu_import=()

# Times "$@" with its output discarded; appends seconds to the array named by $1.
time_into() {
  local -n out=$1
  shift
  local t0 t1
  t0=$(now)
  "$@" >/dev/null
  t1=$(now)
  out+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')")
}

run_import() {
  rm -rf "$data_dir"
  sync  # earlier runs' writeback must not land inside this run's timing
  local t0 t1 rc=0
  t0=$(now)
  /usr/bin/time -f '%M %U %S' -o "$rss_file" \
    "$relay" --config "$config" import "$tree" >"$import_log" 2>&1 || rc=$?
  t1=$(now)
  if ((rc != 0)) || ! grep -q "^imported $n_files file(s)" "$import_log"; then
    cat "$import_log" >&2
    die "siterelay import failed (exit $rc); output above"
  fi
  t_import+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')")
  local rss user sys
  read -r rss user sys < <(tail -n 1 "$rss_file")
  rss_kib+=("$rss")
  cpu_import+=("$user $sys")
}

# Interleaved rounds, so a drift in machine load touches every tool alike.
for ((r = 1; r <= runs; r++)); do
  echo "round $r/$runs ..." >&2
  time_into t_openssl xargs -0 -a "$file_list" openssl dgst -sha256
  time_into t_sha256sum xargs -0 -a "$file_list" sha256sum
  run_import
done

# The import must have stored what sha256sum computes, or its speed means nothing.
xargs -0 -a "$file_list" sha256sum | sed "s|  $tree/|  |" | sort >"$bench_dir/expected.sums"
"$relay" --config "$config" cache ls |
  awk -F'\t' '{p = $1; sub(/^\//, "", p); print $3 "  " p}' | sort >"$bench_dir/imported.sums"
cmp -s "$bench_dir/expected.sums" "$bench_dir/imported.sums" ||
  die "the cache's digests differ from sha256sum's: diff $bench_dir/expected.sums" \
    "$bench_dir/imported.sums"
rm -rf "$data_dir"

# ---- report -----------------------------------------------------------------------------------

median() { bench_median 3 "$@"; }

m_openssl=$(median "${t_openssl[@]}")
m_sha256sum=$(median "${t_sha256sum[@]}")
m_import=$(median "${t_import[@]}")
peak_rss_kib=$(printf '%s\n' "${rss_kib[@]}" | sort -n | tail -n 1)
# CPU seconds of the import run whose wall time is the median (the first such run).
for ((r = 0; r < runs; r++)); do
  [[ ${t_import[r]} == "$m_import" ]] && break
done
((r < runs)) || r=0  # even run count: the median is an average of two runs; show the first
read -r median_user median_sys <<<"${cpu_import[r]}"

ratio_o=$(awk -v o="$m_openssl" -v i="$m_import" 'BEGIN {printf "%.2f", o / i}')
ratio_s=$(awk -v s="$m_sha256sum" -v i="$m_import" 'BEGIN {printf "%.2f", s / i}')
mbps() { awk -v b="$total_bytes" -v t="$1" 'BEGIN {printf "%.1f", b / t / 1e6}'; }
rss_mib=$(awk -v k="$peak_rss_kib" 'BEGIN {printf "%.1f", k / 1024}')
row() {  # tool, median seconds, runs
  printf '%-24s %10.3f %10.1f   %s\n' "$1" "$2" "$(mbps "$2")" "$3"
}
printf '%-24s %10s %10s   %s\n' tool "median s" MB/s "runs (s)"
row "openssl dgst -sha256" "$m_openssl" "${t_openssl[*]}"
row sha256sum "$m_sha256sum" "${t_sha256sum[*]}"
row "siterelay import" "$m_import" "${t_import[*]}"
echo
echo "import speed / openssl dgst speed: $ratio_o"
echo "import speed / sha256sum speed:    $ratio_s"
echo "relay peak RSS (max of runs):      $rss_mib MiB"
printf 'relay CPU (median run):            user %.2f s, sys %.2f s\n' "$median_user" "$median_sys"
echo

fail=0
ok_ratio=$(bench_holds "$ratio_o" ">=" "$kTargetRatio")
ok_rss=$(bench_holds "$rss_mib" "<" "$kTargetRssMiB")
# Start-up and syncs dominate the 64 MiB tree of --quick: nothing is judged there.
bench_judge 29 "target import/openssl >= $kTargetRatio:" "$ok_ratio" "$ratio_o"
bench_judge 29 "target peak RSS < $kTargetRssMiB MiB:" "$ok_rss" "$rss_mib MiB"
echo
bench_result "import $((total_bytes / kMiB)) MiB in $n_files files, vs openssl dgst -sha256" \
  "$(mbps "$m_import")" "$(mbps "$m_openssl")" MB/s "$ratio_o" ">=$kTargetRatio" "$ok_ratio"
bench_result "relay peak RSS (import)" "$rss_mib" - MiB - "<$kTargetRssMiB MiB" "$ok_rss"

if ((check && fail)); then
  exit 1
fi
exit 0
