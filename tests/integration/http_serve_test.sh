#!/usr/bin/env bash
# siterelay serve over HTTP, driven by curl as a phone would be (PHONES.md "One boot").
source "$(dirname "$0")/lib.sh"
cd "$WORK"

mkdir tree
printf '<APPLICATION APP_FILE_PATH="sip.ld"/>' > tree/000000000000.cfg
head -c 3000000 /dev/urandom > tree/3111-44500-001.sip.ld
printf 'site' > tree/site.cfg
printf '5.9.7\n' > tree/sip.ver
mkdir -p tree/tenant && printf 'tenant cfg' > tree/tenant/000000000000.cfg
write_config relay.toml
"$SITERELAY" import tree --config relay.toml >/dev/null 2>&1 || fail "import"
start_relay relay.toml
base="http://127.0.0.1:$HTTP_PORT"
UA='FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application'

# The boot sequence: master config falls back from <mac>.cfg, then firmware, then settings.
expect_eq "GET <mac>.cfg" 404 "$(curl -s -o /dev/null -w '%{http_code}' -A "$UA" "$base/0004f282e824.cfg")"
curl -s -A "$UA" -o got.cfg -w '%{http_code} %{content_type}' "$base/000000000000.cfg" > st
expect_eq "GET 000000000000.cfg" "200 application/xml" "$(cat st)"
cmp -s got.cfg tree/000000000000.cfg && pass || fail "master config bytes differ"
curl -s -A "$UA" -o got.ld -w '%{http_code} %{content_type}' "$base/3111-44500-001.sip.ld" > st
expect_eq "GET firmware" "200 application/octet-stream" "$(cat st)"
cmp -s got.ld tree/3111-44500-001.sip.ld && pass || fail "firmware bytes differ"
expect_eq "GET sip.ver type" "text/plain" \
  "$(curl -s -o /dev/null -w '%{content_type}' "$base/sip.ver")"
expect_eq "GET missing overrides" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' -A "$UA" "$base/0004f282e824-phone.cfg")"

# HEAD, ETag = sha256, Last-Modified, conditional requests.
sha=$(sha256sum tree/3111-44500-001.sip.ld | cut -d' ' -f1)
head_out=$(curl -sI "$base/3111-44500-001.sip.ld" | tr -d '\r')
expect_contains "HEAD status" "HTTP/1.1 200 OK" "$head_out"
expect_contains "HEAD length" "Content-Length: 3000000" "$head_out"
expect_contains "ETag is the sha256" "ETag: \"$sha\"" "$head_out"
lm=$(printf '%s\n' "$head_out" | sed -n 's/^Last-Modified: //p')
[[ -n "$lm" ]] && pass || fail "no Last-Modified"
expect_eq "If-None-Match" 304 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: \"$sha\"" "$base/3111-44500-001.sip.ld")"
expect_eq "If-None-Match other" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "nope"' "$base/3111-44500-001.sip.ld")"
expect_eq "If-Modified-Since" 304 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H "If-Modified-Since: $lm" "$base/3111-44500-001.sip.ld")"

# Range.
curl -s -r 1000-1999 -o part -w '%{http_code}' "$base/3111-44500-001.sip.ld" > st
expect_eq "Range status" 206 "$(cat st)"
cmp -s part <(dd if=tree/3111-44500-001.sip.ld bs=1 skip=1000 count=1000 status=none) && pass ||
  fail "range bytes differ"
expect_contains "Content-Range" "Content-Range: bytes 1000-1999/3000000" \
  "$(curl -s -r 1000-1999 -D - -o /dev/null "$base/3111-44500-001.sip.ld" | tr -d '\r')"
expect_eq "unsatisfiable range" 416 \
  "$(curl -s -o /dev/null -w '%{http_code}' -r 5000000- "$base/3111-44500-001.sip.ld")"

# A small file, answered from memory with its head, takes ranges and HEAD the same way.
expect_eq "small file range" "APPLI" "$(curl -s -r 1-5 "$base/000000000000.cfg")"
small_head=$(printf 'HEAD /000000000000.cfg HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n' |
  timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$HTTP_PORT; cat >&3; cat <&3" | tr -d '\r')
expect_contains "small file HEAD length" "Content-Length: 37" "$small_head"
[[ $small_head != *APPLICATION* ]] && pass || fail "HEAD of a small file sent its body"

# Traversal in every spelling is refused, never resolved.
for p in '/../etc/passwd' '/%2e%2e/%2e%2e/etc/passwd' '/tenant/..%2f..%2fetc' '/a%5c..%5cb' \
         '/%c0%ae%c0%ae/x' '/x%00.cfg'; do
  expect_eq "traversal $p" 403 "$(curl -s --path-as-is -o /dev/null -w '%{http_code}' "$base$p")"
done
expect_eq "DELETE" 405 "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$base/site.cfg")"

# Keep-alive: two requests, one connection.
curl -sv -o /dev/null -o /dev/null "$base/site.cfg" "$base/sip.ver" 2> verbose
expect_contains "keep-alive reuse" "Re-using existing connection" "$(cat verbose)"

# Pipelining: two requests in one write get two answers, in order.
exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
printf 'GET /site.cfg HTTP/1.1\r\nHost: r\r\n\r\nGET /sip.ver HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n' >&3
pipelined=$(timeout 5 cat <&3 | tr -d '\r')
exec 3<&-
expect_eq "pipelined responses" 2 "$(printf '%s\n' "$pipelined" | grep -o 'HTTP/1.1 200 OK' | wc -l)"
expect_contains "pipelined order" 'siteHTTP/1.1 200 OK' "$pipelined"

# A malformed request gets 400 and the connection closes.
expect_contains "garbage request" "HTTP/1.1 400 Bad Request" \
  "$(printf 'BLAH\r\n\r\n' | timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$HTTP_PORT; cat >&3; cat <&3")"

expect_eq "healthz" "ok" "$(curl -s "http://127.0.0.1:$ADMIN_PORT/healthz")"

# GnuTLS, which Debian's libcurl brings along unused, skips its start-up: serve ran itself again,
# under the same pid, with GNUTLS_NO_IMPLICIT_INIT=1 (relay/base/memory.h).
tr '\0' '\n' < "/proc/$RELAY_PID/environ" | grep -qx 'GNUTLS_NO_IMPLICIT_INIT=1' && pass ||
  fail "serve runs without GNUTLS_NO_IMPLICIT_INIT"
sleep 0.3  # access lines are written every 100 ms (relay/base/log.h)
expect_contains "access log names the phone" 'http GET /0004f282e824.cfg 404' "$(cat serve.log)"

# /metrics: the requests above, counted by protocol and status; three more 404s move it by three.
metric() {  # metric NAME_AND_LABELS -> its value (0 when absent)
  curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v k="$1" '$1 == k {print $2; f=1} END {if (!f) print 0}'
}
key='siterelay_requests_total{protocol="http",result="404"}'
before=$(metric "$key")
for i in 1 2 3; do curl -s -o /dev/null "$base/missing-$i.cfg"; done
expect_eq "/metrics counts 404s" $((before + 3)) "$(metric "$key")"
[[ $(metric 'siterelay_requests_total{protocol="http",result="200"}') -gt 0 ]] && pass ||
  fail "/metrics: no 200 counted"
[[ $(metric 'siterelay_served_bytes_total{class="config"}') -gt 0 ]] && pass ||
  fail "/metrics: no config bytes served"
[[ $(metric process_resident_memory_bytes) -gt 1000000 ]] && pass || fail "/metrics: no RSS"
expect_contains "/metrics content type" "text/plain; version=0.0.4" \
  "$(curl -s -o /dev/null -w '%{content_type}' "http://127.0.0.1:$ADMIN_PORT/metrics")"
# TLS handshakes: one good, one that is plain HTTP on the HTTPS port.
HTTPS_PORT=$(sed -n 's|.*phones: https://[^ ]*:\([0-9]*\)/ .*|\1|p' serve.log | head -n 1)
ok_before=$(metric siterelay_tls_handshakes_total)
bad_before=$(metric siterelay_tls_handshake_failures_total)
curl -sk -o /dev/null "https://127.0.0.1:$HTTPS_PORT/site.cfg"
curl -s -o /dev/null "http://127.0.0.1:$HTTPS_PORT/site.cfg"
expect_eq "/metrics counts a TLS handshake" $((ok_before + 1)) "$(metric siterelay_tls_handshakes_total)"
expect_eq "/metrics counts a failed TLS handshake" $((bad_before + 1)) \
  "$(metric siterelay_tls_handshake_failures_total)"
expect_eq "/metrics: the phone in the inventory" 1 "$(metric siterelay_devices)"

# The JSON API: Basic auth with the password the relay made in data_dir/admin-password.
api="http://127.0.0.1:$ADMIN_PORT/api/v1"
expect_eq "API without credentials: 401" 401 \
  "$(curl -s -o /dev/null -w '%{http_code}' "$api/status")"
expect_contains "API 401 asks for Basic" 'WWW-Authenticate: Basic realm="siterelay admin"' \
  "$(curl -s -D - -o /dev/null "$api/status" | tr -d '\r')"
expect_eq "API with a wrong password: 401" 401 \
  "$(curl -s -o /dev/null -w '%{http_code}' -u admin:wrong "$api/status")"
password=$(cat "$WORK/data/admin-password")
expect_eq "admin-password is private" 600 "$(stat -c %a "$WORK/data/admin-password")"
status_json=$(curl -s -u "admin:$password" "$api/status")
expect_contains "API status: version" '"version": "' "$status_json"
expect_contains "API status: the admin listener" "\"address\": \"127.0.0.1:$ADMIN_PORT\"" \
  "$status_json"
expect_contains "API devices: the phone that asked" '"mac": "0004f282e824"' \
  "$(curl -s -u "admin:$password" "$api/devices")"
expect_contains "API files: a cached file" '"path": "site.cfg"' \
  "$(curl -s -u "admin:$password" "$api/files")"
# The phone fetches a file without its MAC in the name: counted for it by its address.
curl -s -o /dev/null -A 'FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application' \
  "$base/site.cfg"
devices_json=$(curl -s -u "admin:$password" "$api/devices")
[[ $devices_json =~ \"files_fetched\":\ [1-9] ]] && pass || fail "API devices: files_fetched: $devices_json"
[[ $devices_json =~ \"last_boot\":\ [1-9] ]] && pass || fail "API devices: last_boot: $devices_json"
history_json=$(curl -s -u "admin:$password" "$api/history")
expect_contains "API history: 5-minute buckets" '"bucket_seconds": 300' "$history_json"
[[ $history_json =~ \"served_bytes\":\ [1-9] ]] && pass || fail "API history: $history_json"
expect_contains "API tools: a DHCP option value" '"dhcp_option": "http://' \
  "$(curl -s -u "admin:$password" "$api/tools")"
expect_contains "API sync without a manifest" '"configured": false' \
  "$(curl -s -u "admin:$password" "$api/sync")"
expect_eq "POST /api/v1/sync without a manifest: 409" 409 \
  "$(curl -s -o /dev/null -w '%{http_code}' -u "admin:$password" -X POST "$api/sync")"
expect_eq "the console needs the credentials" 401 \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/")"
expect_eq "the console" "200 text/html; charset=utf-8" \
  "$(curl -s -o /dev/null -w '%{http_code} %{content_type}' -u "admin:$password" \
     "http://127.0.0.1:$ADMIN_PORT/")"
status_out=$("$SITERELAY" status --config relay.toml 2>&1)
expect_eq "siterelay status: exit code" 0 "$?"
expect_contains "siterelay status: the cache line" "cache:" "$status_out"
expect_contains "siterelay status: the devices line" "devices:   1 known, 1 seen in 24 h" "$status_out"
stop_relay
expect_eq "SIGTERM exit code" 0 "$STOP_RC"
"$SITERELAY" status --config relay.toml > status-down.out 2>&1
expect_eq "siterelay status with the relay stopped: exit 1" 1 "$?"
expect_contains "siterelay status says why" "no relay answering" "$(cat status-down.out)"
expect_eq "device sighting in the catalog" "0004f282e824|VVX_500|5.9.7.47435|http" \
  "$(sqlite3 data/catalog.db 'SELECT mac, model, firmware, protocol FROM devices')"
served_before_stop=$(sqlite3 data/catalog.db 'SELECT sum(served_bytes) FROM traffic_history')
[[ ${served_before_stop:-0} -gt 0 ]] && pass || fail "no traffic history saved at stop"

# Accounts: 401 without or with wrong credentials, DOMAIN\user accepted, roots applied.
cat >> relay.toml <<TOML
[[account]]
user = "PlcmSpIp"
password = "PlcmSpIp"
[[account]]
user = "ftpuser"
password = "p@ss"
root = "/tenant"
TOML
start_relay relay.toml
base="http://127.0.0.1:$HTTP_PORT"
history_json=$(curl -s -u "admin:$password" "http://127.0.0.1:$ADMIN_PORT/api/v1/history")
[[ $history_json =~ \"served_bytes\":\ [1-9] ]] && pass ||
  fail "the traffic history did not survive the restart: $history_json"
out=$(curl -s -D - -o /dev/null "$base/000000000000.cfg" | tr -d '\r')
expect_contains "401 without credentials" "HTTP/1.1 401" "$out"
expect_contains "WWW-Authenticate" 'WWW-Authenticate: Basic realm="siterelay"' "$out"
expect_eq "wrong password" 401 \
  "$(curl -s -o /dev/null -w '%{http_code}' -u PlcmSpIp:nope "$base/000000000000.cfg")"
expect_eq "right password" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -u PlcmSpIp:PlcmSpIp "$base/000000000000.cfg")"
expect_eq "DOMAIN\\user sees its root" "tenant cfg" \
  "$(curl -s -u 'sbaierhome\ftpuser:p@ss' "$base/000000000000.cfg")"
expect_eq "password never logged" 0 "$(grep -c 'p@ss' serve.log)"

# SIGHUP: a changed password applies without a restart.
sed -i 's/password = "PlcmSpIp"/password = "changed"/' relay.toml
kill -HUP "$RELAY_PID"
for _ in $(seq 1 100); do grep -q 'reloaded' serve.log && break; sleep 0.05; done
expect_eq "old password after reload" 401 \
  "$(curl -s -o /dev/null -w '%{http_code}' -u PlcmSpIp:PlcmSpIp "$base/000000000000.cfg")"
expect_eq "new password after reload" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -u PlcmSpIp:changed "$base/000000000000.cfg")"

# SIGHUP with another listener list: the new one answers, the dropped one is closed.
sed -i '0,/^listen = \["127.0.0.1:0"\]$/s//listen = ["[::1]:0"]/' relay.toml  # [http]
kill -HUP "$RELAY_PID"
for _ in $(seq 1 100); do grep -q 'reload: http listening on' serve.log && break; sleep 0.05; done
v6_port=$(sed -n 's|.*reload: http listening on \[::1\]:\([0-9]*\)$|\1|p' serve.log | tail -n 1)
expect_eq "new listener after SIGHUP" 200 \
  "$(curl -sg -o /dev/null -w '%{http_code}' -u PlcmSpIp:changed "http://[::1]:$v6_port/site.cfg")"
expect_eq "dropped listener after SIGHUP" 000 \
  "$(curl -s -o /dev/null -w '%{http_code}' -u PlcmSpIp:changed "$base/site.cfg")"
sed -i 's/^listen = \["\[::1\]:0"\]$/listen = ["127.0.0.1:0"]/' relay.toml
stop_relay
expect_eq "SIGTERM exit code" 0 "$STOP_RC"

# allow_from: a peer outside the list is refused at connect.
sed -i '0,/^listen = \["127.0.0.1:0"\]$/s//&\nallow_from = ["10.0.0.0\/8"]/' relay.toml  # [http]
start_relay relay.toml
expect_eq "allow_from refuses" 000 \
  "$(curl -s -o /dev/null -w '%{http_code}' -u PlcmSpIp:changed "http://127.0.0.1:$HTTP_PORT/site.cfg")"
stop_relay
expect_eq "SIGTERM exit code" 0 "$STOP_RC"
finish
