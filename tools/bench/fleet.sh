#!/usr/bin/env bash
# Issue 9's boot storm with tools/phone-fleet: 1,000 phones booting at once over HTTP (each from
# its own loopback address, exactly as PHONES.md's captured boot), 30 MiB firmware, the origin
# capped at 50 Mbit/s and 40 ms away (the fleet's own WAN-emulating origin), a cold cache.
# Judged: every boot completes; the origin serves the firmware image once; the last phone is done
# within 1.3x of (firmware size / origin rate + its local transfer time); the relay's peak RSS
# stays under 64 MiB. The local transfer time is taken as the firmware size at 1 GB/s (a loopback
# copy; measured local transfers run at 1-3 GB/s), so the budget is a little tighter than exact.
# --quick: 100 phones, 4 MiB, 200 Mbit/s, 10 ms: checks the run, judges nothing. About 50 s in
# full, --quick about 5 s.
#
# usage: tools/bench/fleet.sh [--quick] [--binary PATH] [--check]
set -euo pipefail
export LC_ALL=C

readonly kTargetRatio=1.3
readonly kTargetRssMiB=64

usage() {
  cat <<EOF
usage: $0 [--quick] [--binary PATH] [--check]

  --quick         CI mode: a small storm; the targets are not judged
  --binary PATH   siterelay binary (default: build/siterelay); phone_fleet is looked for beside
                  it, in tools/phone-fleet/
  --check         exit 1 when a target fails (default: report only)
EOF
}

bench_name=fleet.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_parse_options "$@"
bench_resolve_binary
fleet=$(dirname "$binary")/tools/phone-fleet/phone_fleet
[[ -x $fleet ]] || die "no phone_fleet at $fleet (it is built with the tests)"
command -v python3 >/dev/null || missing_tool python3 python3
bench_work_dir "report.json"
fail=0

if ((quick)); then
  phones=100 mib=4 rate=200 latency=10
else
  phones=1000 mib=30 rate=50 latency=40
fi
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "# phone-fleet boot storm: $phones phones, ${mib} MiB firmware, origin $rate Mbit/s, ${latency} ms"
cmd=("$fleet" --phones "$phones" --mix http=100 --models VVX_500=100 --firmware-mb "$mib" --storm
  --wan-rate-mbit "$rate" --wan-latency-ms "$latency" --relay-binary "$binary"
  --json "$work/report.json" --progress 100)
echo "command: ${cmd[*]}"
status=0
"${cmd[@]}" || status=$?
((status <= 1)) || die "phone_fleet failed to run (exit $status)"

read -r passed last image_full images rss_kib budget < <(python3 - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
o = r["options"]
fw = r["origin"]["firmware"]
full = sum(f["full"] for f in fw.values())
budget = o["firmware_bytes"] * 8 / (o["wan_rate_mbit"] * 1e6) + o["firmware_bytes"] / 1e9
print(int(r["passed"]), r["last_boot_done_s"], full, len(fw), r["relay"]["peak_rss_kib"], budget)
PY
)
ratio=$(awk -v l="$last" -v b="$budget" 'BEGIN {printf "%.2f", l / b}')
rss_mib=$(awk -v k="$rss_kib" 'BEGIN {printf "%.1f", k / 1024}')
time_ok=$(awk -v r="$ratio" -v t="$kTargetRatio" 'BEGIN {print (r <= t) ? 1 : 0}')
rss_ok=$(awk -v m="$rss_mib" -v t="$kTargetRssMiB" 'BEGIN {print (m < t) ? 1 : 0}')
once_ok=$((passed == 1 && image_full == images))
bench_judge 44 "every boot complete, image once at the origin" "$once_ok" \
  "passed=$passed, $image_full full GET(s) for $images image(s)"
bench_judge 44 "last boot within ${kTargetRatio}x of the budget" "$time_ok" \
  "$last s against $(printf '%.2f' "$budget") s: ${ratio}x"
bench_judge 44 "relay peak RSS < $kTargetRssMiB MiB" "$rss_ok" "$rss_mib MiB"
bench_result "fleet storm: last boot vs firmware/WAN budget" "$last" \
  "$(printf '%.2f' "$budget")" s "$ratio" "<=$kTargetRatio" "$time_ok"
bench_result "fleet storm: boots complete, image once" "$passed" - - - "==1" "$once_ok"
bench_result "fleet storm: relay peak RSS" "$rss_mib" - MiB - "<$kTargetRssMiB MiB" "$rss_ok"
((once_ok)) || exit 2  # a run that went wrong fails in every mode
if ((check && fail)); then exit 1; fi
exit 0
