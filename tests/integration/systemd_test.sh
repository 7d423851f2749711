#!/usr/bin/env bash
# The systemd service (image/systemd): the notify protocol as Type=notify and WatchdogSec= use it
# (READY=1 once listening, WATCHDOG=1 every half of WATCHDOG_USEC from the event loop, none when
# WATCHDOG_PID names another process, STOPPING=1 at SIGTERM), the unit file as
# `systemd-analyze verify` reads it, and its exposure score from `systemd-analyze security`,
# which must stay at or under kMaxExposure (docs/appliance.md records it). About 5 s.
source "$(dirname "$0")/lib.sh"
SITERELAY=$(realpath "$SITERELAY")
SOURCE=$(realpath "$(dirname "$0")/../..")
LISTENER=${NOTIFY_LISTENER:-$(dirname "$SITERELAY")/tests/notify_listener}
readonly kMaxExposure=2.0
cd "$WORK" || exit 1
[[ -x $LISTENER ]] || { echo "FAIL: $LISTENER not built" >&2; exit 1; }

write_config relay.toml
run_with_notify() {  # run_with_notify WATCHDOG_PID: a relay for ~1.5 s; messages into notify.out
  "$LISTENER" "$WORK/notify.sock" 4 > notify.out &
  local listener=$!
  for _ in $(seq 1 50); do [[ -S $WORK/notify.sock ]] && break; sleep 0.02; done
  NOTIFY_SOCKET=$WORK/notify.sock WATCHDOG_USEC=400000 WATCHDOG_PID=$1 start_relay relay.toml
  sleep 1.5
  stop_relay
  expect_eq "SIGTERM exit code" 0 "$STOP_RC"
  kill "$listener" 2>/dev/null
  wait "$listener" 2>/dev/null
}

# start_relay backgrounds the relay from this shell, so its pid is not known before; an empty
# WATCHDOG_PID is what systemd never sends, so give the relay's own pid through a wrapper.
cat > own-pid.sh <<SH
#!/usr/bin/env bash
export WATCHDOG_PID=\$\$
exec "$SITERELAY" "\$@"
SH
chmod +x own-pid.sh
REAL=$SITERELAY
SITERELAY=$WORK/own-pid.sh
run_with_notify ""
expect_eq "READY=1 comes first" "READY=1" "$(head -n 1 notify.out)"
watchdogs=$(grep -c '^WATCHDOG=1$' notify.out)
((watchdogs >= 4)) && pass || fail "expected >= 4 WATCHDOG=1 in 1.5 s at 0.2 s intervals, got $watchdogs"
expect_eq "STOPPING=1 comes last" "STOPPING=1" "$(tail -n 1 notify.out)"
expect_contains "the log says the watchdog is on" "systemd watchdog: keep-alive every 200 ms" \
  "$(cat serve.log)"

SITERELAY=$REAL
run_with_notify 1  # pid 1 is not the relay
expect_eq "no keep-alives for another process's watchdog" 0 "$(grep -c '^WATCHDOG=1$' notify.out)"
expect_eq "READY=1 still" "READY=1" "$(head -n 1 notify.out)"

# The unit file: systemd-analyze verify prints nothing for a unit it fully understands (it only
# warns about unknown keys, so any output fails). ExecStart must exist: point it at this build.
if command -v systemd-analyze > /dev/null; then
  sed "s|^ExecStart=[^ ]*|ExecStart=$SITERELAY|; s|@CMAKE_INSTALL_FULL_SYSCONFDIR@|/etc|" \
    "$SOURCE/image/systemd/siterelay.service.in" > siterelay.service
  verify=$(systemd-analyze verify "$WORK/siterelay.service" 2>&1)
  expect_eq "systemd-analyze verify: exit code" 0 "$?"
  expect_eq "systemd-analyze verify: no complaints" "" "$verify"
  score=$(systemd-analyze security --offline=yes "$WORK/siterelay.service" 2>&1 |
    sed -n 's/.*Overall exposure level for siterelay.service: \([0-9.]*\).*/\1/p')
  if [[ -n $score ]] && awk -v s="$score" -v m="$kMaxExposure" 'BEGIN {exit !(s <= m)}'; then
    pass
  else
    fail "systemd-analyze security: exposure '${score}' is above $kMaxExposure"
  fi
  echo "systemd-analyze security: exposure $score"
else
  fail "systemd-analyze not found (apt-get install systemd)"
fi
finish
