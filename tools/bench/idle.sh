#!/usr/bin/env bash
# Measures the relay's resident memory at rest: what a branch server gives up to a relay that has
# nothing to do.
#
# Each run starts `siterelay serve` on its built-in defaults with a fresh, empty data_dir, waits
# until it has announced its listeners, then 2 s more (kSettleSeconds: the start-up work, such as
# making the self-signed certificate, is over), and reads from /proc/PID/status its resident set
# (VmRSS, split into RssAnon and RssFile) and its peak (VmHWM). No request is made. Reported: the
# largest VmRSS of the runs, against the target (issue 9): idle RSS < 16 MiB.
#
# What differs from the defaults (docs/configuration.md), and why: data_dir is in the work
# directory, and every listener is on 127.0.0.1 at port 0 (any free port) instead of 0.0.0.0 at
# its default port, so that the run needs no privileges and collides with nothing else on the
# machine. The set of listeners is the defaults': HTTP, HTTPS (with the self-signed certificate
# the relay makes in data_dir/tls at first start, as it does by default), TFTP, FTP (AUTH TLS
# offered), implicit FTPS and the admin listener.
#
# Nothing leaves the machine. The relay gets a fixed time to start and to stop, and the trap
# stops it however the script ends. A run takes about 3 s; --quick makes one, the default three.
# The last lines are RESULT lines for tools/bench/run (lib.sh's bench_result), in --quick too.
#
# usage: tools/bench/idle.sh [--quick] [--runs N] [--binary PATH] [--check]
# Exit: 0 done (the target is reported, not enforced); 1 the target failed under --check;
#       2 usage error, missing tool, a failed command, or the relay did not start or died.
set -euo pipefail
export LC_ALL=C  # '.' as the decimal separator in awk and printf.

readonly kTargetRssMiB=16   # VmRSS of the idle relay, below
readonly kSettleSeconds=2   # after the listeners are announced, before reading /proc

usage() {
  cat <<EOF
usage: $0 [--quick] [--runs N] [--binary PATH] [--check]

  --quick         CI mode: 1 run; the target is not judged
  --runs N        fresh relays on fresh data_dirs, one after the other; the largest VmRSS is
                  reported (default 3; --quick: 1)
  --binary PATH   siterelay binary (default: $repo_root/build/siterelay)
  --check         exit 1 when the target fails (default: report only)

Work directory: a fresh one under \${TMPDIR:-/tmp}, removed at the end (kept, with the relay's
logs, when it failed).
EOF
}

bench_name=idle.sh
# shellcheck source=tools/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_parse_options "$@"
if ((quick)); then : "${runs:=1}"; else : "${runs:=3}"; fi
bench_positive --runs "$runs"
((runs <= 20)) || die "--runs is at most 20"

bench_resolve_binary
bench_work_dir "relay-*.log"

config="$work/relay.toml"
cat >"$config" <<EOF
# Written by tools/bench/idle.sh: the built-in defaults but for data_dir and the listeners'
# addresses (127.0.0.1, any free port); every default listener is on.
data_dir = '$work/data'
[http]
listen = ["127.0.0.1:0"]
[https]
listen = ["127.0.0.1:0"]
[tftp]
listen = ["127.0.0.1:0"]
[ftp]
listen = ["127.0.0.1:0"]
implicit_tls_listen = ["127.0.0.1:0"]
[admin]
listen = ["127.0.0.1:0"]
EOF

# Prints "VmRSS RssAnon RssFile VmHWM Threads" (kB, kB, kB, kB, count) of process $1.
status_figures() {
  awk '$1 == "VmRSS:" {r = $2} $1 == "RssAnon:" {a = $2} $1 == "RssFile:" {f = $2}
    $1 == "VmHWM:" {h = $2} $1 == "Threads:" {t = $2}
    END {printf "%d %d %d %d %d\n", r, a, f, h, t}' "/proc/$1/status"
}

# Prints the $2 mappings of process $1 with the most resident memory: "kB name" ([heap], a
# library's file name, or [anon] for a nameless mapping), a name's mappings summed.
largest_mappings() {  # pid, count
  awk '/^[0-9a-f]+-[0-9a-f]+ / {name = (NF >= 6) ? $6 : "[anon]"; sub(/.*\//, "", name); next}
    $1 == "Rss:" {kb[name] += $2}
    END {for (n in kb) if (kb[n] > 0) printf "%d %s\n", kb[n], n}' "/proc/$1/smaps" |
    sort -rn | head -n "$2"
}

declare -a figures=()
mappings=
for ((r = 1; r <= runs; r++)); do
  echo "run $r/$runs: starting the relay on an empty data_dir ..." >&2
  rm -rf "$work/data"
  start_relay "$work/relay-$r.log" http
  sleep "$kSettleSeconds"
  kill -0 "$relay_pid" 2>/dev/null || relay_failed "it died while idle"
  figures+=("$(status_figures "$relay_pid")")
  mappings=$(largest_mappings "$relay_pid" 8)
  stop_relay
done
read -r log_warnings < <(cat "$work"/relay-*.log | awk '$2 ~ /^(warn|warning|error|fatal)$/ {w++}
  END {printf "%d\n", w}')

bench_relay_facts "$work"
echo "# siterelay idle memory (siterelay serve on its defaults, empty data_dir, no requests)"
bench_machine_lines
echo "siterelay:  $relay_version ($binary, sha256 $relay_sha; source $source_rev)"
echo "config:     the defaults but for data_dir (empty, in the work dir) and every listener on" \
  "127.0.0.1:0: HTTP, HTTPS (self-signed certificate made at start), TFTP, FTP, implicit FTPS," \
  "admin; work dir $work ($fs_type)"
echo "runs:       $runs, each a fresh relay on a fresh data_dir, read ${kSettleSeconds} s after" \
  "it announced its listeners; the largest VmRSS reported"
echo

kib_to_mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
printf '%-5s %10s %10s %10s %10s %8s\n' run "VmRSS MiB" "anon MiB" "file MiB" "VmHWM MiB" threads
max_kib=0
for ((r = 0; r < runs; r++)); do
  read -r rss anon file hwm threads <<<"${figures[r]}"
  printf '%-5s %10s %10s %10s %10s %8s\n' $((r + 1)) "$(kib_to_mib "$rss")" \
    "$(kib_to_mib "$anon")" "$(kib_to_mib "$file")" "$(kib_to_mib "$hwm")" "$threads"
  ((rss > max_kib)) && max_kib=$rss
done
rss_mib=$(kib_to_mib "$max_kib")
echo "(anon: RssAnon, the heap and stacks; file: RssFile, mapped pages of the binary and its"
echo " libraries, which other processes may share)"
echo "largest mappings (run $runs, resident):  $(awk '{printf "%s%s %.1f MiB", (NR > 1 ? ", " : ""),
  $2, $1 / 1024}' <<<"$mappings")"
echo
echo "idle RSS (largest VmRSS of the runs):  $rss_mib MiB ($max_kib kB)"
echo "relay log:                             $log_warnings warning/error line(s)"
echo

fail=0
# Judged on the kB figure: 16383 kB shows as 16.0 MiB and is under 16 MiB.
ok_rss=$(bench_holds "$max_kib" "<" $((kTargetRssMiB * 1024)))
bench_judge 38 "target idle RSS < $kTargetRssMiB MiB:" "$ok_rss" "$rss_mib MiB, $max_kib kB"
echo
bench_result "relay idle RSS (defaults, empty data_dir)" "$rss_mib" - MiB - "<$kTargetRssMiB MiB" \
  "$ok_rss"

if ((check && fail)); then
  exit 1
fi
exit 0
