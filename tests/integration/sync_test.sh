#!/usr/bin/env bash
# Pull-through from a real origin (CONTRACT.md "[origin]", "What phones get"): nginx on loopback
# serves the files, the relay fetches a miss once however many phones ask (single flight) and
# streams it to all of them, revalidates stale copies, remembers 404s, serves the last good copy
# while the origin is down and resumes a body cut mid-way with Range + If-Range; it speaks HTTP/2
# to an https origin trusted through ca_file (and refuses it without), sends [origin]'s Basic auth
# (and keeps the password out of its log), and sends each [[origin.route]] path to its own origin
# with that route's credentials. Every case checks the bytes (sha256), the status codes and what
# the origin's access log says it was asked.
# Needs /usr/sbin/nginx (or $NGINX) and openssl. About 35 s. KEEP_WORK=1 keeps the scratch
# directory.
source "$(dirname "$0")/lib.sh"
NGINX_DIR=$WORK/nginx
ORIGIN=$WORK/origin
source "$(dirname "$0")/nginx.sh"
SITERELAY=$(realpath "$SITERELAY")  # a relative path works from the scratch directory too
cd "$WORK" || exit 1

# The three images rate-limited so a transfer lasts long enough for concurrent clients and a cut.
NGINX_LOCATIONS=(
  "location = /big.sip.ld { limit_rate 50m; }"
  "location = /resume.sip.ld { limit_rate 4m; }"
  "location = /late.sip.ld { limit_rate 4m; }"
  "location ~ -(phone|web|local)\\.cfg\$ { dav_methods PUT; create_full_put_path on; }"
)

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
expect_eq "origin down: never-cached path gets Bad Gateway" 502 "$code"

# ---- 5. Resume: the origin dies mid-body and comes back ----------------------------------------
# 40 MB at 4 MB/s; after ~2 s nginx is killed hard and a new one starts on the same port with the
# same file (same mtime and size, so the same ETag). The relay asks for the rest with Range +
# If-Range; the client, which was streamed the beginning, gets the whole file.
# cut_mid_body PATH OUT BYTES AWAY: a client streams PATH from the relay into OUT.body (headers in
# OUT.hdr); once it has BYTES, nginx is killed hard and, AWAY seconds later, started again on the
# same port. Returns when the client is done. (The killed nginx never logs the cut request: nginx
# writes a line when a request ends.)
cut_mid_body() {
  curl -s --max-time 60 -D "$2.hdr" -o "$2.body" "$base/$1" &
  local client=$!
  for _ in $(seq 1 100); do
    (($(stat -c %s "$2.body" 2>/dev/null || echo 0) >= $3)) && break
    sleep 0.1
  done
  kill_nginx_hard
  sleep "$4"
  launch_nginx "$NGINX_PORT" || { cat "$NGINX_DIR/error.log" >&2; fail "nginx did not restart"; }
  wait "$client"
}

mv "$NGINX_DIR/access.log" "$NGINX_DIR/access-before.log"
launch_nginx "$NGINX_PORT" || { cat "$NGINX_DIR/error.log" >&2; fail "nginx did not restart"; }
# Cut once the client has been streamed a good part (about 2 s at the origin's rate).
cut_mid_body resume.sip.ld c5 8000000 0
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
cut_mid_body late.sip.ld c5b 4000000 0.9
expect_eq "late origin: client status" 200 "$(head -n 1 c5b.hdr | cut -d' ' -f2)"
expect_eq "late origin: client bytes" "$late_sha" "$(sha c5b.body)"
expect_eq "late origin: the rest asked with Range + If-Range, answered 206" \
  "206 if_range=\"\\x22$(nginx_etag late.sip.ld)\\x22\"" \
  "$(origin_log late.sip.ld |
    sed -n 's/^"[^"]*" \(206\) range="bytes=[1-9][0-9]*-" \(if_range="[^"]*"\).*/\1 \2/p')"

stop_relay_bounded
expect_eq "SIGTERM exit code" 0 "$STOP_RC"

# ---- 6-8. Setup: an https origin, one with Basic auth, two for routes -------------------------
# One nginx, more servers: TLS + HTTP/2 with a throwaway CA (6), auth_basic (7), and two plain
# origins for [[origin.route]] (8), each with its own access log. Every relay below has its own
# config and a fresh data dir in $WORK/<name>, so no case is answered from another's cache.

# start_relay_in NAME TOML: a relay with $WORK/NAME/relay.toml and its data in $WORK/NAME/data
# (lib.sh's write_config puts data_dir under $WORK). Its log is serve.log as before. Sets base.
start_relay_in() {
  RELAY_DIR=$WORK/$1
  mkdir -p "$RELAY_DIR"
  WORK=$RELAY_DIR write_config "$RELAY_DIR/relay.toml" "$2"
  start_relay "$RELAY_DIR/relay.toml"
  base="http://127.0.0.1:$HTTP_PORT"
}
# stop_relay_in WHAT: stops it, checks its exit code and keeps its log next to its config.
stop_relay_in() {
  stop_relay_bounded
  expect_eq "$1: SIGTERM exit code" 0 "$STOP_RC"
  cp serve.log "$RELAY_DIR/serve.log"
}
status_of() { curl -s -o /dev/null --max-time 30 -w '%{http_code}' "$base/$1"; }

# A CA and a certificate for 127.0.0.1 signed by it (P-256: quick to make).
PKI=$WORK/pki
mkdir -p "$PKI"
if ! {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=siterelay test CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$PKI/ca.key" -out "$PKI/ca.pem" &&
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=127.0.0.1" -keyout "$PKI/origin.key" -out "$PKI/origin.csr" &&
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$PKI/ext.cnf" &&
  openssl x509 -req -in "$PKI/origin.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" \
    -CAcreateserial -days 2 -extfile "$PKI/ext.cnf" -out "$PKI/origin.pem"
} > "$PKI/openssl.log" 2>&1; then
  cat "$PKI/openssl.log" >&2
  fail "could not make the test CA and certificate"
fi

# Basic auth at the origin: a password with ':' and '@' (both legal in Basic auth), and a wrong
# one sharing nothing with it, so a grep for either finds only that one.
AUTH_USER=phoneprov
AUTH_PW="Pr0v:s3cret@$RANDOM-origin"
WRONG_PW="Wr0ng@pass:$RANDOM-guess"
FW_USER=fwuser
FW_PW="Fw-R0ute:$RANDOM@cdn"
printf '%s:%s\n' "$AUTH_USER" "$(openssl passwd -apr1 "$AUTH_PW")" > "$NGINX_DIR/htpasswd"
printf '%s:%s\n' "$FW_USER" "$(openssl passwd -apr1 "$FW_PW")" > "$NGINX_DIR/htpasswd-fw"

# Route origins: A ([origin]) and B (the "*.ld" route, under /ucs/) each hold both paths with
# different bytes, so a path fetched from the wrong origin also shows in the bytes.
mkdir -p "$WORK/origin-a/fw" "$WORK/origin-b/ucs/fw"
head -c 3000000 /dev/urandom > "$ORIGIN/tls.sip.ld"
printf '<PHONE_CONFIG><ALL device.set="1" auth="origin"/></PHONE_CONFIG>\n' > "$ORIGIN/auth.cfg"
printf '<PHONE_CONFIG><ALL from="origin A"/></PHONE_CONFIG>\n' > "$WORK/origin-a/route.cfg"
printf '<PHONE_CONFIG><ALL from="origin B"/></PHONE_CONFIG>\n' > "$WORK/origin-b/ucs/route.cfg"
head -c 500000 /dev/urandom > "$WORK/origin-a/fw/x.ld"
head -c 700000 /dev/urandom > "$WORK/origin-b/ucs/fw/x.ld"
tls_sha=$(sha "$ORIGIN/tls.sip.ld")
auth_sha=$(sha "$ORIGIN/auth.cfg")
route_cfg_sha=$(sha "$WORK/origin-a/route.cfg")
route_ld_sha=$(sha "$WORK/origin-b/ucs/fw/x.ld")

stop_nginx
for try in $(seq 1 10); do
  TLS_PORT=$(pick_port) AUTH_PORT=$(pick_port) A_PORT=$(pick_port) B_PORT=$(pick_port)
  (($(printf '%s\n' "$NGINX_PORT" "$TLS_PORT" "$AUTH_PORT" "$A_PORT" "$B_PORT" |
     sort -u | wc -l) == 5)) &&
  launch_nginx "$NGINX_PORT" \
    "$(nginx_server "$TLS_PORT" "$ORIGIN" tls.log "ssl http2" \
         "ssl_certificate $PKI/origin.pem;" "ssl_certificate_key $PKI/origin.key;")" \
    "$(nginx_server "$AUTH_PORT" "$ORIGIN" auth.log "" \
         'auth_basic "origin";' "auth_basic_user_file $NGINX_DIR/htpasswd;")" \
    "$(nginx_server "$A_PORT" "$WORK/origin-a" origin-a.log)" \
    "$(nginx_server "$B_PORT" "$WORK/origin-b" origin-b.log "" \
         'auth_basic "fw";' "auth_basic_user_file $NGINX_DIR/htpasswd-fw;")" && break
  ((try == 10)) && { cat "$NGINX_DIR/stdout.log" "$NGINX_DIR/error.log" >&2; exit 1; }
done

# ---- 6. https origin: HTTP/2, trusted through ca_file ------------------------------------------
start_relay_in tls "[origin]
url = \"https://127.0.0.1:$TLS_PORT/\"
ca_file = \"$PKI/ca.pem\""
expect_eq "https origin: status" 200 "$(get tls.sip.ld got6)"
expect_eq "https origin: bytes" "$tls_sha" "$(sha got6)"
# The request reached nginx over HTTP/2 (ALPN h2), once.
expect_eq "https origin: asked once, over HTTP/2" \
  "\"GET /tls.sip.ld HTTP/2.0\" 200 proto=HTTP/2.0 bytes=3000000" \
  "$(sed -E 's/^("[^"]*" [0-9]+) .*bytes=([0-9]+) proto=([^ ]+).*/\1 proto=\3 bytes=\2/' \
     "$NGINX_DIR/tls.log")"
stop_relay_in "https origin"

# Without ca_file the certificate is not trusted: the phone gets a 502, nothing reaches nginx as
# a request (the handshake fails first), and the relay says why.
start_relay_in tls-untrusted "[origin]
url = \"https://127.0.0.1:$TLS_PORT/\""
code=$(status_of tls.sip.ld)
expect_eq "https origin without ca_file: Bad Gateway (certificate not trusted)" 502 "$code"
expect_eq "https origin without ca_file: no request got through" 1 "$(origin_gets tls.sip.ld tls.log)"
expect_contains "https origin without ca_file: the relay logs the certificate problem" \
  "certificate" "$(grep -i 'tls.sip.ld' serve.log)"
stop_relay_in "https origin without ca_file"

# ---- 7. Basic auth at the origin -----------------------------------------------------------------
# Preemptive Basic: one request, answered 200, with the configured user.
start_relay_in auth "[origin]
url = \"http://127.0.0.1:$AUTH_PORT/\"
user = \"$AUTH_USER\"
password = \"$AUTH_PW\""
expect_eq "origin auth: status" 200 "$(get auth.cfg got7)"
expect_eq "origin auth: bytes" "$auth_sha" "$(sha got7)"
expect_eq "origin auth: one request, 200, as $AUTH_USER" \
  "\"GET /auth.cfg HTTP/1.1\" 200 user=\"$AUTH_USER\"" \
  "$(sed -E 's/^("[^"]*" [0-9]+) .*(user="[^"]*")$/\1 \2/' "$NGINX_DIR/auth.log")"
stop_relay_in "origin auth"

# A wrong password: the origin says 401, the phone gets a 5xx (not the 401: the phone's own
# credentials are not the problem), and neither password shows in the relay's log, plain or as
# the Basic-auth token.
: > "$NGINX_DIR/auth.log"
start_relay_in auth-wrong "[origin]
url = \"http://127.0.0.1:$AUTH_PORT/\"
user = \"$AUTH_USER\"
password = \"$WRONG_PW\""
code=$(status_of auth.cfg)
expect_eq "origin auth, wrong password: Bad Gateway" 502 "$code"
expect_contains "origin auth, wrong password: the origin refused $AUTH_USER" \
  "\"GET /auth.cfg HTTP/1.1\" 401 " "$(origin_log auth.cfg auth.log | grep -F "user=\"$AUTH_USER\"")"
stop_relay_in "origin auth, wrong password"
grep -q 'auth.cfg' serve.log && pass ||
  fail "origin auth, wrong password: the relay logged nothing about auth.cfg (is the grep below blind?)"
for secret in "$WRONG_PW" "$(printf '%s' "$AUTH_USER:$WRONG_PW" | base64 -w0)" \
              "$AUTH_PW" "$(printf '%s' "$AUTH_USER:$AUTH_PW" | base64 -w0)"; do
  leaked=$(grep -F -- "$secret" serve.log)
  [[ -z $leaked ]] && pass || fail "origin auth: a password is in the relay's log: [$leaked]"
done

# ---- 8. Routes: "*.ld" from origin B (its own credentials), the rest from origin A ------------
# The second route also matches fw/x.ld but comes later: the first match wins. A does not ask for
# auth but logs the user it was sent: [origin]'s, never the route's.
start_relay_in routes "[origin]
url = \"http://127.0.0.1:$A_PORT/\"
user = \"cfguser\"
password = \"cfg-pass\"
[[origin.route]]
match = \"*.ld\"
url = \"http://127.0.0.1:$B_PORT/ucs/\"
user = \"$FW_USER\"
password = \"$FW_PW\"
[[origin.route]]
match = \"fw/*\"
url = \"http://127.0.0.1:$A_PORT/\""
expect_eq "routes: route.cfg status" 200 "$(get route.cfg got8.cfg)"
expect_eq "routes: route.cfg from origin A" "$route_cfg_sha" "$(sha got8.cfg)"
expect_eq "routes: fw/x.ld status" 200 "$(get fw/x.ld got8.ld)"
expect_eq "routes: fw/x.ld from origin B" "$route_ld_sha" "$(sha got8.ld)"
expect_eq "routes: origin A asked for route.cfg only, with [origin]'s user" \
  '"GET /route.cfg HTTP/1.1" 200 user="cfguser"' \
  "$(sed -E 's/^("[^"]*" [0-9]+) .*(user="[^"]*")$/\1 \2/' "$NGINX_DIR/origin-a.log")"
expect_eq "routes: origin B asked for ucs/fw/x.ld only, with the route's user" \
  "\"GET /ucs/fw/x.ld HTTP/1.1\" 200 user=\"$FW_USER\"" \
  "$(sed -E 's/^("[^"]*" [0-9]+) .*(user="[^"]*")$/\1 \2/' "$NGINX_DIR/origin-b.log")"
stop_relay_in "routes"

# ---- 9. Manifest: `siterelay sync` publishes a verified set, or nothing ------------------------
# bad.json states a wrong digest for m/sip.ld: the pass fails (exit 1) after its retries and
# publishes nothing, not even the file that was right. good.json: exit 0, both files cached as
# the manifest's (pinned), then served by a relay whose origin is gone.
mkdir -p "$ORIGIN/m"
printf '<APPLICATION APP_FILE_PATH="m/sip.ld"/>\n' > "$ORIGIN/m/000000000000.cfg"
head -c 2000000 /dev/urandom > "$ORIGIN/m/sip.ld"
m_cfg_sha=$(sha "$ORIGIN/m/000000000000.cfg")
m_ld_sha=$(sha "$ORIGIN/m/sip.ld")
manifest() {  # manifest SHA_OF_SIP_LD
  printf '{"files": [{"path": "m/000000000000.cfg", "size": %d, "sha256": "%s"},
                     {"path": "m/sip.ld", "size": %d, "sha256": "%s"}]}\n' \
    "$(stat -c %s "$ORIGIN/m/000000000000.cfg")" "$m_cfg_sha" \
    "$(stat -c %s "$ORIGIN/m/sip.ld")" "$1"
}
manifest "$(printf '%064d' 0)" > "$ORIGIN/bad.json"
manifest "$m_ld_sha" > "$ORIGIN/good.json"
MANIFEST_DIR=$WORK/manifest
mkdir -p "$MANIFEST_DIR"
for which in bad good; do
  WORK=$MANIFEST_DIR write_config "$MANIFEST_DIR/$which.toml" "[origin]
url = \"http://127.0.0.1:$NGINX_PORT/\"
manifest = \"$which.json\"
sync_interval = 0"
done
rc=0
timeout 60 "$SITERELAY" sync --config "$MANIFEST_DIR/bad.toml" > sync-bad.out 2> sync-bad.err || rc=$?
expect_eq "manifest with a wrong digest: sync exit code" 1 "$rc"
expect_contains "manifest with a wrong digest: sync names the file" "m/sip.ld" "$(cat sync-bad.err)"
listing=$("$SITERELAY" cache ls --config "$MANIFEST_DIR/bad.toml" 2>&1)
expect_eq "manifest with a wrong digest: nothing of the set published" "" \
  "$(grep '^m/' <<< "$listing")"
rc=0
timeout 60 "$SITERELAY" sync --config "$MANIFEST_DIR/good.toml" > sync-good.out 2> sync-good.err ||
  rc=$?
expect_eq "good manifest: sync exit code" 0 "$rc"
listing=$("$SITERELAY" cache ls --config "$MANIFEST_DIR/good.toml" 2>&1)
expect_eq "good manifest: both files cached and pinned" \
  "m/000000000000.cfg $m_cfg_sha pinned
m/sip.ld $m_ld_sha pinned" "$(grep '^m/' <<< "$listing" | awk '{print $1, $3, $4}')"
ld_gets=$(origin_gets m/sip.ld)
start_relay "$MANIFEST_DIR/good.toml"
base="http://127.0.0.1:$HTTP_PORT"
expect_eq "good manifest: the relay serves the image" 200 "$(get m/sip.ld got9.ld)"
expect_eq "good manifest: the image's bytes" "$m_ld_sha" "$(sha got9.ld)"
expect_eq "good manifest: served without asking the origin" "$ld_gets" "$(origin_gets m/sip.ld)"
RELAY_DIR=$MANIFEST_DIR stop_relay_in "manifest"

# ---- 10. max_rate: 10 MB through a 2 MB/s cap ------------------------------------------------------
# The bucket starts with a fifth of a second saved (400 kB): (10 MB - 0.4 MB) / 2 MB/s = 4.8 s.
# CONTRACT: accurate within 10%.
head -c 10000000 /dev/urandom > "$ORIGIN/rate.sip.ld"
start_relay_in rate "[origin]
url = \"http://127.0.0.1:$NGINX_PORT/\"
max_rate = 2000000"
took=$(curl -s -o got10.ld --max-time 30 -w '%{time_total}' "$base/rate.sip.ld")
expect_eq "max_rate: bytes" "$(sha "$ORIGIN/rate.sip.ld")" "$(sha got10.ld)"
if awk -v t="$took" 'BEGIN { exit !(t >= 4.8 * 0.9 && t <= 4.8 * 1.1) }'; then
  pass
else
  fail "max_rate: 10 MB at 2 MB/s took ${took} s, expected 4.8 s +- 10%"
fi
stop_relay_in "max_rate"

# ---- 11. the settings outbox: a phone's settings go back to the origin with PUT ---------------
start_relay_in outbox "[origin]
url = \"http://127.0.0.1:$NGINX_PORT/\""
# wait_origin_has FILE SHA: up to 20 s for the origin to hold FILE with those bytes.
wait_origin_has() {
  for _ in $(seq 1 200); do
    [[ -f "$ORIGIN/$1" && $(sha "$ORIGIN/$1") == "$2" ]] && return 0
    sleep 0.1
  done
  return 1
}
printf '<PHONE_CONFIG v="1"/>\n' > phone1.cfg
expect_eq "outbox: upload of settings" 201 \
  "$(curl -s -o /dev/null -w '%{http_code}' -T phone1.cfg "$base/0004f2aabbcc-phone.cfg")"
wait_origin_has 0004f2aabbcc-phone.cfg "$(sha phone1.cfg)" && pass ||
  fail "outbox: the settings did not reach the origin"
expect_contains "outbox: the origin saw a PUT" '"PUT /0004f2aabbcc-phone.cfg HTTP/1.1" 201' \
  "$(grep -F 'PUT /0004f2aabbcc-phone.cfg' "$NGINX_DIR/access.log")"
# The origin goes away; a newer version is uploaded, the relay is killed (-9) and restarted while
# the origin is still away; when it comes back, the newer version reaches it.
stop_nginx
printf '<PHONE_CONFIG v="2"/>\n' > phone2.cfg
expect_eq "outbox: upload while the origin is away" 204 \
  "$(curl -s -o /dev/null -w '%{http_code}' -T phone2.cfg "$base/0004f2aabbcc-phone.cfg")"
expect_eq "outbox: the relay serves the newer version meanwhile" "$(sha phone2.cfg)" \
  "$(curl -s --max-time 10 "$base/0004f2aabbcc-phone.cfg" | digest)"
sleep 1.5  # an attempt or two fails
kill -KILL "$RELAY_PID"
wait "$RELAY_PID" 2>/dev/null
start_relay "$RELAY_DIR/relay.toml"
base="http://127.0.0.1:$HTTP_PORT"
sleep 1
launch_nginx "$NGINX_PORT" || { fail "nginx did not come back on $NGINX_PORT"; }
wait_origin_has 0004f2aabbcc-phone.cfg "$(sha phone2.cfg)" && pass ||
  fail "outbox: the newer settings did not reach the origin after a kill -9 and a restart"
expect_eq "outbox: the relay still serves the newer version" "$(sha phone2.cfg)" \
  "$(curl -s --max-time 10 "$base/0004f2aabbcc-phone.cfg" | digest)"
stop_relay_in "outbox"

stop_nginx
finish
