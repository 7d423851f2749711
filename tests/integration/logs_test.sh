#!/usr/bin/env bash
# Phones' logs go upstream (CONTRACT.md "Log batches"), against a collector of ours
# (tests/testing/log_collector: decompresses, validates, de-duplicates by Idempotency-Key,
# records every line it acknowledges): phones upload growing logs by HTTP PUT (the whole log each
# time) and by FTP APPE (the new lines only); the collector goes away for a while; the relay is
# killed with -9 while it ships and restarted. At the end the collector holds every line exactly
# once. Then the spool cap: with the collector away, past logs.spool_bytes the oldest lines are
# dropped and counted, never the newest.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

COLLECTOR=${LOG_COLLECTOR:-$(dirname "$SITERELAY")/tests/log_collector}
[[ -x $COLLECTOR ]] || { echo "FAIL: $COLLECTOR is not built" >&2; exit 1; }
mkdir -p collected
"$COLLECTOR" --out collected --port-file collector.port 2> collector.log &
COLLECTOR_PID=$!
trap 'kill -TERM "$COLLECTOR_PID" "${RELAY_PID:-}" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do [[ -s collector.port ]] && break; sleep 0.05; done
COLLECTOR_PORT=$(cat collector.port)
[[ -n $COLLECTOR_PORT ]] && pass || { fail "the collector did not start"; cat collector.log >&2; }
control() { curl -s --max-time 5 -X POST --data-binary "$1" "http://127.0.0.1:$COLLECTOR_PORT/control" >/dev/null; }

write_config relay.toml "[logs]
upstream = \"http://127.0.0.1:$COLLECTOR_PORT/v1/logs\"
batch_age = 1
batch_bytes = 65536"
# relay_id is a top-level key: it goes before the first table.
sed -i '1i relay_id = "it-relay"' relay.toml
sed -i '/^\[ftp\]$/,/^implicit_tls_listen/c\
[ftp]\
listen = ["127.0.0.1:0"]\
implicit_tls_listen = []\
passive_ports = [41000, 41100]' relay.toml
start_relay relay.toml
ftp_port() { sed -n 's|.*phones: ftp://[^ ]*:\([0-9]*\)/ .*|\1|p' serve.log | tail -n 1; }
FTP_PORT=$(ftp_port)
base="http://127.0.0.1:$HTTP_PORT"

# The phones: 4 upload their app log by PUT (the whole log, growing), 4 their boot log by APPE.
macs_put=(0004f2000001 0004f2000002 0004f2000003 0004f2000004)
macs_appe=(64167f000001 64167f000002 64167f000003 64167f000004)
: > expected
round() {  # round N: every phone logs 25 more lines and uploads
  local r=$1 mac i
  for mac in "${macs_put[@]}"; do
    for ((i = 0; i < 25; i++)); do
      printf '0517%06d|copy |3|00|%s app round %d line %d\n' $((r * 100 + i)) "$mac" "$r" "$i"
    done >> "$mac-app.log"
    curl -s --max-time 10 -o /dev/null -T "$mac-app.log" "$base/$mac-app.log" ||
      fail "PUT of $mac-app.log (round $r)"
  done
  for mac in "${macs_appe[@]}"; do
    for ((i = 0; i < 25; i++)); do
      printf '%06d.%03d|dhcpc|3|00|%s boot round %d line %d\n' "$r" "$i" "$mac" "$r" "$i"
    done > new.log
    cat new.log >> "$mac-boot.log"
    curl -s --max-time 10 --append -T new.log "ftp://u:p@127.0.0.1:$(ftp_port)/$mac-boot.log" ||
      fail "APPE of $mac-boot.log (round $r)"
  done
}
expected_lines() {
  for mac in "${macs_put[@]}"; do sed "s/^/$mac app /" "$mac-app.log"; done
  for mac in "${macs_appe[@]}"; do sed "s/^/$mac boot /" "$mac-boot.log"; done
}
# The collector's lines as "<mac> <file> <line>", from records it acknowledged.
collected_lines() {
  sed -E 's/.*"mac":"([0-9a-f]*)","file":"([a-z]*)",.*"line":"(.*)"}$/\1 \2 \3/' collected/lines.ndjson
}
# wait_collected: up to 30 s for the collector to hold every line uploaded so far.
wait_collected() {
  local want
  want=$(expected_lines | sort)
  for _ in $(seq 1 300); do
    [[ $(collected_lines | sort) == "$want" ]] && return 0
    sleep 0.1
  done
  return 1
}

round 1
round 2
wait_collected && pass || fail "rounds 1-2: the collector does not hold every line"

# The collector goes away; phones go on uploading; it comes back.
control "fail 503"
round 3
sleep 2
control "ok"
round 4
wait_collected && pass || fail "after the collector was away: not every line arrived"

# kill -9 while batches are being cut and shipped, and a restart.
control "fail 503"
round 5
sleep 1.5  # batches are built (batch_age 1) and fail to ship
kill -KILL "$RELAY_PID"
wait "$RELAY_PID" 2>/dev/null
control "ok"
start_relay relay.toml
base="http://127.0.0.1:$HTTP_PORT"
round 6
wait_collected && pass || fail "after kill -9 and a restart: not every line arrived"
expect_eq "every line exactly once" "" "$(collected_lines | sort | uniq -d)"
records=$(wc -l < collected/lines.ndjson)
expect_eq "records: one per uploaded line" "$(expected_lines | wc -l)" "$records"
seqs=$(sed -E 's/.*"seq":([0-9]+),.*/\1/' collected/lines.ndjson | sort -n | uniq -d | wc -l)
expect_eq "no record sequence number used twice" 0 "$seqs"
expect_eq "the collector refused no batch (a retry is byte-identical: no 422)" 0 \
  "$(awk '$3 == 400 || $3 == 422' collected/requests.log | wc -l)"
expect_contains "the records name the relay" '"relay":"it-relay"' "$(head -n 1 collected/lines.ndjson)"
stop_relay
expect_eq "SIGTERM exit code" 0 "$STOP_RC"

# ---- the spool cap: the collector away, 20 KB of spool at most --------------------------------
mkdir -p cap
WORK=$WORK/cap write_config cap/relay.toml "[logs]
upstream = \"http://127.0.0.1:$COLLECTOR_PORT/v1/logs\"
batch_age = 1
batch_bytes = 8192
spool_bytes = 20000"
control "fail 503"
start_relay cap/relay.toml
base="http://127.0.0.1:$HTTP_PORT"
for ((i = 0; i < 600; i++)); do printf 'old line %04d xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n' "$i"; done > 0004f2aaaa01-app.log
curl -s --max-time 10 -o /dev/null -T 0004f2aaaa01-app.log "$base/0004f2aaaa01-app.log"
sleep 1.5
for ((i = 0; i < 300; i++)); do printf 'new line %04d xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n' "$i"; done > 0004f2aaaa02-app.log
curl -s --max-time 10 -o /dev/null -T 0004f2aaaa02-app.log "$base/0004f2aaaa02-app.log"
dropped=
for _ in $(seq 1 100); do
  dropped=$(sed -n 's/.*dropped the \([0-9]*\) oldest unsent lines.*/\1/p' serve.log | tail -n 1)
  [[ -n $dropped ]] && break
  sleep 0.1
done
[[ -n $dropped && $dropped -gt 0 ]] && pass || fail "the spool cap: nothing dropped"
expect_contains "the drop names the phone" "0004f2aaaa01" "$(grep 'oldest unsent lines' serve.log)"
: > collected/lines.ndjson
control "ok"
for _ in $(seq 1 300); do
  grep -q 'new line 0299' collected/lines.ndjson 2>/dev/null && break
  sleep 0.1
done
expect_eq "the newest lines all arrive" 300 "$(grep -c '"line":"new line' collected/lines.ndjson)"
stop_relay
expect_eq "SIGTERM exit code (cap)" 0 "$STOP_RC"
finish
