# Shared helpers for the integration scripts: a scratch directory and assertions that say what
# differed. Source it; $1 of the script is the siterelay binary.
set -uo pipefail
SITERELAY=${1:?usage: $0 path/to/siterelay}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/siterelay-it.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FAILURES=0
CHECKS=0

fail() { echo "FAIL: $*" >&2; FAILURES=$((FAILURES + 1)); }
pass() { CHECKS=$((CHECKS + 1)); }

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  if [[ "$2" == "$3" ]]; then pass; else fail "$1: expected [$2], got [$3]"; fi
}

# expect_contains WHAT NEEDLE HAYSTACK
expect_contains() {
  if [[ "$3" == *"$2"* ]]; then pass; else fail "$1: [$2] not in [$3]"; fi
}

finish() {
  echo "$CHECKS checks passed, $FAILURES failed"
  [[ $FAILURES -eq 0 ]]
}

# pick_port: a random loopback port nothing listens on now (for peers that cannot take port 0).
pick_port() {
  local port
  while :; do
    port=$(shuf -i 20000-60000 -n 1)
    ss -Htln "sport = :$port" | grep -q . || break
  done
  echo "$port"
}

# sanitizer_build: true when the binary under test ($SITERELAY) comes from an ASan, UBSan or TSan
# tree, whose packages are no appliance and whose memory use is the sanitizers' (tools/check runs
# every test again in its GCC Release tree).
sanitizer_build() {
  grep -Eq '^SITERELAY_(ASAN|UBSAN|TSAN):BOOL=ON' "$(dirname "$SITERELAY")/CMakeCache.txt" 2>/dev/null
}

# ---- the hostile batteries (docs/SECURITY.md): after each, the relay is as it was -------------
# fds / rss: the open fds of the relay ($RELAY_PID), and its peak resident set (VmHWM) in KiB.
# fds: the relay's open fds, less the objects it keeps open for serving (Cache::OpenObject, the
# last 64 served: bounded, not a leak); object_fds: those.
fds() { fd_count -v; }
object_fds() { fd_count ""; }
fd_count() {  # "" to count the fds into data_dir/objects/, -v for the others
  local f target n=0
  for f in "/proc/$RELAY_PID/fd/"*; do
    target=$(readlink "$f" 2>/dev/null) || continue
    if [[ $target == */objects/* ]]; then [[ -z $1 ]] && n=$((n + 1)); else [[ -n $1 ]] && n=$((n + 1)); fi
  done
  echo "$n"
}
rss() { awk '/^VmHWM/ {print $2}' "/proc/$RELAY_PID/status"; }
# rss_limit_kib: the relay's memory target (issue 9); under a sanitizer its shadow memory and
# quarantine come on top.
rss_limit_kib() { if sanitizer_build; then echo $((256 * 1024)); else echo $((64 * 1024)); fi; }
# limit_asan_quarantine: ASan keeps what is freed in a quarantine (256 MiB by default) before
# reusing it; a battery that frees a great deal and judges the relay's RSS keeps it small, or it
# would count against the limit as the relay's own memory. Before start_relay.
limit_asan_quarantine() {
  if sanitizer_build; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
  fi
}
# expect_relay_as_before BASELINE_FDS [TENTHS]: the relay's peak RSS is under rss_limit_kib and its
# fd count is back to BASELINE_FDS within TENTHS tenths of a second (default 50). Sets PEAK_KIB.
expect_relay_as_before() {
  local limit
  limit=$(rss_limit_kib)
  PEAK_KIB=$(rss)
  ((PEAK_KIB < limit)) && pass || fail "peak RSS $PEAK_KIB KiB, over $limit"
  for _ in $(seq 1 "${2:-50}"); do (($(fds) <= $1)) && break; sleep 0.1; done
  expect_eq "fd count back to baseline" "$1" "$(fds)"
  (($(object_fds) <= 64)) && pass || fail "$(object_fds) objects kept open, over the cache's 64"
}

# write_config FILE [TOML...]: a relay config with its data in $WORK/data, HTTP, HTTPS and admin
# on loopback ports the kernel picks, the protocols not under test off, and any extra TOML
# (whole sections) appended.
write_config() {
  local file=$1
  shift
  cat > "$file" <<TOML
data_dir = "$WORK/data"
[http]
listen = ["127.0.0.1:0"]
[https]
listen = ["127.0.0.1:0"]
[admin]
listen = ["127.0.0.1:0"]
[tftp]
listen = []
[ftp]
listen = []
implicit_tls_listen = []
TOML
  local extra
  for extra in "$@"; do printf '%s\n' "$extra" >> "$file"; done
}

# start_relay CONFIG: runs `siterelay serve` in the background, logging to $WORK/serve.log, and
# waits (bounded) until it has announced its listeners. Sets RELAY_PID, HTTP_PORT, ADMIN_PORT.
start_relay() {
  : > "$WORK/serve.log"
  "$SITERELAY" serve --config "$1" 2>> "$WORK/serve.log" &
  RELAY_PID=$!
  for _ in $(seq 1 100); do
    if grep -q 'admin: http://' "$WORK/serve.log"; then break; fi
    if ! kill -0 "$RELAY_PID" 2>/dev/null; then break; fi
    sleep 0.05
  done
  HTTP_PORT=$(sed -n 's|.*phones: http://[^ ]*:\([0-9]*\)/ .*|\1|p' "$WORK/serve.log" | head -n 1)
  ADMIN_PORT=$(sed -n 's|.*admin: http://[^ ]*:\([0-9]*\)/healthz.*|\1|p' "$WORK/serve.log" | head -n 1)
  if [[ -z "$HTTP_PORT" || -z "$ADMIN_PORT" ]]; then
    echo "relay did not start:" >&2
    cat "$WORK/serve.log" >&2
    exit 1
  fi
}

# stop_relay: SIGTERM and wait; sets STOP_RC to the relay's exit code. (Not in $(...): a
# subshell cannot wait for the relay.)
stop_relay() {
  kill -TERM "$RELAY_PID" 2>/dev/null
  STOP_RC=0
  wait "$RELAY_PID" || STOP_RC=$?
}
