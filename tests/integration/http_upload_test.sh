#!/usr/bin/env bash
# Phone uploads over HTTP PUT (CONTRACT.md "Uploads"), checked as a phone and an admin would:
# what is read back, what survives kill -9, what is refused.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

write_config relay.toml '[uploads]' 'max_bytes = 1048576'
start_relay relay.toml
base="http://127.0.0.1:$HTTP_PORT"
UA='FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Updater'
code() { curl -s -o /dev/null -w '%{http_code}' -A "$UA" "$@"; }

# The boot log comes first in a boot (PHONES.md), then HEAD + PUT of the app log.
printf '0517184023|copy |3|00|boot one\n' > boot.log
expect_eq "PUT boot log" 201 "$(code -T boot.log "$base/0004f282e824-boot.log")"
expect_eq "HEAD unknown app log" 404 "$(code -I "$base/0004f282e824-app.log")"
printf 'line 1\nline 2\n' > app1.log
expect_eq "PUT app log" 201 "$(code -T app1.log "$base/0004f282e824-app.log")"
printf 'line 1\nline 2\nline 3\n' > app2.log
expect_eq "PUT whole log again" 204 "$(code -T app2.log "$base/0004f282e824-app.log")"
expect_eq "stored log has no duplicates" "$(cat app2.log)" "$(curl -s "$base/0004f282e824-app.log")"
expect_contains "HEAD answers the stored size" "Content-Length: 21" \
  "$(curl -sI "$base/0004f282e824-app.log" | tr -d '\r')"

# Settings: served back at once, byte for byte, whatever the case of the name.
printf '<PHONE_CONFIG><OVERRIDES device.set="1"/></PHONE_CONFIG>\n' > phone.cfg
expect_eq "PUT -phone.cfg" 201 "$(code -T phone.cfg "$base/0004F282E824-phone.cfg")"
curl -s -o got.cfg "$base/0004F282E824-phone.cfg"
cmp -s got.cfg phone.cfg && pass || fail "settings read back differ"
head -c 300000 /dev/urandom > dir.xml
expect_eq "chunked PUT with 100-continue" 201 \
  "$(code -H 'Transfer-Encoding: chunked' -H 'Expect: 100-continue' -T dir.xml \
     "$base/0004f282e824-directory.xml")"
curl -s -o got.xml "$base/0004f282e824-directory.xml"
cmp -s got.xml dir.xml && pass || fail "chunked upload read back differs"
expect_eq "cache ls shows the pending upload" "upload-pending" \
  "$("$SITERELAY" cache ls --config relay.toml | awk -F'\t' '$1 == "0004F282E824-phone.cfg" {print $4}')"

# Refusals: not an upload name, too large, no length.
expect_eq "PUT firmware name" 403 "$(code -T phone.cfg "$base/sip.ld")"
expect_eq "PUT other mac file" 403 "$(code -T phone.cfg "$base/0004f282e824.cfg")"
head -c 1048577 /dev/zero > big
expect_eq "PUT past max_bytes" 413 "$(code -T big "$base/0004f282e824-app.log")"
expect_eq "chunked PUT past max_bytes" 413 \
  "$(code -H 'Transfer-Encoding: chunked' -T big "$base/0004f282e824-app.log")"
head -c 1048576 /dev/zero > exact
expect_eq "PUT of exactly max_bytes" 201 "$(code -T exact "$base/0004f282e824-calls.xml")"
exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
printf 'PUT /0004f282e824-web.cfg HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n' >&3
expect_contains "PUT without length" "HTTP/1.1 411" "$(timeout 5 cat <&3)"
exec 3<&-

# Acknowledged means durable: kill -9 right after the 2xx, restart, read it back.
printf 'line 1\nline 2\nline 3\nline 4\n' > app3.log
printf '<WEB/>' > web.cfg
expect_eq "PUT before the crash" 204 "$(code -T app3.log "$base/0004f282e824-app.log")"
expect_eq "PUT settings before the crash" 201 "$(code -T web.cfg "$base/0004f282e824-web.cfg")"
kill -9 "$RELAY_PID"
wait "$RELAY_PID" 2>/dev/null
start_relay relay.toml
base="http://127.0.0.1:$HTTP_PORT"
expect_eq "log after kill -9" "$(cat app3.log)" "$(curl -s "$base/0004f282e824-app.log")"
expect_eq "settings after kill -9" "<WEB/>" "$(curl -s "$base/0004f282e824-web.cfg")"
expect_eq "no temp files left after restart" 0 "$(find data/tmp -type f | wc -l)"
stop_relay
expect_eq "SIGTERM exit code" 0 "$STOP_RC"
finish
