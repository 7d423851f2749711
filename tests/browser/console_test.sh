#!/usr/bin/env bash
# The operator console end to end (issue 8): nginx on loopback is the origin, with a manifest of
# six 1 MB files sent at 512 KiB/s each so that a sync pass lasts a few seconds; `siterelay serve`
# has an admin listener with a known password; two phones (curl with Poly User-Agents) fetch their
# <mac>.cfg so the relay knows them. Then console_test.mjs drives Debian's headless chromium
# through playwright-core: the overview's health, both phones in the device table, sorting and
# filtering it, a third phone showing up without a reload, the DHCP value on the tools page, "Sync now" with its progress moving and ending
# ok, and 401 without credentials. Before the browser starts, the origin's 000000000000.cfg changes
# to one naming an image the origin lacks, so the relay holds it back (issue 12): the overview
# shows it with its reason, and the browser releases it by hand. Screenshots go to $ARTIFACTS_DIR (CTest sets it; default
# $WORK/artifacts, kept). Needs /usr/sbin/nginx, /usr/bin/chromium and tests/browser/node_modules
# (tools/install-deps installs all three). About 15 s. KEEP_WORK=1 keeps the scratch directory.
source "$(dirname "$0")/../integration/lib.sh"
SITERELAY=$(realpath "$SITERELAY")
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$WORK" || exit 1

# Missing tools fail the test: a browser test that cannot run must not look like one that passed.
NGINX=${NGINX:-/usr/sbin/nginx}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
missing=()
[[ -x $NGINX ]] || missing+=("$NGINX (apt-get install nginx)")
[[ -x $CHROMIUM ]] || missing+=("$CHROMIUM (apt-get install chromium)")
command -v node >/dev/null || missing+=("node (apt-get install nodejs npm)")
[[ -f $HERE/node_modules/playwright-core/package.json ]] ||
  missing+=("$HERE/node_modules/playwright-core (npm ci in tests/browser)")
if ((${#missing[@]})); then
  echo "FAIL: this test needs ${missing[*]}; tools/install-deps installs them" >&2
  exit 1
fi

ARTIFACTS_DIR=${ARTIFACTS_DIR:-$WORK/artifacts}
mkdir -p "$ARTIFACTS_DIR"
rm -f "$ARTIFACTS_DIR"/*.png

NGINX_PID=
RELAY_PID=
NGINX_DIR=$WORK/nginx
ORIGIN=$WORK/origin
mkdir -p "$NGINX_DIR/tmp" "$ORIGIN/fw"

cleanup() {
  if [[ -n $RELAY_PID ]]; then
    kill -TERM "$RELAY_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$RELAY_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$RELAY_PID" 2>/dev/null
    wait "$RELAY_PID" 2>/dev/null
  fi
  if [[ -n $NGINX_PID ]]; then
    local workers
    workers=$(pgrep -P "$NGINX_PID" || true)
    # shellcheck disable=SC2086  # one pid a word
    kill -9 "$NGINX_PID" $workers 2>/dev/null
    wait "$NGINX_PID" 2>/dev/null
  fi
  if [[ -n ${KEEP_WORK:-} ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM  # ctest's timeout: still stop nginx and the relay

# The origin: the phones' files, and a manifest of six 1 MB images. nginx sends the images at
# 512 KiB/s each and the relay fetches 4 at a time (docs/sync.md), so a pass takes about 4 s and the
# console, polling every second, sees it part-way.
# Each <mac>.cfg is the phone's master config; the VVX 500's points at firmware other than the
# 5.9.7.47435 it runs, so the console flags it; the Edge E450's names the 8.1.3.1301 it runs.
printf '<APPLICATION APP_FILE_PATH="fw/5.9.8.1204/sip.ld" CONFIG_FILES="site.cfg"/>\n' \
  > "$ORIGIN/0004f2aabbcc.cfg"
printf '<APPLICATION APP_FILE_PATH="fw/8.1.3.1301/sip.ld" CONFIG_FILES="site.cfg"/>\n' \
  > "$ORIGIN/64167f112233.cfg"
cp "$ORIGIN/64167f112233.cfg" "$ORIGIN/0004f2eeff00.cfg"  # a third phone, while the page is open
# The site's shared master config: phones read this version first; then the origin gets another
# one, naming firmware it does not have and a file it does (held configs, below).
MASTER_V1='<APPLICATION CONFIG_FILES="site.cfg"/>'
MASTER_V2='<APPLICATION APP_FILE_PATH="fw/9.9.9.9999/sip.ld" CONFIG_FILES="site-v2.cfg"/>'
printf '%s\n' "$MASTER_V1" > "$ORIGIN/000000000000.cfg"
touch -d @1700000000 "$ORIGIN/000000000000.cfg"  # another Last-Modified than the next version's
printf 'site v2\n' > "$ORIGIN/site-v2.cfg"
entries=()
for i in 1 2 3 4 5 6; do
  head -c 1000000 /dev/urandom > "$ORIGIN/fw/image$i.sip.ld"
  entries+=("$(printf '{"path": "fw/image%d.sip.ld", "size": 1000000, "sha256": "%s"}' "$i" \
    "$(openssl dgst -sha256 -r < "$ORIGIN/fw/image$i.sip.ld" | cut -c1-64)")")
done
(IFS=,; printf '{"files": [%s]}\n' "${entries[*]}") > "$ORIGIN/manifest.json"

# launch_nginx PORT: one worker serving $ORIGIN; returns 1 when it does not answer within 5 s.
launch_nginx() {
  {
    (($(id -u) == 0)) && echo "user root root;"  # the workers must read the private $WORK
    cat <<EOF
worker_processes 1;
daemon off;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 64; }
http {
  default_type application/octet-stream;
  client_body_temp_path $NGINX_DIR/tmp/body;
  proxy_temp_path $NGINX_DIR/tmp/proxy;
  fastcgi_temp_path $NGINX_DIR/tmp/fastcgi;
  uwsgi_temp_path $NGINX_DIR/tmp/uwsgi;
  scgi_temp_path $NGINX_DIR/tmp/scgi;
  server {
    listen 127.0.0.1:$1;
    root $ORIGIN;
    access_log $NGINX_DIR/access.log;
    location /fw/ { limit_rate 512k; }
  }
}
EOF
  } > "$NGINX_DIR/nginx.conf"
  "$NGINX" -e "$NGINX_DIR/error.log" -c "$NGINX_DIR/nginx.conf" -p "$NGINX_DIR/" \
    > "$NGINX_DIR/stdout.log" 2>&1 &
  NGINX_PID=$!
  for _ in $(seq 1 100); do
    kill -0 "$NGINX_PID" 2>/dev/null || break
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$1/ping") == 404 ]] &&
      return 0
    sleep 0.05
  done
  kill -9 "$NGINX_PID" 2>/dev/null
  wait "$NGINX_PID" 2>/dev/null
  NGINX_PID=
  return 1
}
for _ in $(seq 1 10); do
  NGINX_PORT=$(pick_port)
  launch_nginx "$NGINX_PORT" && break
done
if [[ -z $NGINX_PID ]]; then
  echo "FAIL: nginx did not start:" >&2
  cat "$NGINX_DIR/stdout.log" "$NGINX_DIR/error.log" >&2
  exit 1
fi

# The relay: lib.sh's loopback listeners, the admin password set, the manifest on the origin and
# no background passes (sync_interval = 0), so the only pass is the one the browser asks for.
# fresh_for = 0: each read of a config asks the origin again, once the last is stored.
ADMIN_PW=console-test-$RANDOM$RANDOM
write_config relay.toml "[origin]
url = \"http://127.0.0.1:$NGINX_PORT/\"
manifest = \"manifest.json\"
sync_interval = 0
fresh_for = 0"
sed -i "/^\[admin\]\$/a password = \"$ADMIN_PW\"" relay.toml
start_relay relay.toml
ADMIN=http://127.0.0.1:$ADMIN_PORT

# Two phones of different models fetch their own configuration.
phone() {  # phone USER_AGENT PATH -> status
  curl -s -o /dev/null --max-time 10 -w '%{http_code}' -A "$1" "http://127.0.0.1:$HTTP_PORT/$2"
}
expect_eq "VVX 500 fetches its <mac>.cfg" 200 \
  "$(phone 'FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 (SN:0004f2aabbcc) Type/Application' \
    0004f2aabbcc.cfg)"
expect_eq "Edge E450 fetches its <mac>.cfg" 200 \
  "$(phone 'FileTransport PolyEdge-Edge_E450-UA/8.1.3.1301 (SN:64167f112233) Type/Application' \
    64167f112233.cfg)"

# What the page will read, checked without a browser first so a backend gap is named plainly.
# admin_get PATH: the body, then the status code on a line of its own.
admin_get() { curl -s --max-time 10 -u "admin:$ADMIN_PW" -w '\n%{http_code}' "$ADMIN/$1"; }
# admin_post PATH BODY [CURL_ARGS...]: the same, for a POST with a JSON body.
admin_post() {
  curl -s --max-time 10 -u "admin:$ADMIN_PW" -H 'Content-Type: application/json' -d "$2" \
    "${@:3}" -w '\n%{http_code}' "$ADMIN/$1"
}
# json EXPR: EXPR (JavaScript, the parsed stdin as v) printed.
json() { node -e "const v = JSON.parse(require('fs').readFileSync(0, 'utf8')); console.log($1)"; }

# A held config: a phone reads the shared config, the origin publishes a new one naming an image
# it does not have, and the next reads (fresh_for = 0) bring it to the relay, which keeps serving
# the first version and holds the new one back with the reason.
# (The Edge E450 reads it, as itself: a read that names no MAC counts for the phone last seen at
# its address, and must not change what the inventory says about it.)
master() {
  curl -s --max-time 10 -A 'FileTransport PolyEdge-Edge_E450-UA/8.1.3.1301 (SN:64167f112233) Type/Application' \
    "http://127.0.0.1:$HTTP_PORT/000000000000.cfg"
}
expect_eq "a phone reads the first 000000000000.cfg" "$MASTER_V1" "$(master)"
printf '%s\n' "$MASTER_V2" > "$ORIGIN/000000000000.cfg"
held_state() {
  admin_get api/v1/configs | head -n -1 | json '`${v.enabled} ${v.held.map((c) =>
    `${c.path}:${c.files.map((f) => `${f.path}=${f.state}`).sort().join(",")}:eta=${c.eta_seconds}`).join(" ")}`'
}
want="true 000000000000.cfg:fw/9.9.9.9999/sip.ld=failed,site-v2.cfg=here:eta=null"
# The phone reads it again until the relay holds the new version: a read that comes while the
# first read's transfer is still being stored joins that transfer (single flight) and gets the first
# version without asking the origin, and the gate asks the origin at background priority.
# Every read meanwhile gets the first version.
served=()
for _ in $(seq 1 100); do
  served+=("$(master)")
  got=$(held_state)
  [[ $got == "$want" ]] && break
  sleep 0.1
done
expect_eq "while the new one is held, phones still get the first" "$MASTER_V1" \
  "$(printf '%s\n' "${served[@]}" "$(master)" | sort -u)"
expect_eq "GET /api/v1/configs: held, waiting for the image the origin lacks" "$want" "$got"
expect_contains "the reason names the missing image" 'fw/9.9.9.9999/sip.ld: not on the origin' \
  "$(admin_get api/v1/configs | head -n -1 | json 'v.held.map((c) => c.reason).join()')"
metrics=$(curl -s --max-time 10 "$ADMIN/metrics")
for line in 'siterelay_configs_held 1' 'siterelay_configs_held_files_waiting 1' \
    'siterelay_configs_released_total 0'; do
  grep -qxF "$line" <<< "$metrics" && pass || fail "/metrics with a config held lacks: $line"
done
# Release: the same check against other sites as POST /api/v1/sync, then the body's rules. None of
# these releases anything.
expect_eq "POST /api/v1/configs/release from another site" 403 \
  "$(admin_post api/v1/configs/release '{"path": "000000000000.cfg"}' -H 'Origin: http://evil.example' |
    tail -n 1)"
expect_eq "POST /api/v1/configs/release, not JSON" 400 \
  "$(admin_post api/v1/configs/release 'path=000000000000.cfg' | tail -n 1)"
expect_eq "POST /api/v1/configs/release, a body over the limit" 413 \
  "$(admin_post api/v1/configs/release "$(printf '%*s' 5000 '')" | tail -n 1)"
expect_eq "POST /api/v1/configs/release of a config not held" 404 \
  "$(admin_post api/v1/configs/release '{"path": "0004f2aabbcc.cfg"}' | tail -n 1)"
expect_eq "still held after those" "$want" "$(held_state)"

for endpoint in api/v1/status api/v1/devices api/v1/files api/v1/history api/v1/tools api/v1/sync \
    api/v1/configs; do
  expect_eq "GET /$endpoint" 200 "$(admin_get "$endpoint" | tail -n 1)"
done
devices=$(admin_get api/v1/devices | head -n -1)
expect_contains "devices: the VVX 500" '"0004f2aabbcc"' "$devices"
expect_contains "devices: the Edge E450" '"64167f112233"' "$devices"
page=$(admin_get "")
expect_eq "GET / with credentials" 200 "$(tail -n 1 <<< "$page")"
expect_contains "GET / is the console" '<table id="devices-table"' "$page"
expect_eq "GET / without credentials" 401 \
  "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' "$ADMIN/")"
expect_eq "GET /api/v1/status without credentials" 401 \
  "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' "$ADMIN/api/v1/status")"

# The browser.
rc=0
BASE_URL=$ADMIN/ ADMIN_USER=admin ADMIN_PASSWORD=$ADMIN_PW HTTP_PORT=$HTTP_PORT \
  PHONE_MACS="0004f2aabbcc 64167f112233" LATE_PHONE_MAC=0004f2eeff00 CHROMIUM=$CHROMIUM ARTIFACTS_DIR=$ARTIFACTS_DIR \
  HELD_CONFIG=000000000000.cfg HELD_MISSING=fw/9.9.9.9999/sip.ld \
  timeout 90 node "$HERE/console_test.mjs" || rc=$?
if ((rc == 0)); then pass; else fail "console_test.mjs exited $rc (its FAIL lines are above)"; fi

# The browser released the held config: phones get the new version now, and the metrics say so.
expect_eq "after the release, phones get the new 000000000000.cfg" "$MASTER_V2" "$(master)"
expect_eq "nothing held after the release" "true " "$(held_state)"

# The pass the browser started went to the end and left the six images cached and pinned.
expect_eq "sync after the browser's pass" "running=false result=ok files_done=6" \
  "$(admin_get api/v1/sync | head -n -1 |
    json '`running=${v.running} result=${v.result} files_done=${v.files_done}`')"
expect_eq "the manifest's images cached and pinned" 6 \
  "$(admin_get api/v1/files | head -n -1 |
    json 'v.filter((f) => /^fw\/image[1-6]\.sip\.ld$/.test(f.path) && f.state === "pinned").length')"

# /metrics after this known traffic: the pass, the three phones, and two of them flagged (the
# VVX 500, and the late VVX 311 whose 5.9.7.47435 is not the 8.1.3.1301 its config names).
metrics=$(curl -s --max-time 10 "$ADMIN/metrics")
for line in 'siterelay_sync_running 0' 'siterelay_sync_files{state="done"} 6' \
    'siterelay_sync_files{state="failed"} 0' 'siterelay_sync_last_success 1' \
    'siterelay_devices 3' 'siterelay_devices_firmware_mismatch 2' 'siterelay_configs_held 0' \
    'siterelay_configs_held_files_waiting 0' 'siterelay_configs_released_total 1'; do
  grep -qxF "$line" <<< "$metrics" && pass || fail "/metrics lacks the line: $line"
done

shots=$(find "$ARTIFACTS_DIR" -name '*.png' -size +1k | wc -l)
((shots >= 6)) && pass || fail "expected at least 6 screenshots in $ARTIFACTS_DIR, found $shots"
echo "screenshots: $ARTIFACTS_DIR"
finish
