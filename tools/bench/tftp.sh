#!/usr/bin/env bash
# Benchmarks the TFTP side of `siterelay serve` against tftpd-hpa and atftpd on loopback.
#
# Rove DECT bases and older phones provision over TFTP only, so after a power cut the relay's
# TFTP listener carries their firmware. This script starts the relay, tftpd-hpa's in.tftpd and
# atftpd in the same run, all serving the same generated files, and measures with the atftp
# client, interleaved round by round:
#   1. one 20 MiB image (--quick: 2 MiB) at blksize 1468, relay against tftpd-hpa (which has no
#      windowsize: one block per ACK for both),
#   2. the same image at blksize 1468 and windowsize 16, relay against atftpd,
#   3. 200 transfers at once (--quick: 20) of a 1 MiB file from the relay, each byte-exact,
# and reports the medians of the MB/s (wall clock of one atftp process), the relay/reference
# ratios and the relay's peak resident set (VmHWM) over the whole run. Targets (issue 9):
# relay/tftpd-hpa >= 1.0, relay/atftpd at windowsize 16 >= 1.0, relay peak RSS < 64 MiB. The last
# lines are RESULT lines for tools/bench/run (lib.sh's bench_result), in --quick too.
#
# Fairness. Every server runs pinned to CPU 0 (taskset -c 0) and every client to CPU 1, so the
# client never competes with the server under test. All serve the same bytes from a warm page
# cache (the references from the generated tree, the relay from its object store, into which the
# tree is imported first), each with its defaults but for the block size (in.tftpd -B 1468) and,
# for atftpd, its logging at the default level to a file in the work directory. The relay logs
# to a file too. Only one server is loaded at a time. Every transfer's bytes are checked by
# sha256; a wrong or failed transfer fails the benchmark.
#
# Nothing leaves the machine: all servers listen on 127.0.0.1 only. Every transfer runs under
# timeout(1) and the trap stops all servers however the script ends. A full run takes about a
# minute, --quick a few seconds.
#
# usage: tools/bench/tftp.sh [--quick] [--runs N] [--binary PATH] [--check]
# Exit: 0 done (targets are reported, not enforced); 1 a target failed under --check;
#       2 usage error, missing tool, a failed command, or a server failed (crashed, or a transfer
#       failed or came back with wrong bytes).
set -euo pipefail
export LC_ALL=C  # '.' as the decimal separator in awk and printf.

readonly kTargetHpaRatio=1.0     # relay MB/s / tftpd-hpa MB/s, blksize 1468, at least
readonly kTargetAtftpdRatio=1.0  # relay MB/s / atftpd MB/s, blksize 1468 windowsize 16, at least
readonly kTargetRssMiB=64        # peak resident set of the relay during the run, below
readonly kMiB=$((1 << 20))
readonly kBlksize=1468
readonly kWindowsize=16
readonly kSmallBytes=$kMiB
readonly kTransferSeconds=120    # for one transfer, or for all concurrent ones
readonly kServerCpu=0
readonly kClientCpu=1
# atftpd is unpacked, not installed: tools/install-deps puts it here (it conflicts with
# tftpd-hpa as a Debian package).
atftpd=${ATFTPD:-/var/cache/siterelay-bench/atftpd/usr/sbin/atftpd}

usage() {
  cat <<EOF
usage: $0 [--quick] [--runs N] [--binary PATH] [--check]

  --quick         CI mode: 2 MiB image, 1 run, 20 concurrent transfers; targets not judged
  --runs N        rounds of every measurement, interleaved; the median is reported
                  (default 3; --quick: 1)
  --binary PATH   siterelay binary (default: $repo_root/build/siterelay)
  --check         exit 1 when a target fails (default: report only)

Needs atftp, tftpd-hpa's in.tftpd, atftpd (unpacked into $(dirname "$(dirname "$(dirname \
    "$atftpd")")"); ATFTPD=path overrides), taskset and at least 2 CPUs; tools/install-deps
installs them. Work directory: a fresh one under \${TMPDIR:-/tmp}, removed at the end (kept, with
the servers' logs, when a server failed).
EOF
}

bench_name=tftp.sh
# shellcheck source=tools/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_parse_options "$@"

if ((quick)); then
  big_bytes=$((2 * kMiB))
  concurrent=20
  : "${runs:=1}"
else
  big_bytes=$((20 * kMiB))
  concurrent=200
  : "${runs:=3}"
fi
bench_positive --runs "$runs"

# ---- prerequisites ----------------------------------------------------------------------------

bench_need_tools atftp:atftp taskset:util-linux openssl:openssl ss:iproute2 timeout:coreutils
in_tftpd=$(PATH="$PATH:/usr/sbin:/sbin" command -v in.tftpd) || missing_tool in.tftpd tftpd-hpa
[[ -x $atftpd ]] || die "atftpd is missing at $atftpd; tools/install-deps unpacks it there"
(($(nproc) >= 2)) || die "needs 2 CPUs (server on CPU $kServerCpu, client on CPU $kClientCpu)"
bench_resolve_binary

bench_work_dir "relay.log, in.tftpd.log, atftpd.log"
in_tftpd_pid=
atftpd_pid=
# shellcheck disable=SC2317  # run by lib.sh's trap
bench_cleanup_own() {
  local pid
  for pid in $in_tftpd_pid $atftpd_pid; do
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" "$kStopSeconds" || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  in_tftpd_pid=
  atftpd_pid=
}

# ---- the files --------------------------------------------------------------------------------

tree="$work/tree"
big_path=firmware/rove-base.fwu
small_path=firmware/rove-handset.fwu
mkdir -p "$tree/firmware" "$work/out"
echo "generating a $((big_bytes / kMiB)) MiB image and a $((kSmallBytes / kMiB)) MiB file ..." >&2
bench_keystream "$big_bytes" 0 >"$tree/$big_path"
bench_keystream "$kSmallBytes" 1 >"$tree/$small_path"
big_sha=$(sha256sum "$tree/$big_path" | cut -d' ' -f1)
small_sha=$(sha256sum "$tree/$small_path" | cut -d' ' -f1)

# ---- the servers ------------------------------------------------------------------------------

config="$work/relay.toml"
cat >"$config" <<EOF
# Written by tools/bench/tftp.sh: phones over TFTP and the admin port on loopback, any free port.
data_dir = '$work/data'
$(bench_relay_listeners tftp)
EOF
echo "importing into the relay's cache ..." >&2
"$relay" import "$tree" --config "$config" >"$work/import.log" 2>&1 ||
  { cat "$work/import.log" >&2; die "siterelay import failed; output above"; }
start_relay "$work/relay.log" tftp
taskset -a -p -c "$kServerCpu" "$relay_pid" >/dev/null

# Both references drop to another user after binding; as root that would be 'nobody', who cannot
# read the private work directory, so they stay the user that runs the script. in.tftpd's -s
# (chroot) needs root; as any other user it serves the tree by its path instead.
user=$(id -un)
group=$(id -gn)
if (($(id -u) == 0)); then in_tftpd_root=(-s "$tree"); else in_tftpd_root=("$tree"); fi

# Starts a reference server, "$@" with PORT standing for its port, on a few random unlisted
# ports until one binds it. Sets ${1}_pid and ${1}_port.
start_reference() {  # name, log file, command...
  local name=$1 log=$2 attempt tenths port arg pid
  shift 2
  for ((attempt = 0; attempt < 10; attempt++)); do
    port=$((20000 + RANDOM % 40000))
    ss -Huln "sport = :$port" | grep -q . && continue
    local cmd=()
    for arg in "$@"; do cmd+=("${arg//PORT/$port}"); done
    : >"$log"
    taskset -c "$kServerCpu" "${cmd[@]}" >>"$log" 2>&1 &
    pid=$!
    printf -v "${name}_pid" %s "$pid"  # for the trap from now on
    tenths=$((kStartSeconds * 10))
    while ((tenths-- > 0)); do
      kill -0 "$pid" 2>/dev/null || break
      if ss -Huln "sport = :$port" | grep -q .; then
        printf -v "${name}_port" %s "$port"
        return 0
      fi
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    printf -v "${name}_pid" %s ""
  done
  cat "$log" >&2
  die "$name did not start: $*; its output above"
}
in_tftpd_port=
atftpd_port=
start_reference in_tftpd "$work/in.tftpd.log" \
  "$in_tftpd" -L -v -u "$user" -B "$kBlksize" -a 127.0.0.1:PORT "${in_tftpd_root[@]}"
start_reference atftpd "$work/atftpd.log" \
  "$atftpd" --daemon --no-fork --port PORT --bind-address 127.0.0.1 --user "$user" \
  --group "$group" --logfile "$work/atftpd.log" "$tree"

# ---- transfers --------------------------------------------------------------------------------

# Fetches $2 from port $1 with atftp on the client CPU into $3, with blksize and, when $4 is not
# empty, windowsize $4.
fetch() {  # port, remote path, local file, windowsize
  local options=(--option "blksize $kBlksize")
  [[ -n $4 ]] && options+=(--option "windowsize $4")
  timeout --kill-after=5 "$kTransferSeconds" taskset -c "$kClientCpu" \
    atftp "${options[@]}" -g -r "$2" -l "$3" 127.0.0.1 "$1"
}

# A failed or wrong transfer: from the relay, keep the work directory and fail; from a
# reference, fail too (its figures would be meaningless).
server_failed() {  # server, message
  if [[ $1 == relay ]]; then relay_failed "$2"; fi
  keep_work=1
  die "$1: $2 (logs in $work)"
}

# One timed transfer of the big file: server (relay|hpa|atftpd), windowsize (empty: none).
# Prints MB/s.
measure() {
  local server=$1 ws=$2 port out t0 t1 err got
  case $server in
    relay) port=$relay_port ;;
    hpa) port=$in_tftpd_port ;;
    atftpd) port=$atftpd_port ;;
  esac
  out="$work/out/big.$server"
  rm -f "$out"
  t0=$(date +%s%N)
  err=$(fetch "$port" "$big_path" "$out" "$ws" 2>&1) ||
    server_failed "$server" "atftp failed (exit $?; 124: hung) on $big_path: $err"
  t1=$(date +%s%N)
  got=$(sha256sum "$out" | cut -d' ' -f1)
  [[ $got == "$big_sha" ]] ||
    server_failed "$server" "$big_path came back with sha256 $got, $(stat -c %s "$out") bytes" \
      "(want $big_sha, $big_bytes bytes)"
  rm -f "$out"
  awk -v b="$big_bytes" -v ns=$((t1 - t0)) 'BEGIN {printf "%.1f\n", b / (ns / 1e9) / 1e6}'
}

# Warm-up: one transfer from each server checks it and warms the page cache (the relay wrote its
# objects with O_DIRECT, so they are not in it yet).
echo "checking and warming the servers ..." >&2
measure relay "" >/dev/null
measure hpa "" >/dev/null
measure atftpd "$kWindowsize" >/dev/null

declare -a relay_ws1=() hpa_ws1=() relay_ws16=() atftpd_ws16=()
for ((r = 1; r <= runs; r++)); do
  echo "round $r/$runs ..." >&2
  if ((r % 2)); then
    relay_ws1+=("$(measure relay "")")
    hpa_ws1+=("$(measure hpa "")")
    atftpd_ws16+=("$(measure atftpd "$kWindowsize")")
    relay_ws16+=("$(measure relay "$kWindowsize")")
  else
    hpa_ws1+=("$(measure hpa "")")
    relay_ws1+=("$(measure relay "")")
    relay_ws16+=("$(measure relay "$kWindowsize")")
    atftpd_ws16+=("$(measure atftpd "$kWindowsize")")
  fi
done

# $concurrent transfers of the small file from the relay at once, every one byte-exact.
echo "$concurrent transfers at once from the relay ..." >&2
declare -a pids=()
t0=$(date +%s%N)
for ((i = 0; i < concurrent; i++)); do
  fetch "$relay_port" "$small_path" "$work/out/small.$i" "" >"$work/out/small.$i.log" 2>&1 &
  pids+=("$!")
done
failed=0
for ((i = 0; i < concurrent; i++)); do
  wait "${pids[i]}" || { failed=$((failed + 1)); echo "transfer $i: exit $?" >>"$work/out/failed"; }
done
t1=$(date +%s%N)
concurrent_seconds=$(awk -v ns=$((t1 - t0)) 'BEGIN {printf "%.2f", ns / 1e9}')
wrong=0
for ((i = 0; i < concurrent; i++)); do
  got=$(sha256sum "$work/out/small.$i" 2>/dev/null | cut -d' ' -f1) || got=
  [[ $got == "$small_sha" ]] || wrong=$((wrong + 1))
done
if ((failed || wrong)); then
  cat "$work/out/failed" >&2 2>/dev/null || true
  relay_failed "$concurrent transfers at once: $failed failed, $wrong with wrong bytes"
fi
rm -f "$work"/out/small.*

kill -0 "$relay_pid" 2>/dev/null || relay_failed "the relay died during the run"
rss_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$relay_pid/status")

# ---- header -----------------------------------------------------------------------------------

bench_relay_facts "$work"
hpa_version=$(dpkg-query -W -f='${Version}' tftpd-hpa 2>/dev/null || echo unknown)
atftpd_version=$("$atftpd" --version 2>&1 | head -n 1 || true)
atftp_version=$(atftp --version 2>&1 | head -n 1 || true)

stop_relay
bench_cleanup_own
read -r log_warnings < <(awk '$2 ~ /^(warn|warning|error|fatal)$/ { w++ }
  END { printf "%d\n", w }' "$relay_log")
# One "tftp RRQ <path> done <bytes> ..." line a relay transfer: warm-up, rounds, concurrent case.
expected_done=$((1 + 2 * runs + concurrent))
read -r log_done log_other < <(awk '$3 == "tftp" && $4 == "RRQ" {
    if ($6 == "done") d++; else o++
  } END { printf "%d %d\n", d, o }' "$relay_log")
if ((log_warnings)); then
  echo "--- the relay's warning/error lines (first 5):" >&2
  awk '$2 ~ /^(warn|warning|error|fatal)$/' "$relay_log" | head -n 5 >&2
fi

echo "# siterelay TFTP benchmark (siterelay serve vs. tftpd-hpa and atftpd, same files, loopback)"
bench_machine_lines
echo "tftpd-hpa:  in.tftpd $hpa_version, -L -B $kBlksize (no windowsize support)"
echo "atftpd:     $atftpd_version, --daemon --no-fork, defaults otherwise"
echo "client:     $atftp_version, --option \"blksize $kBlksize\" [--option \"windowsize" \
  "$kWindowsize\"], one process a transfer"
echo "siterelay:  $relay_version ($binary, sha256 $relay_sha; source $source_rev), one event loop"
echo "cpus:       servers pinned to CPU $kServerCpu, clients to CPU $kClientCpu (taskset)"
echo "files:      $big_path $big_bytes bytes ($((big_bytes / kMiB)) MiB), $small_path" \
  "$kSmallBytes bytes; page cache warm; work dir $work ($fs_type)"
echo "runs:       $runs round(s), order alternating; median reported; MB/s = 10^6 bytes over" \
  "the atftp process's wall clock; every transfer checked by sha256"
if ((quick)); then
  echo "note:       --quick checks that the benchmark runs; a 2 MiB image is too small for the" \
    "targets to mean much"
fi
echo

median() { bench_median 1 "$@"; }
med_relay_ws1=$(median "${relay_ws1[@]}")
med_hpa_ws1=$(median "${hpa_ws1[@]}")
med_relay_ws16=$(median "${relay_ws16[@]}")
med_atftpd_ws16=$(median "${atftpd_ws16[@]}")
row() {  # measurement, server, median, runs
  printf '%-34s %-10s %8s MB/s   %s\n' "$1" "$2" "$3" "$4"
}
printf '%-34s %-10s %13s   %s\n' measurement server median runs
row "image, blksize $kBlksize" siterelay "$med_relay_ws1" "${relay_ws1[*]}"
row "" tftpd-hpa "$med_hpa_ws1" "${hpa_ws1[*]}"
row "image, blksize $kBlksize windowsize $kWindowsize" siterelay "$med_relay_ws16" \
  "${relay_ws16[*]}"
row "" atftpd "$med_atftpd_ws16" "${atftpd_ws16[*]}"
echo

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
ratio_hpa=$(ratio "$med_relay_ws1" "$med_hpa_ws1")
ratio_atftpd=$(ratio "$med_relay_ws16" "$med_atftpd_ws16")
rss_mib=$(awk -v k="$rss_kib" 'BEGIN {printf "%.1f", k / 1024}')
line() { printf '%-46s %s\n' "$1:" "${*:2}"; }
line "relay / tftpd-hpa (blksize $kBlksize)" "$ratio_hpa"
line "relay / atftpd (blksize $kBlksize windowsize $kWindowsize)" "$ratio_atftpd"
line "$concurrent transfers at once from the relay" \
  "all $concurrent byte-exact, $concurrent_seconds s wall clock"
line "relay peak RSS (VmHWM, whole run)" "$rss_mib MiB"
line "relay log" "$log_done transfers done ($expected_done expected), $log_other not done," \
  "$log_warnings warning/error line(s)"
((log_done == expected_done && log_other == 0)) ||
  relay_failed "its log has $log_done transfers done, $log_other not, for $expected_done made"
echo

fail=0
ok_hpa=$(bench_holds "$ratio_hpa" ">=" "$kTargetHpaRatio")
ok_atftpd=$(bench_holds "$ratio_atftpd" ">=" "$kTargetAtftpdRatio")
ok_rss=$(bench_holds "$rss_mib" "<" "$kTargetRssMiB")
judge() { bench_judge 46 "target $1:" "$2" "$3"; }  # name, ok (1/0), shown value
judge "relay/tftpd-hpa >= $kTargetHpaRatio" "$ok_hpa" "$ratio_hpa"
judge "relay/atftpd ws$kWindowsize >= $kTargetAtftpdRatio" "$ok_atftpd" "$ratio_atftpd"
judge "relay peak RSS < $kTargetRssMiB MiB" "$ok_rss" "$rss_mib MiB"
printf '%-46s PASS\n' "check every transfer's sha256:"
echo
image="TFTP $((big_bytes / kMiB)) MiB image, blksize $kBlksize"
bench_result "$image, vs tftpd-hpa" "$med_relay_ws1" "$med_hpa_ws1" MB/s "$ratio_hpa" \
  ">=$kTargetHpaRatio" "$ok_hpa"
bench_result "$image windowsize $kWindowsize, vs atftpd" "$med_relay_ws16" "$med_atftpd_ws16" \
  MB/s "$ratio_atftpd" ">=$kTargetAtftpdRatio" "$ok_atftpd"
bench_result "relay peak RSS (TFTP)" "$rss_mib" - MiB - "<$kTargetRssMiB MiB" "$ok_rss"

if ((check && fail)); then
  exit 1
fi
exit 0
