#!/usr/bin/env bash
# Benchmarks the relay's log path end to end (issue: "ingest + compress + ship of 1 GB of logs on
# 2 cores"): phones' logs uploaded by HTTP PUT, appended to the spool, cut into NDJSON batches,
# compressed with zstd and POSTed to a collector, until the collector has acknowledged every line.
#
# Method. tools/phone-logs generates realistic Poly logs for 200 phones (1 GiB in all; --quick:
# 16 MiB), app and boot logs each under uploads.max_bytes. The relay runs with [logs] upstream
# pointing at tests/testing/log_collector (which decompresses every batch, checks every record as
# JSON, de-duplicates by Idempotency-Key, and fsyncs what it records), batch_bytes at its default
# (1 MiB) and batch_age 1 s. curl uploads the files, 8 at a time. The clock runs from the first
# upload until the collector holds as many records as the logs have lines. Reported: the log bytes
# per second through the whole path, the ingest time alone (the uploads' 2xx), the records, and
# the compression ratio of what went on the wire (NDJSON bytes / zstd bytes, from the relay's
# "logs: batch" lines). Everything runs on this machine's 2 CPUs, unpinned: the relay, curl and
# the collector share them, as a branch server's cores would be shared. No peer exists for this
# path; the figure is the relay's own, recorded in docs/BENCHMARKS.md "Logs". The relay's peak
# resident set is judged against issue 9's < 64 MiB. The last lines are RESULT lines for
# tools/bench/run (lib.sh's bench_result), in --quick too.
#
# usage: tools/bench/logship.sh [--quick] [--binary PATH]
# Exit: 0 done; 2 usage error, a missing tool, or a failure (a lost or duplicated line).
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
# For bench_result and bench_judge only: this script reads its own options.
bench_name=logship.sh
# shellcheck source=tools/bench/lib.sh
source "$here/lib.sh"
readonly kTargetRssMiB=64  # the relay's peak resident set, below
quick=0
binary=$repo_root/build/siterelay
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --binary) binary=${2:?--binary needs a path}; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--quick] [--binary PATH]" >&2; exit 2 ;;
  esac
  shift
done
build_dir=$(dirname "$binary")
phone_logs=$build_dir/tools/phone-logs/phone_logs
collector=$build_dir/tests/log_collector
for tool in "$binary" "$phone_logs" "$collector"; do
  [[ -x $tool ]] || { echo "logship: $tool is not built" >&2; exit 2; }
done
command -v curl >/dev/null || { echo "logship: curl is missing" >&2; exit 2; }

bytes=1G
((quick)) && bytes=16M
work=$(mktemp -d "${TMPDIR:-/tmp}/siterelay-bench-logship.XXXXXX")
relay_pid=
collector_pid=
cleanup() {
  [[ -n $relay_pid ]] && kill -TERM "$relay_pid" 2>/dev/null
  [[ -n $collector_pid ]] && kill -TERM "$collector_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
die() { echo "logship: $*" >&2; exit 2; }

echo "generating $bytes of phone logs ..." >&2
"$phone_logs" --out "$work/logs" --phones 200 --bytes "$bytes" --seed 7 >/dev/null
log_bytes=$(cat "$work"/logs/*.log | wc -c)
log_lines=$(cat "$work"/logs/*.log | wc -l)

mkdir -p "$work/collected"
"$collector" --out "$work/collected" --port-file "$work/collector.port" 2>"$work/collector.log" &
collector_pid=$!
for _ in $(seq 1 100); do [[ -s $work/collector.port ]] && break; sleep 0.05; done
[[ -s $work/collector.port ]] || die "the collector did not start"
collector_port=$(cat "$work/collector.port")

cat >"$work/relay.toml" <<EOF
relay_id = "bench"
data_dir = "$work/data"
[http]
listen = ["127.0.0.1:0"]
[https]
listen = []
[tftp]
listen = []
[ftp]
listen = []
implicit_tls_listen = []
[admin]
listen = ["127.0.0.1:0"]
[uploads]
max_bytes = 67108864
[logs]
upstream = "http://127.0.0.1:$collector_port/v1/logs"
batch_age = 1
spool_bytes = 4294967296
EOF
"$binary" serve --config "$work/relay.toml" 2>"$work/relay.log" &
relay_pid=$!
http_port=
for _ in $(seq 1 100); do
  http_port=$(sed -n 's|.*phones: http://127\.0\.0\.1:\([0-9]*\)/ .*|\1|p' "$work/relay.log")
  [[ -n $http_port ]] && break
  sleep 0.05
done
[[ -n $http_port ]] || { cat "$work/relay.log" >&2; die "the relay did not start"; }

echo "uploading $(find "$work/logs" -type f | wc -l) logs ($log_bytes bytes, $log_lines lines) ..." >&2
t0=$(date +%s%N)
(cd "$work/logs" && ls) |
  xargs -P 8 -I{} curl -s -f --max-time 120 -o /dev/null -T "$work/logs/{}" \
    "http://127.0.0.1:$http_port/{}" || die "an upload failed"
t1=$(date +%s%N)
records=0
for _ in $(seq 1 3000); do
  records=$(wc -l <"$work/collected/lines.ndjson" 2>/dev/null || echo 0)
  ((records >= log_lines)) && break
  sleep 0.1
done
t2=$(date +%s%N)
((records == log_lines)) || die "the collector holds $records records for $log_lines lines"
dups=$(sed -E 's/.*"seq":([0-9]+),.*/\1/' "$work/collected/lines.ndjson" | sort -n | uniq -d | wc -l)
((dups == 0)) || die "$dups record sequence numbers arrived twice"
rss_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$relay_pid/status")
read -r raw wire batches < <(awk '/logs: batch [0-9]+:/ {
    for (i = 1; i <= NF; i++) { if ($i == "bytes,") r += $(i - 1); if ($i == "compressed") w += $(i - 1) }
    b++ } END { printf "%.0f %.0f %d\n", r, w, b }' "$work/relay.log")

mbps() { awk -v b="$1" -v ns="$2" 'BEGIN {printf "%.1f", b / (ns / 1e9) / 1e6}'; }
echo "# siterelay log shipping benchmark (PUT -> spool -> NDJSON batches -> zstd -> POST)"
echo "command:    tools/bench/logship.sh$( ((quick)) && echo ' --quick')"
echo "date:       $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine:    nproc=$(nproc), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "siterelay:  $("$binary" --version 2>/dev/null | head -n 1) ($binary)"
echo "logs:       200 phones, $log_bytes bytes, $log_lines lines (tools/phone-logs --seed 7)"
echo
printf '%-44s %s\n' "ingest (uploads acknowledged):" \
  "$(awk -v ns=$((t1 - t0)) 'BEGIN {printf "%.2f s", ns / 1e9}'), $(mbps "$log_bytes" $((t1 - t0))) MB/s"
printf '%-44s %s\n' "ingest + compress + ship (all acknowledged):" \
  "$(awk -v ns=$((t2 - t0)) 'BEGIN {printf "%.2f s", ns / 1e9}'), $(mbps "$log_bytes" $((t2 - t0))) MB/s of logs"
printf '%-44s %s\n' "batches:" "$batches, $raw bytes of NDJSON, $wire bytes on the wire"
printf '%-44s %s\n' "compression ratio (NDJSON / zstd):" \
  "$(awk -v r="$raw" -v w="$wire" 'BEGIN {printf "%.1f", (w > 0 ? r / w : 0)}')"
printf '%-44s %s\n' "log bytes / wire bytes:" \
  "$(awk -v r="$log_bytes" -v w="$wire" 'BEGIN {printf "%.1f", (w > 0 ? r / w : 0)}')"
printf '%-44s %s\n' "every line once at the collector:" "PASS ($records records)"
rss_mib=$(awk -v k="$rss_kib" 'BEGIN {printf "%.1f", k / 1024}')
printf '%-44s %s\n' "relay peak RSS (VmHWM):" "$rss_mib MiB"
echo
ok_rss=$(bench_holds "$rss_mib" "<" "$kTargetRssMiB")
bench_judge 44 "target relay peak RSS < $kTargetRssMiB MiB:" "$ok_rss" "$rss_mib MiB"
echo
size="$(awk -v b="$log_bytes" 'BEGIN {printf "%.0f", b / 1048576}') MiB"
bench_result "logs: $size PUT, spooled, zstd, POSTed, all acknowledged" \
  "$(mbps "$log_bytes" $((t2 - t0)))" - MB/s - - -
bench_result "logs: $size PUT, ingest only (uploads acknowledged)" \
  "$(mbps "$log_bytes" $((t1 - t0)))" - MB/s - - -
bench_result "relay peak RSS (log shipping)" "$rss_mib" - MiB - "<$kTargetRssMiB MiB" "$ok_rss"
