#!/usr/bin/env bash
# kill -9 soak (docs/SECURITY.md "Batteries", issue 11; DESIGN.md "On disk": "an acknowledged upload
# survives kill -9", "restart after any crash needs no repair step beyond what start-up does").
#
# One relay, one data_dir kept across every iteration, nginx as its origin (a rate-limited firmware
# image, a manifest whose set changes, PUT for the settings outbox) and tests/testing/log_collector
# as its log upstream. Each iteration picks a phase and kills a process in it with SIGKILL at a
# random moment:
#   download  phones pull a firmware image through the relay (a new path each time, so a transfer
#             from the origin is always under way); the relay is killed;
#   upload    phones PUT their growing app logs (the whole log each time) and settings files;
#   sync      a new manifest set on the origin and passes started from the admin API;
#   ship      log uploads while the collector fails, closes and recovers (batches pending);
#   startup   the relay is killed while it starts (crash recovery interrupted);
#   import    `siterelay import DIR` seeds the stopped relay's cache, and is killed;
#   sync-cli  `siterelay sync` runs a manifest pass on the stopped relay's cache, and is killed.
# The serving phases also run a random mix of the others' work. Then, with nothing running:
# every new file under objects/ hashes to its name and quarantine/ stays empty; `siterelay cache
# verify` passes; a manifest set is either all visible (its two files pinned, from one version) or
# not at all; an import shows only files with their source's bytes. The relay is started again:
# every upload it acknowledged (2xx) is there byte for byte (a log: the acknowledged bytes, then
# at most what the phone sent after them; a settings file: the last acknowledged version, or one
# the phone sent after it), and downloads through it are byte-exact. A download that completed
# before a kill must be byte-exact too: no partial object is ever served as a whole one. At the
# end the collector must hold every acknowledged log line, each once, and the origin every
# settings file's acknowledged (or later) version.
#
# usage: tools/soak/kill9.sh [--iterations N] [--seed S] [--binary PATH] [--collector PATH]
#                            [--short] [--tamper]
#   --short     the CI mode (tests/integration/kill9_test.sh): small files, 7 iterations by
#               default, the phases in a fixed order first so each one is hit
#   --tamper    after the last kill, lose part of an acknowledged log and corrupt an object, as a
#               bug would: the run must then fail (the checks' own test)
# Prints one line per iteration and a final figures line. Exit: 0 no data lost, nothing corrupt,
# no crash; 1 a check failed (the scratch directory is kept and named); 2 usage error or missing
# tool. Needs nginx ($NGINX, default /usr/sbin/nginx), curl, openssl.
set -uo pipefail
export LC_ALL=C

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
iterations=
seed=
binary="$repo_root/build/siterelay"
collector=
short=0
tamper=0

usage() { sed -n '/^# usage:/,/^# tool\./p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() {
  echo "kill9: $*" >&2
  exit 2
}

while (($#)); do
  case $1 in
    --iterations) (($# >= 2)) || die "--iterations needs a number"; iterations=$2; shift 2 ;;
    --iterations=*) iterations=${1#*=}; shift ;;
    --seed) (($# >= 2)) || die "--seed needs a number"; seed=$2; shift 2 ;;
    --seed=*) seed=${1#*=}; shift ;;
    --binary) (($# >= 2)) || die "--binary needs a path"; binary=$2; shift 2 ;;
    --binary=*) binary=${1#*=}; shift ;;
    --collector) (($# >= 2)) || die "--collector needs a path"; collector=$2; shift 2 ;;
    --collector=*) collector=${1#*=}; shift ;;
    --short) short=1; shift ;;
    --tamper) tamper=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[[ -n $iterations ]] || iterations=$((short ? 7 : 200))
[[ $iterations =~ ^[1-9][0-9]*$ ]] || die "--iterations must be a positive number"
[[ -z $seed || $seed =~ ^[0-9]+$ ]] || die "--seed must be a number"
[[ -n $seed ]] || seed=$(((RANDOM << 15 | RANDOM) + 1))
[[ -x $binary ]] || die "no siterelay binary at $binary (cmake --build build)"
collector=${collector:-$(dirname "$binary")/tests/log_collector}
[[ -x $collector ]] || die "no log collector at $collector (cmake --build build --target log_collector)"
NGINX=${NGINX:-/usr/sbin/nginx}
[[ -x $NGINX ]] || die "$NGINX not found (apt-get install nginx-light): the origin"
for tool in curl openssl ss shuf; do
  command -v "$tool" > /dev/null || die "$tool not found"
done

# lib.sh: pick_port, sanitizer_build and a scratch directory ($WORK).
# shellcheck source=../../tests/integration/lib.sh
source "$repo_root/tests/integration/lib.sh" "$binary"
SITERELAY=$(realpath "$binary")
COLLECTOR=$(realpath "$collector")
RANDOM=$seed

if ((short)); then
  BIG=4000000 BIG_RATE=8m M_LD=262144 M_RATE=1m IMPORT_MAX=524288 LOG_CAP=65536
else
  BIG=16000000 BIG_RATE=16m M_LD=1048576 M_RATE=2m IMPORT_MAX=2097152 LOG_CAP=262144
fi
ADMIN_PW=kill9-admin-password
PAD=$(printf '%048d' 0 | tr 0 x)  # padding for log lines of varied length
DATA=$WORK/data
# nginx.sh: the origin (start_nginx), sha and digest, and the EXIT trap (cleanup, below).
NGINX_DIR=$WORK/nginx
ORIGIN=$WORK/origin
# shellcheck source=../../tests/integration/nginx.sh
source "$repo_root/tests/integration/nginx.sh"
mkdir -p "$ORIGIN/m" "$WORK/collected" "$WORK/phones" "$WORK/logs" "$WORK/imports" "$WORK/iter"
: > "$WORK/acks"         # "try|ack log MAC LEN" and "try|ack set PATH FILE", in order
: > "$WORK/versions"     # "N CFG_SHA LD_SHA": every manifest set the origin offered
: > "$WORK/all_paths"    # pull-through paths asked for so far

COLLECTOR_PID=
VICTIM_PID=  # an import or sync process
WORKERS=()
KEEP=0

# cleanup: nginx.sh's, but the phones, the victim and the relay are killed outright (what is left
# of a soak is never owed a clean exit), the collector gets SIGTERM, and a run with a finding
# keeps its scratch directory.
# shellcheck disable=SC2317  # run by nginx.sh's EXIT trap
cleanup() {
  rm -f "$WORK/run.flag"
  local pid
  for pid in "${WORKERS[@]}" $VICTIM_PID $RELAY_PID; do kill -9 "$pid" 2>/dev/null; done
  RELAY_PID=  # killed: stop_origin_and_relay reaps it with the other jobs
  if [[ -n $COLLECTOR_PID ]]; then
    kill -TERM "$COLLECTOR_PID" 2>/dev/null
    wait "$COLLECTOR_PID" 2>/dev/null
  fi
  stop_origin_and_relay
  if ((KEEP)) || [[ -n ${KEEP_WORK:-} ]]; then
    echo "kill9: kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}

# rand LO HI: R = a random integer in [LO, HI]. (A global, not printed: $(...) would run in a
# subshell, which bash reseeds, and the run would not follow its seed.)
rand() { R=$(($1 + RANDOM % ($2 - $1 + 1))); }
# rand_secs LO_MS HI_MS: S = a random duration in seconds, for sleep.
rand_secs() {
  rand "$1" "$2"
  S=$((R / 1000)).$(printf '%03d' $((R % 1000)))
}

# ---- the figures -------------------------------------------------------------------------------
declare -A KILLS=()
LOST=0          # acknowledged uploads or log lines missing or changed
CORRUPT=0       # objects not hashing to their name, verify failures, torn sets, wrong bytes served
CRASHES=0       # the relay died by itself, did not start, or a sanitizer spoke
ACK_LOGS=0      # acknowledged log uploads checked
ACK_SETTINGS=0  # acknowledged settings uploads checked
DL_OK=0         # downloads through the relay that completed byte-exact
DL_CUT=0        # downloads cut short (a kill, a failed transfer): never complete-looking
CHECKED_GETS=0  # byte-exact reads after restarts
IMPORTS_FINISHED=0
LINES_AT_COLLECTOR=0
DUPLICATE_LINES=0
ITERATION=0

finding() {  # finding KIND MESSAGE: counts and prints a failed check
  case $1 in
    lost) LOST=$((LOST + 1)) ;;
    corrupt) CORRUPT=$((CORRUPT + 1)) ;;
    crash) CRASHES=$((CRASHES + 1)) ;;
  esac
  echo "kill9: iteration $ITERATION: ${1^^}: ${*:2}" >&2
  ((tamper)) || KEEP=1  # the scratch directory for a look, unless the damage was ours
}

# ---- origin and collector ------------------------------------------------------------------------
head -c "$BIG" /dev/urandom > "$ORIGIN/big1.sip.ld"
head -c "$BIG" /dev/urandom > "$ORIGIN/big2.sip.ld"
BIG_SHA=("" "$(sha "$ORIGIN/big1.sip.ld")" "$(sha "$ORIGIN/big2.sip.ld")")
M_VERSION=0

# new_manifest: a new set on the origin: m/000000000000.cfg naming its version and a new m/sip.ld,
# each renamed into place, then the manifest naming both.
new_manifest() {
  M_VERSION=$((M_VERSION + 1))
  head -c "$M_LD" /dev/urandom > "$ORIGIN/m/.sip.ld.new"
  printf '<APPLICATION APP_FILE_PATH="m/sip.ld" VERSION="%d"/>\n' "$M_VERSION" \
    > "$ORIGIN/m/.cfg.new"
  local cfg_sha ld_sha
  cfg_sha=$(sha "$ORIGIN/m/.cfg.new")
  ld_sha=$(sha "$ORIGIN/m/.sip.ld.new")
  echo "$M_VERSION $cfg_sha $ld_sha" >> "$WORK/versions"
  mv "$ORIGIN/m/.sip.ld.new" "$ORIGIN/m/sip.ld"
  mv "$ORIGIN/m/.cfg.new" "$ORIGIN/m/000000000000.cfg"
  printf '{"files": [{"path": "m/000000000000.cfg", "size": %d, "sha256": "%s"},
                     {"path": "m/sip.ld", "size": %d, "sha256": "%s"}]}\n' \
    "$(stat -c %s "$ORIGIN/m/000000000000.cfg")" "$cfg_sha" "$M_LD" "$ld_sha" \
    > "$ORIGIN/.manifest.json.new"
  mv "$ORIGIN/.manifest.json.new" "$ORIGIN/manifest.json"
}
new_manifest

# Firmware under a new path each time (pt/ITERATION-ID-N/bigK.sip.ld: a cold miss for the relay),
# the manifest's set, and PUT for the settings outbox. A soak's hours of requests are not logged.
NGINX_LOCATIONS=(
  "access_log off;"
  "client_max_body_size 16m;"
  "location ~ ^/pt/[^/]+/(big[12]\\.sip\\.ld)\$ { alias $ORIGIN/\$1; limit_rate $BIG_RATE; }"
  "location ^~ /m/ { limit_rate $M_RATE; }"
  "location ~ -(phone|web)\\.cfg\$ { dav_methods PUT; create_full_put_path on; }"
)
start_nginx 2  # no origin: exit 2, as for a missing tool (no finding)

"$COLLECTOR" --out "$WORK/collected" --port-file "$WORK/collector.port" 2> "$WORK/collector.log" &
COLLECTOR_PID=$!
for _ in $(seq 1 100); do [[ -s $WORK/collector.port ]] && break; sleep 0.05; done
COLLECTOR_PORT=$(cat "$WORK/collector.port" 2>/dev/null)
[[ -n $COLLECTOR_PORT ]] || { cat "$WORK/collector.log" >&2; die "the log collector did not start"; }
control() {
  curl -s --max-time 5 -X POST --data-binary "$1" \
    "http://127.0.0.1:$COLLECTOR_PORT/control" > /dev/null
}

cat > "$WORK/relay.toml" <<TOML
data_dir = "$DATA"
relay_id = "kill9"
[origin]
url = "http://127.0.0.1:$NGINX_PORT/"
manifest = "manifest.json"
fresh_for = 3600
sync_interval = 3600
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
password = "$ADMIN_PW"
[logs]
upstream = "http://127.0.0.1:$COLLECTOR_PORT/v1/logs"
batch_age = 1
batch_bytes = 16384
TOML

# ---- the relay -------------------------------------------------------------------------------------
SERVE_LOG=
RELAY_STARTS=0

# launch_relay: `siterelay serve` in the background, its log in $WORK/logs. Sets RELAY_PID.
launch_relay() {
  RELAY_STARTS=$((RELAY_STARTS + 1))
  SERVE_LOG=$WORK/logs/serve-$ITERATION-$RELAY_STARTS.log
  : > "$SERVE_LOG"
  "$SITERELAY" serve --config "$WORK/relay.toml" 2> "$SERVE_LOG" &
  RELAY_PID=$!
}

# start_relay_and_wait: launch_relay, then up to 30 s for the listeners. Sets HTTP_PORT,
# ADMIN_PORT, BASE. Returns 1 when the relay did not come up (counted as a crash).
start_relay_and_wait() {
  launch_relay
  for _ in $(seq 1 600); do
    grep -q 'admin: http://' "$SERVE_LOG" && break
    kill -0 "$RELAY_PID" 2>/dev/null || break
    sleep 0.05
  done
  HTTP_PORT=$(sed -n 's|.*phones: http://[^ ]*:\([0-9]*\)/ .*|\1|p' "$SERVE_LOG" | head -n 1)
  ADMIN_PORT=$(sed -n 's|.*admin: http://[^ ]*:\([0-9]*\)/healthz.*|\1|p' "$SERVE_LOG" | head -n 1)
  BASE="http://127.0.0.1:$HTTP_PORT"
  if [[ -z $HTTP_PORT || -z $ADMIN_PORT ]]; then
    finding crash "the relay did not start after a kill -9: $(tail -n 5 "$SERVE_LOG" | tr '\n' ' ')"
    kill -9 "$RELAY_PID" 2>/dev/null
    wait "$RELAY_PID" 2>/dev/null
    RELAY_PID=
    return 1
  fi
  return 0
}

# sanitizer_spoke LOG: a sanitizer report in a relay's log is a crash, whether or not it exited.
sanitizer_spoke() { grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:' "$1"; }

# kill_relay: SIGKILL and reap; a relay that had already exited crashed by itself.
kill_relay() {
  local rc=0
  kill -0 "$RELAY_PID" 2>/dev/null || finding crash "the relay had exited before the kill"
  kill -9 "$RELAY_PID" 2>/dev/null
  wait "$RELAY_PID" 2>/dev/null || rc=$?
  ((rc == 137)) || finding crash "the relay ended with $rc, not by the SIGKILL (see $SERVE_LOG)"
  sanitizer_spoke "$SERVE_LOG" && finding crash "a sanitizer report in $SERVE_LOG"
  RELAY_PID=
}

# stop_relay_gracefully: SIGTERM, 15 s to exit 0.
stop_relay_gracefully() {
  local rc=0
  kill -TERM "$RELAY_PID" 2>/dev/null
  for _ in $(seq 1 150); do kill -0 "$RELAY_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$RELAY_PID" 2>/dev/null && { finding crash "no exit within 15 s of SIGTERM"; kill -9 "$RELAY_PID"; }
  wait "$RELAY_PID" 2>/dev/null || rc=$?
  ((rc == 0)) || finding crash "SIGTERM exit code $rc (see $SERVE_LOG)"
  sanitizer_spoke "$SERVE_LOG" && finding crash "a sanitizer report in $SERVE_LOG"
  RELAY_PID=
}

# ---- the phones ------------------------------------------------------------------------------------
# A pool of phones uploading their app logs (the whole log each time, as Poly phones do) and their
# settings overrides. A phone whose log passes LOG_CAP retires (it stays checked) and a new one
# takes its place, so uploads stay phone-sized.
NEXT_MAC=1
ACTIVE_MACS=()
ALL_MACS=()
new_mac() {  # sets MAC
  MAC=$(printf '0004f2%06x' "$NEXT_MAC")
  NEXT_MAC=$((NEXT_MAC + 1))
  : > "$WORK/phones/$MAC-app.log"
  echo 0 > "$WORK/phones/$MAC.n"
  ALL_MACS+=("$MAC")
}
for _ in 1 2 3 4; do
  new_mac
  ACTIVE_MACS+=("$MAC")
done
retire_full_logs() {
  local i
  for i in "${!ACTIVE_MACS[@]}"; do
    if (($(stat -c %s "$WORK/phones/${ACTIVE_MACS[$i]}-app.log") > LOG_CAP)); then
      new_mac
      ACTIVE_MACS[i]=$MAC
    fi
  done
}

# upload_worker MAC N: phone MAC uploads until the run flag goes: its log grows by 5-40 lines and
# is PUT whole, or a new settings file is PUT. Every attempt is written down before it is made and
# every 2xx after it is seen.
upload_worker() {
  local mac=$1 n=0 code lines len i f path seq pad
  RANDOM=$2
  while [[ -f $WORK/run.flag ]]; do
    n=$((n + 1))
    if ((RANDOM % 10 < 7)); then
      seq=$(cat "$WORK/phones/$mac.n")
      rand 5 40
      lines=$R
      for ((i = 0; i < lines; i++)); do
        seq=$((seq + 1))
        pad=${PAD:0:$((RANDOM % 48))}
        printf '0517%06d|sip  |3|00|%s it%d line %d %s\n' "$((seq % 1000000))" "$mac" \
          "$ITERATION" "$seq" "$pad"
      done >> "$WORK/phones/$mac-app.log"
      echo "$seq" > "$WORK/phones/$mac.n"
      len=$(stat -c %s "$WORK/phones/$mac-app.log")
      echo "try log $mac $len" >> "$WORK/acks"
      code=$(curl -s -o /dev/null --max-time 20 -w '%{http_code}' \
        -T "$WORK/phones/$mac-app.log" "$BASE/$mac-app.log")
      [[ $code == 2?? ]] && echo "ack log $mac $len" >> "$WORK/acks"
    else
      if ((RANDOM % 2)); then path=$mac-phone.cfg; else path=$mac-web.cfg; fi
      f=$WORK/phones/$path.$ITERATION.$n
      rand 0 200000
      { printf '<PHONE_CONFIG v="%s %s"/>\n' "$ITERATION" "$n"
        head -c "$R" /dev/urandom | base64 -w 100; } > "$f"
      echo "try set $path $f" >> "$WORK/acks"
      code=$(curl -s -o /dev/null --max-time 20 -w '%{http_code}' -T "$f" "$BASE/$path")
      [[ $code == 2?? ]] && echo "ack set $path $f" >> "$WORK/acks"
    fi
    rand_secs 0 60
    sleep "$S"
  done
}

# download_worker ID SEED: phones pull firmware through the relay, each from a new path (a cold
# miss: the relay streams the origin's transfer while it stores it). A complete answer must be
# the image's exact bytes.
download_worker() {
  local id=$1 n=0 k path code rc out
  RANDOM=$2
  while [[ -f $WORK/run.flag ]]; do
    n=$((n + 1))
    rand 1 2
    k=$R
    path=pt/$ITERATION-$id-$n/big$k.sip.ld
    echo "$path $k" >> "$WORK/all_paths"
    out=$WORK/iter/dl-$id-$n
    rc=0
    code=$(curl -s --max-time 60 -o "$out" -w '%{http_code}' "$BASE/$path") || rc=$?
    echo "$path $k $rc $code $(sha "$out") $(stat -c %s "$out" 2>/dev/null || echo 0)" \
      >> "$WORK/iter/downloads"
    rm -f "$out"
  done
}

# sync_worker SEED: passes from the admin API (the relay also starts one at each start).
sync_worker() {
  RANDOM=$1
  while [[ -f $WORK/run.flag ]]; do
    curl -s -o /dev/null --max-time 5 -u "admin:$ADMIN_PW" -X POST \
      "http://127.0.0.1:$ADMIN_PORT/api/v1/sync"
    rand_secs 100 600
    sleep "$S"
  done
}

# collector_worker SEED: the log upstream fails, hangs up and recovers while batches are shipped.
collector_worker() {
  RANDOM=$1
  local modes=("ok" "fail 503" "close" "fail 500" "ok")
  while [[ -f $WORK/run.flag ]]; do
    control "${modes[RANDOM % ${#modes[@]}]}"
    rand_secs 100 700
    sleep "$S"
  done
}

start_workers() {  # start_workers PHASE: the phase's own work and a random mix of the rest
  local phase=$1 mac w=0
  touch "$WORK/run.flag"
  WORKERS=()
  local uploads=$((RANDOM % 2)) downloads=$((RANDOM % 2)) syncs=$((RANDOM % 3 == 0)) flaky=$((RANDOM % 3 == 0))
  case $phase in
    download) rand 1 3; downloads=$R ;;
    upload) uploads=1 ;;
    sync) syncs=1 ;;
    ship) uploads=1 flaky=1 ;;
  esac
  # Each worker has a seed of its own (a subshell's RANDOM would be reseeded at random).
  if ((uploads)); then
    for mac in "${ACTIVE_MACS[@]}"; do
      [[ $phase == upload ]] || ((RANDOM % 2)) || continue
      w=$((RANDOM + w + 1))
      upload_worker "$mac" "$w" &
      WORKERS+=($!)
    done
  fi
  for ((i = 1; i <= downloads; i++)); do
    w=$((RANDOM + w + 1))
    download_worker "$i" "$w" &
    WORKERS+=($!)
  done
  w=$((RANDOM + w + 1))
  if ((syncs)); then sync_worker "$w" & WORKERS+=($!); fi
  w=$((RANDOM + w + 1))
  if ((flaky)); then collector_worker "$w" & WORKERS+=($!); fi
}

stop_workers() {
  rm -f "$WORK/run.flag"
  local pid
  for pid in "${WORKERS[@]}"; do wait "$pid" 2>/dev/null; done
  WORKERS=()
  control "ok"
}

# ---- the checks ---------------------------------------------------------------------------------------
touch "$WORK/objects.mark"

# check_store: with nothing running. New object files hash to their names; cache verify passes;
# a manifest set is whole or absent; an import shows only its sources' bytes.
check_store() {
  local f bad=0 rc=0 ls_out
  local next_mark=$WORK/objects.mark.next
  touch "$next_mark"
  while IFS= read -r f; do
    if [[ $(sha "$f") != "$(basename "$f")" ]]; then
      bad=$((bad + 1))
      finding corrupt "$f does not hash to its name"
    fi
  done < <(find "$DATA/objects" -type f -newer "$WORK/objects.mark" 2>/dev/null)
  mv "$next_mark" "$WORK/objects.mark"
  if [[ -d $DATA/quarantine ]] && [[ -n $(find "$DATA/quarantine" -type f) ]]; then
    finding corrupt "files in quarantine/: $(find "$DATA/quarantine" -type f | head -n 3 | tr '\n' ' ')"
    rm -f "$DATA"/quarantine/*
  fi
  "$SITERELAY" cache verify --config "$WORK/relay.toml" > "$WORK/iter/verify.out" 2>&1 || rc=$?
  if ((rc != 0)); then
    finding corrupt "cache verify exit $rc: $(grep -v '^verifying' "$WORK/iter/verify.out" | head -n 3 | tr '\n' ' ')"
  fi
  ls_out=$("$SITERELAY" cache ls --config "$WORK/relay.toml" 2> "$WORK/iter/ls.err")
  # The manifest set: both files pinned from one version, or neither pinned.
  local cfg ld
  cfg=$(awk -F'\t' '$1 == "m/000000000000.cfg" && $4 == "pinned" {print $3}' <<< "$ls_out")
  ld=$(awk -F'\t' '$1 == "m/sip.ld" && $4 == "pinned" {print $3}' <<< "$ls_out")
  if [[ -n $cfg || -n $ld ]]; then
    if ! grep -q " $cfg $ld\$" "$WORK/versions"; then
      finding corrupt "a torn manifest set: m/000000000000.cfg $cfg with m/sip.ld $ld"
    fi
  fi
  # This iteration's import, if any: every listed file has its source's bytes.
  if [[ -n ${IMPORT_ROOT:-} ]]; then
    local path size digest listed=0
    while IFS=$'\t' read -r path size digest _; do
      [[ $path == imp$ITERATION/* ]] || continue
      listed=$((listed + 1))
      if [[ ! -f $IMPORT_ROOT/$path || $(sha "$IMPORT_ROOT/$path") != "$digest" ]]; then
        finding corrupt "imported $path lists $digest, not its source's bytes"
      fi
    done <<< "$ls_out"
    if ((IMPORT_RC == 0 && listed != IMPORT_FILES)); then
      finding lost "the import said done but $listed of $IMPORT_FILES files are cached"
    fi
    IMPORT_LISTED=$listed
  fi
  CACHE_LS=$ls_out
}

# accepted_versions PATH: the files a settings path may hold: the last acknowledged version and
# every one the phone sent after it (an answer the kill cut off); nothing if none was acknowledged.
accepted_versions() {
  awk -v p="$1" '$2 == "set" && $3 == p {
                   if ($1 == "ack") { n = 0; a = $4; ok[n++] = $4 } else if (a != "") ok[n++] = $4 }
                 END { if (a != "") for (i = 0; i < n; i++) print ok[i] }' "$WORK/acks"
}

# check_served: the relay restarted. Every acknowledged upload, the downloads, the manifest set
# and the import, read back through it.
LAST_ACK_LINE=0
check_served() {
  local mac len acked stored n path f code want
  local new_acks
  new_acks=$(tail -n +"$((LAST_ACK_LINE + 1))" "$WORK/acks")
  LAST_ACK_LINE=$(wc -l < "$WORK/acks")
  ACK_LOGS=$((ACK_LOGS + $(grep -c '^ack log ' <<< "$new_acks")))
  ACK_SETTINGS=$((ACK_SETTINGS + $(grep -c '^ack set ' <<< "$new_acks")))
  # Logs: the acknowledged bytes, then at most what the phone sent later (a PUT cut by the kill
  # may have been stored without its answer).
  for mac in "${ALL_MACS[@]}"; do
    acked=$(awk -v m="$mac" '$1 == "ack" && $2 == "log" && $3 == m {l = $4} END {print l + 0}' "$WORK/acks")
    ((acked > 0)) || continue
    stored=$WORK/iter/stored.log
    code=$(curl -s --max-time 20 -o "$stored" -w '%{http_code}' "$BASE/$mac-app.log")
    len=$(stat -c %s "$stored" 2>/dev/null || echo 0)
    CHECKED_GETS=$((CHECKED_GETS + 1))
    if [[ $code != 200 ]] || ((len < acked)); then
      finding lost "$mac-app.log: $code, $len bytes stored, $acked acknowledged"
    elif ! head -c "$len" "$WORK/phones/$mac-app.log" | cmp -s - "$stored"; then
      finding lost "$mac-app.log: the stored $len bytes are not what the phone sent" \
        "(first difference: $(head -c "$len" "$WORK/phones/$mac-app.log" | cmp - "$stored" 2>&1 | head -n 1))"
    fi
  done
  # Settings: the last acknowledged version, or one the phone sent after it.
  local paths
  paths=$(awk '$2 == "set" {print $3}' "$WORK/acks" | sort -u)
  for path in $paths; do
    want=$(accepted_versions "$path")
    [[ -n $want ]] || continue  # never acknowledged
    code=$(curl -s --max-time 20 -o "$WORK/iter/stored.cfg" -w '%{http_code}' "$BASE/$path")
    CHECKED_GETS=$((CHECKED_GETS + 1))
    local got ok=0
    got=$(sha "$WORK/iter/stored.cfg")
    if [[ $code == 200 ]]; then
      while IFS= read -r f; do
        [[ -f $f && $(sha "$f") == "$got" ]] && { ok=1; break; }
      done <<< "$want"
    fi
    ((ok)) || finding lost "$path: $code, sha $got is not the acknowledged version ($(head -n 1 <<< "$want"))"
  done
  # Downloads that completed during the run: byte-exact, or cut short, never a wrong whole.
  if [[ -f $WORK/iter/downloads ]]; then
    local k rc dsha size
    while read -r path k rc code dsha size; do
      if [[ $rc == 0 && $code == 200 ]]; then
        if [[ $dsha == "${BIG_SHA[$k]}" ]]; then
          DL_OK=$((DL_OK + 1))
        else
          finding corrupt "$path was served complete ($size bytes) with the wrong bytes"
        fi
      else
        DL_CUT=$((DL_CUT + 1))
      fi
    done < "$WORK/iter/downloads"
  fi
  # Through the restarted relay: this iteration's new paths (at most two) and an older one.
  local picks r1=$RANDOM r2=$RANDOM
  picks=$( { grep "^pt/$ITERATION-" "$WORK/all_paths" | shuf -n 2 --random-source=<(yes "$r1")
             grep -v "^pt/$ITERATION-" "$WORK/all_paths" | shuf -n 1 --random-source=<(yes "$r2"); } )
  while read -r path k; do
    [[ -n $path ]] || continue
    code=$(curl -s --max-time 60 -o "$WORK/iter/got" -w '%{http_code}' "$BASE/$path")
    CHECKED_GETS=$((CHECKED_GETS + 1))
    [[ $code == 200 && $(sha "$WORK/iter/got") == "${BIG_SHA[$k]}" ]] ||
      finding corrupt "$path after the restart: $code, sha $(sha "$WORK/iter/got")"
  done <<< "$picks"
  # The manifest's files: a version the origin offered, whole (the relay's pass at start may
  # publish a newer set than the one the catalog held a moment ago, so any version will do;
  # that a set is published whole is checked on the catalog, with the relay stopped).
  local column
  for f in "m/000000000000.cfg:2" "m/sip.ld:3"; do
    code=$(curl -s --max-time 20 -o "$WORK/iter/got" -w '%{http_code}' "$BASE/${f%%:*}")
    CHECKED_GETS=$((CHECKED_GETS + 1))
    column=${f#*:}
    [[ $code == 200 ]] && awk -v c="$column" -v s="$(sha "$WORK/iter/got")" \
      '$c == s {found = 1} END {exit !found}' "$WORK/versions" ||
      finding corrupt "${f%%:*} after the restart: $code, $(sha "$WORK/iter/got") is no version" \
        "the origin offered"
  done
  # One file of this iteration's import.
  if [[ -n ${IMPORT_ROOT:-} ]] && ((IMPORT_LISTED > 0)); then
    local r3=$RANDOM
    path=$(awk -F'\t' -v p="imp$ITERATION/" 'index($1, p) == 1 {print $1}' <<< "$CACHE_LS" |
      shuf -n 1 --random-source=<(yes "$r3"))
    code=$(curl -s --max-time 20 -o "$WORK/iter/got" -w '%{http_code}' "$BASE/$path")
    CHECKED_GETS=$((CHECKED_GETS + 1))
    [[ $code == 200 && $(sha "$WORK/iter/got") == "$(sha "$IMPORT_ROOT/$path")" ]] ||
      finding corrupt "imported $path after the restart: $code, wrong bytes"
  fi
  # The collector never refused a batch: a retry is byte-identical (no 422), every batch valid.
  local refused
  refused=$(awk '$3 == 400 || $3 == 422' "$WORK/collected/requests.log" 2>/dev/null | wc -l)
  ((refused == 0)) || finding corrupt "the collector refused $refused batch(es): $(awk '$3 == 400 || $3 == 422' "$WORK/collected/requests.log" | tail -n 1)"
}

# tamper: what a bug would do to the data_dir: lose the tail of an acknowledged log and flip a
# byte of an object. The checks must see both.
tamper() {
  local mac acked f
  for mac in "${ALL_MACS[@]}"; do
    acked=$(awk -v m="$mac" '$1 == "ack" && $2 == "log" && $3 == m {l = $4} END {print l + 0}' "$WORK/acks")
    if ((acked > 10)) && [[ -f $DATA/spool/$mac-app.log ]]; then
      truncate -s $((acked - 10)) "$DATA/spool/$mac-app.log"
      echo "kill9: tamper: cut the last 10 acknowledged bytes of $mac-app.log" >&2
      break
    fi
  done
  f=$(find "$DATA/objects" -type f -size +1k | head -n 1)
  if [[ -n $f ]]; then
    printf 'X' | dd of="$f" bs=1 seek=100 conv=notrunc status=none
    touch "$f"
    echo "kill9: tamper: flipped a byte of $f" >&2
  fi
}

# ---- the phases -------------------------------------------------------------------------------------
PHASES=(download upload sync ship startup import sync-cli)
WEIGHTS=(24 24 14 14 8 10 6)
pick_phase() {  # sets PHASE
  if ((short && ITERATION <= ${#PHASES[@]})); then
    # CI: each phase once, in an order that also covers a relay killed right after an import.
    local order=(download upload import sync startup ship sync-cli)
    PHASE=${order[ITERATION - 1]}
    return
  fi
  local r=$((RANDOM % 100)) i
  PHASE=download
  for i in "${!PHASES[@]}"; do
    ((r < WEIGHTS[i])) && { PHASE=${PHASES[i]}; return; }
    r=$((r - WEIGHTS[i]))
  done
}

# run_victim PHASE: an import or a sync pass on the stopped relay's data_dir, killed at random.
run_victim() {
  local phase=$1 rc=0 delay
  if [[ $phase == import ]]; then
    IMPORT_ROOT=$WORK/imports/$ITERATION
    mkdir -p "$IMPORT_ROOT/imp$ITERATION/sub"
    rand 3 $((short ? 10 : 16))
    IMPORT_FILES=$R
    local i prev=
    for ((i = 1; i <= IMPORT_FILES; i++)); do
      local f=$IMPORT_ROOT/imp$ITERATION/file$i.bin
      ((i % 3 == 0)) && f=$IMPORT_ROOT/imp$ITERATION/sub/file$i.bin
      if [[ -n $prev ]] && ((RANDOM % 4 == 0)); then
        cp "$prev" "$f"  # identical content: one object
      else
        rand 4096 "$IMPORT_MAX"
        head -c "$R" /dev/urandom > "$f"
      fi
      prev=$f
    done
    "$SITERELAY" import "$IMPORT_ROOT" --config "$WORK/relay.toml" > "$WORK/iter/victim.out" 2>&1 &
    rand_secs 0 $((short ? 40 : 80))  # an import of a few MB takes about that long
  else
    new_manifest
    "$SITERELAY" sync --config "$WORK/relay.toml" > "$WORK/iter/victim.out" 2>&1 &
    rand_secs 0 $((short ? 200 : 600))
  fi
  VICTIM_PID=$!
  delay=$S
  sleep "$delay"
  if kill -9 "$VICTIM_PID" 2>/dev/null; then
    wait "$VICTIM_PID" 2>/dev/null
    rc=137
    KILLS[$phase]=$((${KILLS[$phase]:-0} + 1))
    KILLED_WHAT="$phase after ${delay}s"
  else
    wait "$VICTIM_PID" 2>/dev/null || rc=$?
    [[ $phase == import ]] && IMPORTS_FINISHED=$((IMPORTS_FINISHED + 1))
    KILLED_WHAT="$phase finished first (exit $rc)"
    if [[ $phase == import ]] && ((rc != 0)); then
      finding crash "siterelay import exit $rc: $(tail -n 2 "$WORK/iter/victim.out" | tr '\n' ' ')"
    fi
  fi
  IMPORT_RC=$rc
  VICTIM_PID=
}

# ---- the soak ---------------------------------------------------------------------------------------
echo "kill9: $iterations iterations from seed $seed ($SITERELAY$(sanitizer_build && echo ', sanitizers'))"
start=$EPOCHREALTIME
for ((ITERATION = 1; ITERATION <= iterations; ITERATION++)); do
  rm -rf "$WORK/iter" && mkdir -p "$WORK/iter"
  IMPORT_ROOT=
  IMPORT_LISTED=0
  pick_phase
  phase=$PHASE
  retire_full_logs
  case $phase in
    import | sync-cli)
      [[ -n $RELAY_PID ]] && stop_relay_gracefully
      run_victim "$phase"
      ;;
    startup)
      [[ -n $RELAY_PID ]] && stop_relay_gracefully
      launch_relay
      rand_secs 0 $((short ? 150 : 300))
      delay=$S
      sleep "$delay"
      if kill -0 "$RELAY_PID" 2>/dev/null; then KILLS[startup]=$((${KILLS[startup]:-0} + 1)); fi
      kill_relay
      KILLED_WHAT="startup after ${delay}s"
      ;;
    *)
      if [[ $phase == sync ]] || ((RANDOM % 3 == 0)); then new_manifest; fi
      if [[ -z $RELAY_PID ]]; then start_relay_and_wait || break; fi
      start_workers "$phase"
      case $phase in
        download) rand_secs 50 $((short ? 600 : 1100)) ;;
        upload) rand_secs 50 1500 ;;
        sync)
          curl -s -o /dev/null --max-time 5 -u "admin:$ADMIN_PW" -X POST \
            "http://127.0.0.1:$ADMIN_PORT/api/v1/sync"
          rand_secs 0 $((short ? 400 : 800))
          ;;
        ship) rand_secs 500 2500 ;;
      esac
      delay=$S
      sleep "$delay"
      KILLS[$phase]=$((${KILLS[$phase]:-0} + 1))
      kill_relay
      stop_workers
      KILLED_WHAT="$phase after ${delay}s"
      ;;
  esac
  ((tamper && ITERATION == iterations)) && tamper
  check_store
  start_relay_and_wait || break
  check_served
  # The next phase may need the relay stopped; the serving ones reuse it.
  if ((ITERATION % 10 == 0)); then
    stop_relay_gracefully
    "$SITERELAY" cache gc --config "$WORK/relay.toml" > /dev/null 2>&1 ||
      finding corrupt "cache gc failed"
  fi
  printf 'kill9: %d/%d %-9s %-34s lost %d, corrupt %d, crashes %d\n' "$ITERATION" "$iterations" \
    "$phase" "($KILLED_WHAT)" "$LOST" "$CORRUPT" "$CRASHES"
done
ITERATION=$((ITERATION > iterations ? iterations : ITERATION))

# ---- the end: everything acknowledged reached its upstream ----------------------------------------------
if [[ -z $RELAY_PID ]] && ! start_relay_and_wait; then
  echo "kill9: FAILED at iteration $ITERATION: the relay does not start; logs in $WORK/logs" >&2
  exit 1
fi
control "ok"
collected_lines() {
  sed -E 's/.*"mac":"([0-9a-f]*)","file":"([a-z]*)",.*"line":"(.*)"}$/\1 \3/' \
    "$WORK/collected/lines.ndjson" 2>/dev/null
}
expected_lines() {
  local mac acked
  for mac in "${ALL_MACS[@]}"; do
    acked=$(awk -v m="$mac" '$1 == "ack" && $2 == "log" && $3 == m {l = $4} END {print l + 0}' "$WORK/acks")
    ((acked > 0)) && head -c "$acked" "$WORK/phones/$mac-app.log" | sed "s/^/$mac /"
  done
}
expected_lines | sort > "$WORK/expected.lines"
missing=
# A minute for the spool to drain (batches back off up to a few seconds after the collector's
# failures); in the checks' own test the loss is known, so a few seconds do.
for _ in $(seq 1 $((tamper ? 50 : 600))); do
  collected_lines | sort -u > "$WORK/collected.lines"
  missing=$(comm -23 "$WORK/expected.lines" "$WORK/collected.lines" | wc -l)
  ((missing == 0)) && break
  sleep 0.1
done
if ((missing > 0)); then
  finding lost "$missing acknowledged log line(s) never reached the collector, e.g.:" \
    "$(comm -23 "$WORK/expected.lines" "$WORK/collected.lines" | head -n 3 | tr '\n' '|')"
  LOST=$((LOST + missing - 1))
fi
LINES_AT_COLLECTOR=$(wc -l < "$WORK/expected.lines")
DUPLICATE_LINES=$(collected_lines | sort | uniq -d | wc -l)
((DUPLICATE_LINES == 0)) || finding corrupt "$DUPLICATE_LINES line(s) reached the collector twice" \
  "under different keys: $(collected_lines | sort | uniq -d | head -n 2 | tr '\n' '|')"
# Settings at the origin (the outbox): the acknowledged version or a later one.
for path in $(awk '$1 == "ack" && $2 == "set" {print $3}' "$WORK/acks" | sort -u); do
  want=$(accepted_versions "$path")
  ok=0
  for _ in $(seq 1 300); do
    if [[ -f $ORIGIN/$path ]]; then
      got=$(sha "$ORIGIN/$path")
      while IFS= read -r f; do [[ $(sha "$f") == "$got" ]] && { ok=1; break; }; done <<< "$want"
    fi
    ((ok)) && break
    sleep 0.1
  done
  ((ok)) || finding lost "$path: the origin never got the acknowledged version"
done
stop_relay_gracefully
# Every object, hashed once more from scratch.
bad=0
while IFS= read -r f; do
  [[ $(sha "$f") == "$(basename "$f")" ]] || { bad=$((bad + 1)); finding corrupt "$f does not hash to its name"; }
done < <(find "$DATA/objects" -type f)
rc=0
"$SITERELAY" cache verify --config "$WORK/relay.toml" > "$WORK/verify-final.out" 2>&1 || rc=$?
((rc == 0)) || finding corrupt "final cache verify exit $rc: $(tail -n 2 "$WORK/verify-final.out" | tr '\n' ' ')"

elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
kills=
total_kills=0
for phase in "${PHASES[@]}"; do
  kills+="${kills:+, }$phase ${KILLS[$phase]:-0}"
  total_kills=$((total_kills + ${KILLS[$phase]:-0}))
done
echo "kill9: $ITERATION iterations in $elapsed s (seed $seed): $total_kills kills ($kills;" \
  "$IMPORTS_FINISHED import(s) finished before their kill); $((ACK_LOGS + ACK_SETTINGS))" \
  "acknowledged uploads checked ($ACK_LOGS logs, $ACK_SETTINGS settings), $LINES_AT_COLLECTOR" \
  "acknowledged log lines at the collector; $DL_OK downloads completed byte-exact, $DL_CUT cut" \
  "short, $CHECKED_GETS reads after restarts; data lost $LOST, corrupt $CORRUPT, crashes $CRASHES"
if ((LOST + CORRUPT + CRASHES > 0)); then
  echo "kill9: FAILED; replay the choices with --seed $seed (timings differ); logs in $WORK/logs" >&2
  exit 1
fi
exit 0
