#!/usr/bin/env bash
# Hostile HTTP clients against the real binary (issue 11): request smuggling shapes, oversized
# request lines and heads, a pipelined flood, PUT bodies past upload_max_bytes, uploads to names
# that are not phone uploads, traversal in every encoding, 10,000 idle connections from one
# address, and slowloris. Each is answered with the right status or a closed connection; nothing
# outside the root is ever served. After the battery the relay still serves a known file
# byte-exact, its resident set is bounded, and its fd count is back to where it started.
# Needs conn_flood (built with the tests). About 25 s.
source "$(dirname "$0")/lib.sh"
SITERELAY=$(realpath "$SITERELAY")
FLOOD=${CONN_FLOOD:-$(dirname "$SITERELAY")/tests/conn_flood}
cd "$WORK" || exit 1
[[ -x $FLOOD ]] || { echo "FAIL: $FLOOD not built" >&2; exit 1; }

mkdir tree
printf '<APPLICATION APP_FILE_PATH="sip.ld"/>\n' > tree/000000000000.cfg
head -c 300000 /dev/urandom > tree/sip.ld
write_config relay.toml '[uploads]' 'max_bytes = 1048576'
"$SITERELAY" import tree --config relay.toml > /dev/null || { echo "FAIL: import" >&2; exit 1; }
start_relay relay.toml
base="http://127.0.0.1:$HTTP_PORT"
want=$(sha256sum < tree/sip.ld)
curl -s -o /dev/null "$base/sip.ld"  # warm: the fd count includes what one request leaves open
baseline_fds=$(fds)

# raw REQUEST: what the relay answers the bytes of REQUEST (printf %b escapes) sent on a fresh
# connection, CRs removed (10 s at most). The request goes through a file: some are megabytes.
raw() {
  printf '%b' "$1" > request.bin
  timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$HTTP_PORT; cat request.bin >&3; cat <&3" |
    tr -d '\r'
}
status_of() { raw "$1" | head -n 1 | cut -d' ' -f2; }

# Smuggling shapes: a body length two parsers could read differently is refused, and the
# connection closes, so no second request hides in the body.
expect_eq "Content-Length with Transfer-Encoding" 400 \
  "$(status_of 'PUT /0004f282e824-app.log HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /sip.ld HTTP/1.1\r\nHost: r\r\n\r\n')"
expect_eq "two different Content-Lengths" 400 \
  "$(status_of 'PUT /0004f282e824-app.log HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!')"
expect_eq "obs-fold" 400 "$(status_of 'GET /sip.ld HTTP/1.1\r\nHost: r\r\nX-A: a\r\n b\r\n\r\n')"
expect_eq "Transfer-Encoding other than chunked" 501 \
  "$(status_of 'PUT /0004f282e824-app.log HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n')"
expect_eq "a space before the colon" 400 "$(status_of 'GET /sip.ld HTTP/1.1\r\nHost : r\r\n\r\n')"
smuggled=$(raw 'GET /000000000000.cfg HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /sip.ld HTTP/1.1\r\nHost: r\r\n\r\n')
expect_eq "nothing answered after a refused body" 1 "$(grep -c '^HTTP/1.1' <<< "$smuggled")"

# Sizes: a 64 KiB request line, a 1 MiB head, 10,000 header fields.
long_target=$(head -c 65536 /dev/zero | tr '\0' 'a')
expect_eq "oversized request line" 414 "$(status_of "GET /$long_target HTTP/1.1\r\nHost: r\r\n\r\n")"
big_header=$(head -c 1048576 /dev/zero | tr '\0' 'b')
expect_eq "oversized head" 431 "$(status_of "GET /sip.ld HTTP/1.1\r\nHost: r\r\nX-Big: $big_header\r\n\r\n")"
many=$(for i in $(seq 1 10000); do printf 'X-%d: v\\r\\n' "$i"; done)
expect_eq "10,000 header fields" 431 "$(status_of "GET /sip.ld HTTP/1.1\r\nHost: r\r\n$many\r\n")"

# A pipelined flood: 2,000 requests in one stream, all answered in order.
flood=$(for i in $(seq 1 2000); do printf 'GET /000000000000.cfg HTTP/1.1\\r\\nHost: r\\r\\n\\r\\n'; done)
answers=$(raw "${flood}GET /000000000000.cfg HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n" |
  grep -c '^HTTP/1.1 200 OK')
expect_eq "2,001 pipelined requests answered" 2001 "$answers"

# PUT bodies past upload_max_bytes (1 MiB here): with a length, refused before the body; chunked,
# cut at the limit. Nothing is filed.
head -c 2000000 /dev/urandom > big.log
expect_eq "PUT past the limit, with Content-Length" 413 \
  "$(curl -s -o /dev/null -w '%{http_code}' -T big.log "$base/0004f282e824-app.log")"
expect_eq "PUT past the limit, chunked" 413 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' -T big.log \
     "$base/0004f282e824-app.log")"
expect_eq "nothing filed from either" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' "$base/0004f282e824-app.log")"

# Uploads to names that are not phone uploads, and to phone names outside the root.
echo data > small.txt
for name in 000000000000.cfg sip.ld 0004f282e824.cfg index.html 0004f282e824-app.log.exe \
    zz0004f282e824-app.log 0004f282e82-app.log fw/../000000000000.cfg; do
  code=$(curl -s -o /dev/null -w '%{http_code}' --path-as-is -T small.txt "$base/$name")
  [[ $code == 403 || $code == 400 ]] && pass || fail "PUT /$name answered $code"
done
expect_eq "the master config is untouched" "$(sha256sum < tree/000000000000.cfg)" \
  "$(curl -s "$base/000000000000.cfg" | sha256sum)"

# Traversal in every encoding: refused or not found, never a file from outside the root.
for target in '/../../../../etc/passwd' '/%2e%2e/%2e%2e/etc/passwd' '/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd' \
    '/..%2f..%2fetc%2fpasswd' '/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd' '/..%5c..%5cetc%5cpasswd' \
    '/..\..\etc\passwd' '/%252e%252e/%252e%252e/etc/passwd' '/fw/%2e%2e/%2e%2e/etc/passwd' \
    '/.%2e/.%2e/etc/passwd' '/%e0%80%ae%e0%80%ae/etc/passwd' '/etc/passwd%00.cfg' \
    "/$(printf '%s' "$WORK" | sed 's|^/||')/relay.toml"; do
  out=$(curl -s --path-as-is -w '\n%{http_code}' "$base$target")
  code=$(tail -n 1 <<< "$out")
  if [[ $code =~ ^(400|403|404)$ ]] && ! grep -q 'root:' <<< "$out" && ! grep -q 'data_dir' <<< "$out"; then
    pass
  else
    fail "traversal $target answered $code"
  fi
done

# 10,000 idle connections from one address: the relay takes what its per-address limit allows
# and closes the rest; a phone at another address is served meanwhile.
"$FLOOD" 127.0.0.1 127.0.0.1 "$HTTP_PORT" 10000 6 > flood.out &
flood_pid=$!
sleep 3
expect_eq "served during the idle flood, from another address" "$want" \
  "$(curl -s --interface 127.0.0.2 "$base/sip.ld" | sha256sum)"
wait "$flood_pid"
open=$(sed -n 's/.*open after [0-9]* s: \([0-9]*\).*/\1/p' flood.out)
((open > 0 && open <= 512)) && pass || fail "idle flood: $(cat flood.out) (want 1..512 left open)"

# Slowloris: 300 connections that send half a request line and stop; the header timeout (15 s)
# closes every one.
"$FLOOD" 127.0.0.3 127.0.0.1 "$HTTP_PORT" 300 17 --partial > slow.out
expect_contains "slowloris: every connection closed by the relay" "open after 17 s: 0" "$(cat slow.out)"

# After the battery.
kill -0 "$RELAY_PID" 2>/dev/null && pass || fail "the relay died"
expect_eq "a known file, byte-exact, after the battery" "$want" "$(curl -s "$base/sip.ld" | sha256sum)"
expect_relay_as_before "$baseline_fds"
peak=$PEAK_KIB
echo "peak RSS ${peak} KiB; fds ${baseline_fds}"
stop_relay
expect_eq "SIGTERM exit code" 0 "$STOP_RC"
finish
