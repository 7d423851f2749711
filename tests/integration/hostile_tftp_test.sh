#!/usr/bin/env bash
# Hostile TFTP clients against the real binary (issue 11): every opcode whole, truncated and
# malformed on the listen port (DATA, ACK, OACK and ERROR there are dropped: an ERROR answered
# with an ERROR lets one spoofed datagram loop between two servers, CVE-2024-2169; where a raw
# socket may be opened, that loop is tried for real), option values out of range and at their
# limits, strangers spraying a transfer's port, peers that vanish mid-transfer (the relay resends
# a bounded number of times, gives up and frees the transfer; one that asked for timeout 255 is
# given up after 20 s of silence, not 25 minutes), and a flood of thousands of RRQs from
# thousands of ports while tftp-hpa is served. After the battery the relay still serves a known
# file byte-exact, its fd count is back to where it started and its peak resident set is
# bounded. Raw datagrams come from hostile_tftp.py (python3, standard library). About 25 s.
source "$(dirname "$0")/lib.sh"
SITERELAY=$(realpath "$SITERELAY")
HOSTILE=$(realpath "$(dirname "$0")/hostile_tftp.py")
cd "$WORK" || exit 1
# Whatever happens, no relay or flood outlives the script (lib.sh's trap only removes $WORK).
trap 'kill ${RELAY_PID:-} ${flood_pid:-} ${vanish_pid:-} 2>/dev/null; rm -rf "$WORK"' EXIT
t_start=$(date +%s%N)

mkdir tree
printf '<APPLICATION APP_FILE_PATH="sip.ld"/>\n' > tree/000000000000.cfg
head -c 300000 /dev/urandom > tree/sip.ld
# TFTP on (uploads too: WRQs are part of the battery) on a port the kernel picks.
write_config relay.toml '[uploads]' 'max_bytes = 1048576'
sed -i '/^\[tftp\]$/{n;s/.*/listen = ["127.0.0.1:0"]\nallow_uploads = true/}' relay.toml
"$SITERELAY" import tree --config relay.toml > /dev/null || { echo "FAIL: import" >&2; exit 1; }
start_relay relay.toml
TFTP_PORT=$(sed -n 's|.*phones: tftp://[^ ]*:\([0-9]*\)/ .*|\1|p' serve.log | head -n 1)
[[ -n $TFTP_PORT ]] || { echo "FAIL: no tftp listener announced" >&2; cat serve.log >&2; exit 1; }
hpa_get() { timeout 30 tftp 127.0.0.1 "$TFTP_PORT" -m binary -c get "$1" "$2"; }
hpa_get sip.ld warm.ld  # warm: the fd count includes what one transfer leaves open
baseline_fds=$(fds)

declare -A tried
# absorb CATEGORY: turns the lines hostile_tftp.py wrote to CATEGORY.out into checks and counts.
absorb() {
  local kind rest
  while read -r kind rest; do
    case $kind in
      ok) pass ;;
      fail) fail "$rest" ;;
      count) tried[${rest%% *}]=${rest#* } ;;
      info) echo "$rest" ;;
      skip) echo "skipped: $rest"; tried[$1]=0 ;;
      sent) ;;
      *) fail "hostile_tftp.py $1: $kind $rest" ;;
    esac
  done < "$1.out"
  [[ -n ${tried[$1]:-} ]] || fail "hostile_tftp.py $1 did not finish: $(tail -n 3 "$1.out")"
}
# hostile CATEGORY: runs that part of hostile_tftp.py.
hostile() {
  python3 "$HOSTILE" "$1" "$TFTP_PORT" "$WORK/tree" > "$1.out" 2>&1
  absorb "$1"
}
# fds_settle: waits (bounded) for the relay's fd count to come back to the baseline.
fds_settle() {
  for _ in $(seq 1 "$1"); do (($(fds) <= baseline_fds)) && return; sleep 0.1; done
}

# Peers that vanish, in the background from the start (the slowest is given up after 20 s):
# from addresses of their own, they take none of the slots the rest of the battery uses.
: > vanishing.out
python3 "$HOSTILE" vanishing "$TFTP_PORT" "$WORK/tree" > vanishing.out 2>&1 &
vanish_pid=$!

hostile malformed
hostile options
hostile spoofed

# The loop itself: spoofed datagrams from the relay's own port to itself. Answering them would
# keep the relay busy (and its log growing) for ever; one second later it must be idle.
cpu() { awk '{print $14 + $15}' "/proc/$RELAY_PID/stat"; }
lines_before=$(wc -l < serve.log)
hostile loop
if ((${tried[loop]:-0} > 0)); then
  cpu_before=$(cpu)
  sleep 1
  loop_ticks=$(($(cpu) - cpu_before))
  loop_lines=$(($(wc -l < serve.log) - lines_before))
  ((loop_ticks < 20 && loop_lines < 20)) && pass ||
    fail "spoofed from its own port the relay answers itself: $loop_ticks CPU ticks, $loop_lines log lines in 1 s"
fi

# The flood: 4,000 RRQs from 2,000 ports of 8 addresses, never acknowledged, against limits of
# 1,024 transfers, 256 per address and 1,024 waiting requests. tftp-hpa, from an address of its
# own and started once the flood is out, is served meanwhile (once the flood's transfers give up,
# 6 s after they began: its request waits, or is dropped and repeated), and afterwards every
# transfer and socket of the flood is gone.
log_before=$(wc -l < serve.log)
: > flood.out
python3 "$HOSTILE" flood "$TFTP_PORT" "$WORK/tree" > flood.out 2>&1 &
flood_pid=$!
for _ in $(seq 1 100); do grep -q '^sent' flood.out && break; sleep 0.05; done
t0=$(date +%s%N)
hpa_get sip.ld during.ld
during_ms=$((($(date +%s%N) - t0) / 1000000))
cmp -s during.ld tree/sip.ld && pass || fail "tftp-hpa during the flood: bytes differ"
((during_ms < 20000)) && pass || fail "tftp-hpa during the flood took ${during_ms} ms"
wait "$flood_pid"
absorb flood

wait "$vanish_pid"
absorb vanishing
# Nothing was filed by the WRQs that were cut short, abandoned or whose phone vanished.
expect_eq "no upload filed by an abandoned WRQ" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/0004f2aabbcc-boot.log")"
gone=$(grep -c "timed out waiting for the client's ACK" serve.log)
((gone >= 3)) && pass || fail "vanished readers given up: $gone log lines, want 3 at least"

fds_settle 100
sleep 0.3  # access lines are written every 100 ms (relay/base/log.h)
tail -n +"$((log_before + 1))" serve.log > flood.log
started=$(grep -c 'tftp RRQ ' flood.log)
dropped=$(grep -c 'is dropped' flood.log)
((started >= 1024)) && pass || fail "the flood started only $started transfers: limits not reached"
echo "flood: the relay ran $started transfers, dropped $dropped requests past its queue;" \
  "tftp-hpa took ${during_ms} ms meanwhile"
grep -q -E ' (fatal|error) ' serve.log && fail "errors in the log: $(grep -m 3 -E ' (fatal|error) ' serve.log)" || pass

# After the battery.
kill -0 "$RELAY_PID" 2>/dev/null && pass || fail "the relay died"
hpa_get sip.ld after.ld
cmp -s after.ld tree/sip.ld && pass || fail "a known file after the battery: bytes differ"
expect_relay_as_before "$baseline_fds"
peak=$PEAK_KIB
stop_relay
expect_eq "SIGTERM exit code" 0 "$STOP_RC"
secs=$((($(date +%s%N) - t_start) / 1000000000))
echo "hostile_tftp: ${tried[malformed]:-0} malformed datagrams, ${tried[options]:-0} option" \
  "sets, ${tried[spoofed]:-0} spoofed datagrams, ${tried[vanishing]:-0} vanishing peers," \
  "${tried[flood]:-0} flooded RRQs, ${tried[loop]:-0} spoofed self-loop datagrams; peak RSS ${peak} KiB; fds ${baseline_fds}; ${secs} s"
finish
