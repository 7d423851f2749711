#!/usr/bin/env bash
# Issue 9's boot storm with tools/phone-fleet: 1,000 phones booting at once over HTTP (each from
# its own loopback address, exactly as PHONES.md's captured boot), 30 MiB firmware, the origin
# capped at 50 Mbit/s and 40 ms away (the fleet's own WAN-emulating origin), a cold cache.
# Then the same storm again against the same relay, its cache now warm: what the storm costs
# when nothing crosses the WAN, which is each phone's local transfer time as this machine gives
# it to 1,000 phones at once (2 cores shared with phone_fleet).
# Judged: every boot of both storms completes; the origin serves the firmware image once (in the
# cold storm, and not again in the warm one); the cold storm's last phone is done within 1.3x of
# (firmware size / origin rate + the warm storm's last boot); the relay's peak RSS stays under
# 64 MiB. Also shown, not judged: the ratio with the local transfer taken as the firmware at
# 1 GB/s, the budget of one phone alone.
# --quick: 100 phones, 4 MiB, 200 Mbit/s, 10 ms: checks the run, judges nothing. About 60 s in
# full, --quick about 10 s.
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
bench_work_dir "cold.json, warm.json, relay.log"
fail=0

if ((quick)); then
  phones=100 mib=4 rate=200 latency=10
else
  phones=1000 mib=30 rate=50 latency=40
fi
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "# phone-fleet boot storm: $phones phones, ${mib} MiB firmware, origin $rate Mbit/s," \
  "${latency} ms; cold, then warm"

# The relay runs here rather than under phone_fleet --relay-binary, so that both storms meet
# one process and one cache; each phone_fleet run starts the origin emulator on the same port
# (its files follow from --seed, so the warm storm finds them as the cold one left them).
origin_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
config="$work/relay.toml"
cat >"$config" <<EOF
# Written by tools/bench/fleet.sh: phones over HTTP and the admin port on loopback, any free
# port; phone_fleet's origin emulator as the origin; no background sync passes.
data_dir = '$work/data'
[origin]
url = "http://127.0.0.1:$origin_port/"
sync_interval = 0
$(bench_relay_listeners http)
EOF
start_relay "$work/relay.log" http

# storm NAME: one phone_fleet run against the relay, its report in NAME.json.
storm() {
  local cmd=("$fleet" --phones "$phones" --mix http=100 --models VVX_500=100 --firmware-mb "$mib"
    --storm --wan-rate-mbit "$rate" --wan-latency-ms "$latency" --seed 1
    --relay "http=127.0.0.1:$relay_port" --relay-pid "$relay_pid"
    --origin-listen "127.0.0.1:$origin_port" --work "$work/$1" --json "$work/$1.json"
    --progress 100)
  echo "command ($1): ${cmd[*]}"
  local status=0
  "${cmd[@]}" || status=$?
  ((status <= 1)) || die "phone_fleet failed to run (exit $status)"
}
storm cold
storm warm
kill -0 "$relay_pid" 2>/dev/null || relay_failed "the relay died during the storms"
read -r passed last image_full images rss_kib wan one_phone warm_passed warm_last warm_full \
  < <(python3 - "$work/cold.json" "$work/warm.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
w = json.load(open(sys.argv[2]))
o = r["options"]
fw = r["origin"]["firmware"]
full = sum(f["full"] for f in fw.values())
wan = o["firmware_bytes"] * 8 / (o["wan_rate_mbit"] * 1e6)
one_phone = o["firmware_bytes"] / 1e9
warm_full = sum(f["full"] for f in w["origin"]["firmware"].values())
rss = max(r["relay"]["peak_rss_kib"], w["relay"]["peak_rss_kib"])
print(int(r["passed"]), r["last_boot_done_s"], full, len(fw), rss, wan, one_phone,
      int(w["passed"]), w["last_boot_done_s"], warm_full)
PY
)
budget=$(awk -v a="$wan" -v b="$warm_last" 'BEGIN {printf "%.2f", a + b}')
ratio=$(awk -v l="$last" -v b="$budget" 'BEGIN {printf "%.2f", l / b}')
strict=$(awk -v l="$last" -v a="$wan" -v b="$one_phone" 'BEGIN {printf "%.2f", l / (a + b)}')
rss_mib=$(awk -v k="$rss_kib" 'BEGIN {printf "%.1f", k / 1024}')
time_ok=$(awk -v r="$ratio" -v t="$kTargetRatio" 'BEGIN {print (r <= t) ? 1 : 0}')
rss_ok=$(awk -v m="$rss_mib" -v t="$kTargetRssMiB" 'BEGIN {print (m < t) ? 1 : 0}')
once_ok=$((passed == 1 && warm_passed == 1 && image_full == images && warm_full == 0))
bench_judge 44 "every boot complete, image once at the origin" "$once_ok" \
  "cold passed=$passed, $image_full full GET(s) for $images image(s); warm passed=$warm_passed, $warm_full"
bench_judge 44 "cold last boot within ${kTargetRatio}x of the budget" "$time_ok" \
  "$last s against $budget s ($(printf '%.2f' "$wan") s WAN + $warm_last s warm storm): ${ratio}x"
echo "(with the local transfer as ${mib} MiB at 1 GB/s, one phone alone: ${strict}x)"
bench_judge 44 "relay peak RSS < $kTargetRssMiB MiB" "$rss_ok" "$rss_mib MiB"
bench_result "fleet storm: cold last boot vs WAN + warm storm" "$last" "$budget" s "$ratio" \
  "<=$kTargetRatio" "$time_ok"
bench_result "fleet storm: boots complete, image once" "$passed" - - - "==1" "$once_ok"
bench_result "fleet storm: relay peak RSS" "$rss_mib" - MiB - "<$kTargetRssMiB MiB" "$rss_ok"
((once_ok)) || exit 2  # a run that went wrong fails in every mode
if ((check && fail)); then exit 1; fi
exit 0
