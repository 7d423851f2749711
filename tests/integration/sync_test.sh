#!/usr/bin/env bash
# Pull-through from a real origin (CONTRACT.md "[origin]", "What phones get"): nginx on loopback
# serves the files, the relay fetches a miss once however many phones ask (single flight) and
# streams it to all of them, revalidates stale copies, remembers 404s, serves the last good copy
# while the origin is down and resumes a body cut mid-way with Range + If-Range. Every case checks
# the bytes (sha256), the status codes and what the origin's access log says it was asked.
# Needs /usr/sbin/nginx (or $NGINX). About 30 s. KEEP_WORK=1 keeps the scratch directory.
source "$(dirname "$0")/lib.sh"
SITERELAY=$(realpath "$SITERELAY")  # a relative path works from the scratch directory too
cd "$WORK" || exit 1

NGINX=${NGINX:-/usr/sbin/nginx}
if [[ ! -x $NGINX ]]; then
  echo "FAIL: $NGINX not found (apt-get install nginx-light); this test needs a real origin" >&2
  exit 1
fi

NGINX_PID=
RELAY_PID=
NGINX_DIR=$WORK/nginx
ORIGIN=$WORK/origin
mkdir -p "$NGINX_DIR/tmp" "$ORIGIN"

# kill_nginx_hard: SIGKILL to the master and its workers at once (the master first, so it cannot
# start new workers), as a crashed or power-cut origin.
kill_nginx_hard() {
  [[ -n $NGINX_PID ]] || return 0
  local workers
  workers=$(pgrep -P "$NGINX_PID" || true)
  # shellcheck disable=SC2086  # one pid a word
  kill -9 "$NGINX_PID" $workers 2>/dev/null
  wait "$NGINX_PID" 2>/dev/null
  NGINX_PID=
}

# stop_nginx: graceful stop (QUIT), bounded; SIGKILL past 10 s.
stop_nginx() {
  [[ -n $NGINX_PID ]] || return 0
  kill -QUIT "$NGINX_PID" 2>/dev/null
  for _ in $(seq 1 100); do
    kill -0 "$NGINX_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$NGINX_PID" 2>/dev/null; then
    kill_nginx_hard
  else
    wait "$NGINX_PID" 2>/dev/null
    NGINX_PID=
  fi
}

# stop_relay_bounded: lib.sh's stop_relay with a bound: SIGTERM, 15 s to exit (the contract
# gives it 10 s), then SIGKILL and a failure. Sets STOP_RC.
stop_relay_bounded() {
  [[ -n $RELAY_PID ]] || return 0
  kill -TERM "$RELAY_PID" 2>/dev/null
  for _ in $(seq 1 150); do kill -0 "$RELAY_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$RELAY_PID" 2>/dev/null; then
    fail "the relay did not exit within 15 s of SIGTERM"
    kill -9 "$RELAY_PID" 2>/dev/null
  fi
  STOP_RC=0
  wait "$RELAY_PID" || STOP_RC=$?
  RELAY_PID=
}

cleanup() {
  stop_relay_bounded 2>/dev/null
  kill_nginx_hard
  local job
  for job in $(jobs -p); do kill -9 "$job" 2>/dev/null; done
  wait 2>/dev/null
  if [[ -n ${KEEP_WORK:-} ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM  # ctest's timeout: still stop nginx and the relay

# write_nginx_conf PORT: one worker, the origin tree as root; the two images rate-limited so a
# transfer lasts long enough for concurrent clients and a cut. The access log has the request
# line, the status and the headers a pull-through relay sends.
write_nginx_conf() {
  {
    (($(id -u) == 0)) && echo "user root root;"  # the workers must read the private $WORK
    cat <<EOF
worker_processes 1;
daemon off;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 1024; }
http {
  default_type application/octet-stream;
  log_format origin '"\$request" \$status range="\$http_range" if_range="\$http_if_range" '
                    'inm="\$http_if_none_match" ims="\$http_if_modified_since" '
                    'bytes=\$body_bytes_sent';
  access_log $NGINX_DIR/access.log origin;
  sendfile on;
  client_body_temp_path $NGINX_DIR/tmp/body;
  proxy_temp_path $NGINX_DIR/tmp/proxy;
  fastcgi_temp_path $NGINX_DIR/tmp/fastcgi;
  uwsgi_temp_path $NGINX_DIR/tmp/uwsgi;
  scgi_temp_path $NGINX_DIR/tmp/scgi;
  server {
    listen 127.0.0.1:$1;
    root $ORIGIN;
    location = /big.sip.ld { limit_rate 50m; }
    location = /resume.sip.ld { limit_rate 4m; }
    location = /late.sip.ld { limit_rate 4m; }
  }
}
EOF
  } > "$NGINX_DIR/nginx.conf"
}

# launch_nginx PORT: starts nginx in the background and waits (5 s at most) until it answers.
# Returns 1 when it did not start (e.g. the port is taken).
launch_nginx() {
  write_nginx_conf "$1"
  : > "$NGINX_DIR/error.log"
  "$NGINX" -e "$NGINX_DIR/error.log" -c "$NGINX_DIR/nginx.conf" -p "$NGINX_DIR/" \
    > "$NGINX_DIR/stdout.log" 2>&1 &
  NGINX_PID=$!
  local code
  for _ in $(seq 1 100); do
    kill -0 "$NGINX_PID" 2>/dev/null || break
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$1/ping")
    [[ $code == 404 ]] && return 0
    sleep 0.05
  done
  kill_nginx_hard
  return 1
}

# start_nginx: on a free port (a few tries), sets NGINX_PORT. The readiness probe's 404 for
# /ping is the only line in access.log before the cases run; each case counts its own paths.
start_nginx() {
  for _ in $(seq 1 10); do
    NGINX_PORT=$(shuf -i 20000-60000 -n 1)
    ss -Htln "sport = :$NGINX_PORT" | grep -q . && continue
    launch_nginx "$NGINX_PORT" && return 0
  done
  echo "nginx did not start:" >&2
  cat "$NGINX_DIR/stdout.log" "$NGINX_DIR/error.log" >&2
  exit 1
}

# origin_log PATH: the origin's access-log lines for one path.
origin_log() { grep -F "\"GET /$1 HTTP/" "$NGINX_DIR/access.log"; }
origin_gets() { origin_log "$1" | wc -l; }
# sha256 of stdin / of a file (openssl's SHA-NI code: 100 clients hash 10 GB in case 1).
digest() { openssl dgst -sha256 -r | cut -c1-64; }
sha() { digest < "$1"; }

# nginx_etag FILE / nginx_last_modified FILE: the validators nginx sends for a file of the origin
# (ETag: "<hex mtime>-<hex size>", printed without the quotes).
nginx_etag() { printf '%x-%x' "$(stat -c %Y "$ORIGIN/$1")" "$(stat -c %s "$ORIGIN/$1")"; }
nginx_last_modified() {
  TZ=UTC LC_ALL=C date -d "@$(stat -c %Y "$ORIGIN/$1")" '+%a, %d %b %Y %H:%M:%S GMT'
}

# relay_config FRESH_FOR: the relay pulling through from nginx.
relay_config() {
  write_config relay.toml "[origin]
url = \"http://127.0.0.1:$NGINX_PORT/\"
fresh_for = $1"
}

head -c 100000000 /dev/urandom > "$ORIGIN/big.sip.ld"
head -c 40000000 /dev/urandom > "$ORIGIN/resume.sip.ld"
head -c 20000000 /dev/urandom > "$ORIGIN/late.sip.ld"
printf '<PHONE_CONFIG><ALL voIpProt.server.1.address="pbx.example.com"/></PHONE_CONFIG>\n' \
  > "$ORIGIN/site.cfg"
big_sha=$(sha "$ORIGIN/big.sip.ld")
resume_sha=$(sha "$ORIGIN/resume.sip.ld")
late_sha=$(sha "$ORIGIN/late.sip.ld")
site_sha=$(sha "$ORIGIN/site.cfg")

start_nginx
relay_config 60
start_relay relay.toml
base="http://127.0.0.1:$HTTP_PORT"

# ---- 1. Single flight: 100 phones ask for a cold 100 MB image at once ------------------------
# The origin sends it at 50 MB/s (about 2 s); every client gets all of it, the origin is asked
# once.
mkdir c1
t0=$(date +%s.%N)
clients=()
for i in $(seq 1 100); do
  curl -sS --max-time 60 -D "c1/$i.hdr" -w '%{stderr}ttfb %{time_starttransfer}\n' \
    "$base/big.sip.ld" 2> "c1/$i.err" | digest > "c1/$i.sha" &
  clients+=($!)
done
wait "${clients[@]}"
t1=$(date +%s.%N)
codes=$(awk 'FNR == 1 {print $2}' c1/*.hdr | sort | uniq -c | awk '{print $1 "x" $2}' | tr '\n' ' ')
expect_eq "100 concurrent clients: status" "100x200 " "$codes"
expect_eq "100 concurrent clients: bytes" "100x$big_sha " \
  "$(cat c1/*.sha | sort | uniq -c | awk '{print $1 "x" $2}' | tr '\n' ' ')"
expect_eq "100 concurrent clients: origin asked once" 1 "$(origin_gets big.sip.ld)"
expect_contains "the one origin request" \
  '"GET /big.sip.ld HTTP/1.1" 200 range="-" if_range="-" inm="-" ims="-" bytes=100000000' \
  "$(origin_log big.sip.ld)"
# Streamed while it arrives: the first bytes reached a client well before the origin finished
# (the origin needs 2 s at its rate).
first_byte=$(sed -n 's/^ttfb //p' c1/*.err | sort -g | head -n 1)
awk -v f="$first_byte" 'BEGIN {exit !(f < 1.0)}' && pass ||
  fail "no client got its first byte within 1 s (earliest ${first_byte}s): not streamed"
awk -v a="$t0" -v b="$t1" 'BEGIN {exit !(b - a >= 1.5)}' && pass ||
  fail "100 MB at 50 MB/s took less than 1.5 s: the origin's rate limit did not apply"
# Later: from the cache (ETag is the sha256 of a published object), the origin not asked again.
# HEAD waits for the transfer to be published; the GET after it must come from the cache.
curl -s -o /dev/null --max-time 30 -I "$base/big.sip.ld"
curl -s --max-time 30 -D c1/later.hdr -o c1/later.body "$base/big.sip.ld"
later=$(tr -d '\r' < c1/later.hdr)
expect_contains "later request: status" "HTTP/1.1 200" "$later"
expect_contains "later request: ETag is the sha256" "ETag: \"$big_sha\"" "$later"
expect_eq "later request: bytes" "$big_sha" "$(sha c1/later.body)"
expect_eq "later request: origin still asked once" 1 "$(origin_gets big.sip.ld)"
rm -f c1/later.body

# ---- 2. Negative caching: a missing <mac>.cfg (negative_for defaults to 30 s) ------------------
expect_eq "missing <mac>.cfg: first" 404 \
  "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' "$base/0004f2aabbcc.cfg")"
expect_eq "missing <mac>.cfg: second" 404 \
  "$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' "$base/0004f2aabbcc.cfg")"
expect_eq "missing <mac>.cfg: origin asked once" 1 "$(origin_gets 0004f2aabbcc.cfg)"
expect_contains "missing <mac>.cfg: origin said 404" '"GET /0004f2aabbcc.cfg HTTP/1.1" 404' \
  "$(origin_log 0004f2aabbcc.cfg)"

stop_relay_bounded
expect_eq "SIGTERM exit code" 0 "$STOP_RC"

# ---- 3. Revalidation with fresh_for = 1 --------------------------------------------------------
relay_config 1
start_relay relay.toml
base="http://127.0.0.1:$HTTP_PORT"
get() {  # get PATH OUTFILE -> status
  curl -s --max-time 30 -o "$2" -w '%{http_code}' "$base/$1"
}
expect_eq "site.cfg: first" 200 "$(get site.cfg got1)"
expect_eq "site.cfg: first bytes" "$site_sha" "$(sha got1)"
sleep 2
expect_eq "site.cfg: stale" 200 "$(get site.cfg got2)"
expect_eq "site.cfg: stale bytes" "$site_sha" "$(sha got2)"
expect_eq "site.cfg: origin asked twice" 2 "$(origin_gets site.cfg)"
expect_contains "site.cfg: first request unconditional" 'if_range="-" inm="-" ims="-"' \
  "$(origin_log site.cfg | sed -n 1p)"
reval=$(origin_log site.cfg | sed -n 2p)
expect_contains "site.cfg: revalidation answered 304" '"GET /site.cfg HTTP/1.1" 304' "$reval"
# If-None-Match with nginx's ETag or If-Modified-Since with its Last-Modified (nginx logs '"' as
# \x22).
[[ $reval == *"inm=\"\\x22$(nginx_etag site.cfg)\\x22\""* ||
   $reval == *"ims=\"$(nginx_last_modified site.cfg)\""* ]] && pass ||
  fail "site.cfg: revalidation without the origin's validators ($(nginx_etag site.cfg)," \
    "$(nginx_last_modified site.cfg)): [$reval]"
# A new version on the origin (another size, so another nginx ETag as well as mtime).
printf '<PHONE_CONFIG><ALL voIpProt.server.1.address="pbx2.example.com" %s/></PHONE_CONFIG>\n' \
  'tcpIpApp.sntp.address="ntp.example.com"' > "$ORIGIN/site.cfg"
site2_sha=$(sha "$ORIGIN/site.cfg")
sleep 2
expect_eq "site.cfg: changed" 200 "$(get site.cfg got3)"
expect_eq "site.cfg: new bytes" "$site2_sha" "$(sha got3)"
expect_eq "site.cfg: origin asked three times" 3 "$(origin_gets site.cfg)"
reval=$(origin_log site.cfg | sed -n 3p)
expect_contains "site.cfg: changed file answered 200" '"GET /site.cfg HTTP/1.1" 200' "$reval"
[[ $reval != *'inm="-" ims="-"'* ]] && pass ||
  fail "site.cfg: third request not conditional: [$reval]"
expect_eq "site.cfg: new version from the cache" "$site2_sha" \
  "$(curl -s --max-time 10 "$base/site.cfg" | digest)"

# ---- 4. Origin down: the last good copy; nothing for what was never cached --------------------
stop_nginx
sleep 2  # past fresh_for
expect_eq "origin down: stale site.cfg" 200 "$(get site.cfg got4)"
expect_eq "origin down: site.cfg bytes" "$site2_sha" "$(sha got4)"
expect_eq "origin down: big image" 200 "$(get big.sip.ld got4.ld)"
expect_eq "origin down: big image bytes" "$big_sha" "$(sha got4.ld)"
rm -f got4.ld
expect_contains "origin down: the relay says it served the last good copy" \
  "last good copy of site.cfg" "$(grep 'last good copy' serve.log)"
code=$(curl -s -o /dev/null --max-time 30 -w '%{http_code}' "$base/never-cached.cfg")
[[ $code == 5[0-9][0-9] ]] && pass || fail "origin down: never-cached path: expected 5xx, got $code"

# ---- 5. Resume: the origin dies mid-body and comes back ----------------------------------------
# 40 MB at 4 MB/s; after ~2 s nginx is killed hard and a new one starts on the same port with the
# same file (same mtime and size, so the same ETag). The relay asks for the rest with Range +
# If-Range; the client, which was streamed the beginning, gets the whole file.
mv "$NGINX_DIR/access.log" "$NGINX_DIR/access-before.log"
launch_nginx "$NGINX_PORT" || { cat "$NGINX_DIR/error.log" >&2; fail "nginx did not restart"; }
curl -s --max-time 60 -D c5.hdr -o c5.body "$base/resume.sip.ld" &
client=$!
# Cut once the client has been streamed a good part (about 2 s at the origin's rate).
for _ in $(seq 1 100); do
  (($(stat -c %s c5.body 2>/dev/null || echo 0) >= 8000000)) && break
  sleep 0.1
done
# (The killed nginx never logs the cut request: nginx writes a line when a request ends.)
kill_nginx_hard
launch_nginx "$NGINX_PORT" || { cat "$NGINX_DIR/error.log" >&2; fail "nginx did not restart"; }
wait "$client"
expect_eq "resume: client status" 200 "$(head -n 1 c5.hdr | cut -d' ' -f2)"
expect_eq "resume: client bytes" "$resume_sha" "$(sha c5.body)"
resumed=$(origin_log resume.sip.ld | head -n 1)
re='"GET /resume.sip.ld HTTP/1.1" 206 range="bytes=([0-9]+)-" if_range="([^"]+)"'
if [[ $resumed =~ $re ]] &&
   ((BASH_REMATCH[1] > 0)) &&
   [[ ${BASH_REMATCH[2]} == "\x22$(nginx_etag resume.sip.ld)\x22" ||
      ${BASH_REMATCH[2]} == "$(nginx_last_modified resume.sip.ld)" ]]; then
  pass
  offset=${BASH_REMATCH[1]}
  # The 206 carried exactly the rest.
  expect_contains "resume: the rest sent" "bytes=$((40000000 - offset))" "$resumed"
else
  fail "resume: no 'Range: bytes=N-' request with If-Range $(nginx_etag resume.sip.ld) answered" \
    "206 by the new origin: [$resumed]"
fi
expect_eq "resume: the new origin asked once" 1 "$(origin_gets resume.sip.ld)"
expect_eq "resume: a later request" "$resume_sha" \
  "$(curl -s --max-time 30 "$base/resume.sip.ld" | digest)"

# The same, but the origin is back only after the first resume attempt has found it down. The
# attempts come 0.5 s, 1 s and 2 s apart (each jittered down to half): the first at most 0.5 s
# after the cut, the third at least 1.75 s after it. nginx is back at about 1 s, so the first
# attempt is refused and the second or the third must get the rest.
curl -s --max-time 60 -D c5b.hdr -o c5b.body "$base/late.sip.ld" &
client=$!
for _ in $(seq 1 100); do
  (($(stat -c %s c5b.body 2>/dev/null || echo 0) >= 4000000)) && break
  sleep 0.1
done
kill_nginx_hard
sleep 0.9
launch_nginx "$NGINX_PORT" || { cat "$NGINX_DIR/error.log" >&2; fail "nginx did not restart"; }
wait "$client"
expect_eq "late origin: client status" 200 "$(head -n 1 c5b.hdr | cut -d' ' -f2)"
expect_eq "late origin: client bytes" "$late_sha" "$(sha c5b.body)"
expect_eq "late origin: the rest asked with Range + If-Range, answered 206" \
  "206 if_range=\"\\x22$(nginx_etag late.sip.ld)\\x22\"" \
  "$(origin_log late.sip.ld |
    sed -n 's/^"[^"]*" \(206\) range="bytes=[1-9][0-9]*-" \(if_range="[^"]*"\).*/\1 \2/p')"

stop_relay_bounded
expect_eq "SIGTERM exit code" 0 "$STOP_RC"
stop_nginx
finish
