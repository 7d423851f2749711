#!/usr/bin/env bash
# A full disk (docs/SECURITY.md "Batteries", issue 11): the relay's data_dir is a small tmpfs
# (16 MiB) that a filler file fills while the relay runs. It is filled during a pull-through
# download of a file bigger than the space left, during phone uploads (HTTP PUT of settings and
# of a log) and while spooled log lines wait to be cut into a batch. The relay must say so
# clearly — a truncated body (never a complete-looking one) to the reader, 507 to the phone whose
# upload was not stored, never a 2xx for one, a log line naming the cause — keep no partial
# object or temp file, lose no upload it acknowledged, and recover by itself when the filler is
# deleted: the same download and uploads then succeed without a restart, and the spooled lines
# reach the collector (tests/testing/log_collector) exactly once. At the end, with the relay
# stopped, `cache verify` passes, every file under objects/ hashes to its name, and a restarted
# relay serves every acknowledged upload byte for byte.
# Needs root (or CAP_SYS_ADMIN) for the mount: without it the test says SKIP and passes.
# Needs /usr/sbin/nginx (or $NGINX) for the origin. About 10 s. KEEP_WORK=1 keeps the scratch
# directory (unmounted).
HERE=$(cd "$(dirname "$0")" && pwd)  # nginx.sh is sourced after the cd below
source "$HERE/lib.sh"
SITERELAY=$(realpath "$SITERELAY")
cd "$WORK" || exit 1

COLLECTOR=${LOG_COLLECTOR:-$(dirname "$SITERELAY")/tests/log_collector}
DATA=$WORK/data
mkdir -p "$DATA" collected
COLLECTOR_PID=
MOUNTED=

# unmount_data: the tmpfs, once nothing holds a file in it (rm -rf would only empty it).
unmount_data() {
  [[ -n $MOUNTED ]] || return 0
  umount "$DATA" 2>/dev/null || umount -l "$DATA" 2>/dev/null ||
    echo "diskfull_test: could not unmount $DATA" >&2
}

if ! mount -t tmpfs -o size=16m,mode=0755 tmpfs "$DATA" 2> mount.err; then
  echo "SKIP: diskfull_test needs to mount a tmpfs as the data_dir and may not here:" \
    "$(tr '\n' ' ' < mount.err)(run it as root, or with CAP_SYS_ADMIN)"
  exit 0
fi
MOUNTED=1
# nginx.sh fails the test when there is no nginx, so it comes after the SKIP; until its own
# cleanup (redefined below) takes over, this trap unmounts.
trap 'unmount_data; rm -rf "$WORK"' EXIT
NGINX_DIR=$WORK/nginx
ORIGIN=$WORK/origin
source "$HERE/nginx.sh"
# nginx.sh's cleanup, with the collector (SIGTERM) before and the tmpfs after.
# shellcheck disable=SC2317  # run by nginx.sh's EXIT trap
cleanup() {
  if [[ -n $COLLECTOR_PID ]]; then
    kill -TERM "$COLLECTOR_PID" 2>/dev/null
    wait "$COLLECTOR_PID" 2>/dev/null
  fi
  stop_origin_and_relay
  unmount_data
  remove_work
}
[[ -x $COLLECTOR ]] || { echo "FAIL: $COLLECTOR is not built" >&2; exit 1; }

avail() { df --output=avail -B1 "$DATA" | tail -n 1 | tr -d ' '; }
tmp_files() { find "$DATA/tmp" -type f 2>/dev/null | wc -l; }

# ---- the origin (nginx) and the log collector ---------------------------------------------------
head -c 5000000 /dev/urandom > origin/big.sip.ld
printf '<PHONE_CONFIG><ALL voIpProt.server.1.address="pbx.example.com"/></PHONE_CONFIG>\n' \
  > origin/site.cfg
big_sha=$(sha origin/big.sip.ld)
site_sha=$(sha origin/site.cfg)

# The origin takes the settings the relay's outbox sends on with PUT, the 2 MB directory too
# (nginx's default limit is 1 MB).
NGINX_LOCATIONS=(
  "client_max_body_size 16m;"
  "location ~ -((phone|web|local)\\.cfg|(directory|calls)\\.xml)\$ {"
  "  dav_methods PUT;"
  "  create_full_put_path on;"
  "}"
)
start_nginx

"$COLLECTOR" --out collected --port-file collector.port --mode "fail 503" 2> collector.log &
COLLECTOR_PID=$!
for _ in $(seq 1 100); do [[ -s collector.port ]] && break; sleep 0.05; done
COLLECTOR_PORT=$(cat collector.port 2>/dev/null)
[[ -n $COLLECTOR_PORT ]] || { echo "FAIL: the collector did not start" >&2; cat collector.log >&2; exit 1; }
control() {
  curl -s --max-time 5 -X POST --data-binary "$1" "http://127.0.0.1:$COLLECTOR_PORT/control" >/dev/null
}
# The collector's lines as "<mac> <file> <line>", from the records it acknowledged.
collected_lines() {
  sed -E 's/.*"mac":"([0-9a-f]*)","file":"([a-z]*)",.*"line":"(.*)"}$/\1 \2 \3/' collected/lines.ndjson
}

write_config relay.toml "[origin]
url = \"http://127.0.0.1:$NGINX_PORT/\"" "[logs]
upstream = \"http://127.0.0.1:$COLLECTOR_PORT/v1/logs\"
batch_age = 2
batch_bytes = 65536"
sed -i '1i relay_id = "diskfull"' relay.toml  # a top-level key, before the first table
start_relay relay.toml
base="http://127.0.0.1:$HTTP_PORT"

# put NAME FILE [CURL_OPTION...]: PUT FILE to the relay as NAME; prints the status code (000:
# no answer).
put() { curl -s -o /dev/null --max-time 20 -w '%{http_code}' -T "$2" "${@:3}" "$base/$1"; }
# get NAME OUT: GET NAME from the relay into OUT; prints the status code.
get() { curl -s -o "$2" --max-time 20 -w '%{http_code}' "$base/$1"; }
# log_lines MAC FROM TO: lines FROM..TO of that phone's app log, as the phone writes them.
log_lines() {
  local i
  for ((i = $2; i <= $3; i++)); do printf '0517%06d|sip  |3|00|%s diskfull line %d\n' "$i" "$1" "$i"; done
}
MAC=0004f2d00001

# ---- 0. before the disk fills: what must survive everything --------------------------------------
expect_eq "cached before: site.cfg" 200 "$(get site.cfg got.site)"
expect_eq "cached before: site.cfg bytes" "$site_sha" "$(sha got.site)"
head -c 200000 /dev/urandom > phone1.cfg
expect_eq "settings upload before the disk fills" 201 "$(put $MAC-phone.cfg phone1.cfg)"
log_lines $MAC 1 50 > app50.log
expect_eq "log upload before the disk fills" 201 "$(put $MAC-app.log app50.log)"
lines_before=$(wc -l < serve.log)

# ---- 1. a pull-through download bigger than the space left ----------------------------------------
head -c $(($(avail) - 2 * 1024 * 1024)) /dev/zero > "$DATA/filler1"
free=$(avail)
((free < 5000000)) && pass || fail "the filler left $free bytes free, not less than the 5 MB file"
rc=0
code=$(curl -s -o got.big --max-time 30 -w '%{http_code}' "$base/big.sip.ld") || rc=$?
# A complete-looking 200 would be a lie: the bytes cannot be stored. Either the body is cut short
# (curl fails, 18: fewer bytes than Content-Length) or there is no 200 at all.
if ((rc == 0)) && [[ $code == 200 ]]; then
  fail "download bigger than the free space: a complete 200 ($(stat -c %s got.big) bytes," \
    "sha $(sha got.big)) although only $free bytes were free"
else
  pass
fi
(($(stat -c %s got.big 2>/dev/null || echo 0) < 5000000)) && pass ||
  fail "download bigger than the free space: the reader got all 5 MB"
for _ in $(seq 1 40); do grep -q 'sync: big.sip.ld: .*No space left on device' serve.log && break; sleep 0.05; done
expect_contains "download: the relay's log names the cause" "No space left on device" \
  "$(grep 'sync: big.sip.ld' serve.log)"
for _ in $(seq 1 40); do (($(tmp_files) == 0)) && break; sleep 0.05; done
expect_eq "download: no temp file left in tmp/" 0 "$(tmp_files)"
expect_eq "download: nothing cached for big.sip.ld" "" \
  "$("$SITERELAY" cache ls --config relay.toml | awk -F'\t' '$1 == "big.sip.ld"')"

# ---- 2. no space at all: uploads, the spool ----------------------------------------------------------
# New log lines are acknowledged (they fit), then the disk fills before they are cut into a batch
# (batch_age 2 s): the batch cannot be written.
log_lines $MAC 1 100 > app100.log
expect_eq "log upload just before the disk is full" 204 "$(put $MAC-app.log app100.log)"
cat /dev/zero > "$DATA/filler2" 2>/dev/null
expect_eq "the disk is full" 0 "$(avail)"
for _ in $(seq 1 100); do
  grep -q 'logs: building a batch: .*No space left on device' serve.log && break
  sleep 0.1
done
expect_contains "spool: the relay's log names the cause" "No space left on device" \
  "$(grep 'logs: building a batch' serve.log)"
expect_eq "cached file served while the disk is full" 200 "$(get site.cfg got.site2)"
expect_eq "cached file bytes while the disk is full" "$site_sha" "$(sha got.site2)"

# Uploads that cannot be stored: 507 Insufficient Storage (RFC 4918 11.5), never a 2xx, and not
# 413 either — the upload is not too large, the disk is full.
# The 2 MB directory is sent at a phone's pace (4 MB/s): the relay writes its first MiB while the
# rest is still arriving, and that write fails; the smaller ones fail when they are filed. The
# phone's app log has grown by 1 MB of new lines since it was last stored.
head -c 2000000 /dev/urandom > dir2.xml
head -c 300000 /dev/urandom > phone2.cfg
printf '<WEB v="3"/>\n' > web3.cfg
{ cat app100.log; log_lines $MAC 101 16000; } > appbig.log
expect_eq "settings upload (2 MB) on a full disk" 507 \
  "$(put 0004f2d00002-directory.xml dir2.xml --limit-rate 4M)"
expect_eq "settings upload (300 kB) on a full disk" 507 "$(put 0004f2d00002-phone.cfg phone2.cfg)"
expect_eq "settings upload (small) on a full disk" 507 "$(put 0004f2d00003-web.cfg web3.cfg)"
expect_eq "log upload on a full disk" 507 "$(put $MAC-app.log appbig.log)"
uploads_log=$(tail -n +"$lines_before" serve.log | grep -E 'upload|0004f2d0000[23]|-app.log')
expect_contains "uploads: the relay's log names the cause" "No space left on device" "$uploads_log"
expect_eq "refused settings upload not served" 404 "$(get 0004f2d00002-phone.cfg got.none)"
expect_eq "refused directory upload not served" 404 "$(get 0004f2d00002-directory.xml got.none)"
expect_eq "acknowledged settings still served" 200 "$(get $MAC-phone.cfg got.phone1)"
expect_eq "acknowledged settings bytes" "$(sha phone1.cfg)" "$(sha got.phone1)"
get $MAC-app.log got.app > /dev/null
cmp -s got.app app100.log && pass || fail "log on a full disk: not the acknowledged 100 lines" \
  "($(wc -c < got.app) bytes)"

# Room for the upload's copy (1 MB in tmp/) but not for appending its new bytes to the spool as
# well: the append fails part way. The phone hears 507, and the stored log is what was
# acknowledged — no part of the refused upload stays in it, or the log shipper would count
# bytes it never heard of and phones re-sending with APPE would duplicate them.
rm -f "$DATA/filler2"
head -c $(($(avail) - 1536 * 1024)) /dev/zero > "$DATA/filler2"
expect_eq "log upload whose append does not fit" 507 "$(put $MAC-app.log appbig.log)"
expect_contains "log upload whose append does not fit: the log names the cause" \
  "No space left on device" "$(tail -n 3 serve.log)"
get $MAC-app.log got.app > /dev/null
cmp -s got.app app100.log && pass ||
  fail "a refused log upload left $(($(wc -c < got.app) - $(wc -c < app100.log))) bytes in the" \
    "stored log past the acknowledged 100 lines"
expect_contains "HEAD on the log: the acknowledged size" \
  "Content-Length: $(wc -c < app100.log)" "$(curl -sI "$base/$MAC-app.log" | tr -d '\r')"
for _ in $(seq 1 40); do (($(tmp_files) == 0)) && break; sleep 0.05; done
expect_eq "uploads: no temp file left in tmp/" 0 "$(tmp_files)"
kill -0 "$RELAY_PID" 2>/dev/null && pass || fail "the relay died on the full disk"

# ---- 3. space comes back: the same requests succeed, no restart ------------------------------------
rm -f "$DATA/filler1" "$DATA/filler2"
expect_eq "recovered: download status" 200 "$(get big.sip.ld got.big2)"
expect_eq "recovered: download bytes" "$big_sha" "$(sha got.big2)"
expect_eq "recovered: settings upload (2 MB)" 201 \
  "$(put 0004f2d00002-directory.xml dir2.xml --limit-rate 4M)"
expect_eq "recovered: settings upload (300 kB)" 201 "$(put 0004f2d00002-phone.cfg phone2.cfg)"
expect_eq "recovered: settings upload (small)" 201 "$(put 0004f2d00003-web.cfg web3.cfg)"
expect_eq "recovered: log upload" 204 "$(put $MAC-app.log appbig.log)"
get 0004f2d00002-phone.cfg got.phone2 > /dev/null
expect_eq "recovered: settings read back" "$(sha phone2.cfg)" "$(sha got.phone2)"
get 0004f2d00002-directory.xml got.dir2 > /dev/null
expect_eq "recovered: directory read back" "$(sha dir2.xml)" "$(sha got.dir2)"
get $MAC-app.log got.app2 > /dev/null
cmp -s got.app2 appbig.log && pass || fail "recovered: the log is not the one uploaded" \
  "($(wc -c < got.app2) bytes, want $(wc -c < appbig.log))"
expect_eq "recovered: the relay did not restart" 1 "$(grep -c 'admin: http://' serve.log)"

# Every acknowledged log line reaches the collector exactly once (the failed batch is cut again).
control "ok"
want=$(sed "s/^/$MAC app /" appbig.log | sort)
for _ in $(seq 1 300); do
  [[ $(collected_lines | sort) == "$want" ]] && break
  sleep 0.1
done
expect_eq "spool: every acknowledged line at the collector" "$want" "$(collected_lines | sort)"
expect_eq "spool: no line twice" "" "$(collected_lines | sort | uniq -d)"
expect_eq "spool: the collector refused no batch" 0 \
  "$(awk '$3 == 400 || $3 == 422' collected/requests.log | wc -l)"
# The settings reach the origin too (the outbox), the acknowledged versions.
for f in $MAC-phone.cfg:phone1.cfg 0004f2d00002-phone.cfg:phone2.cfg 0004f2d00003-web.cfg:web3.cfg \
         0004f2d00002-directory.xml:dir2.xml; do
  for _ in $(seq 1 200); do
    [[ -f origin/${f%%:*} && $(sha "origin/${f%%:*}") == "$(sha "${f#*:}")" ]] && break
    sleep 0.1
  done
  expect_eq "outbox: ${f%%:*} at the origin" "$(sha "${f#*:}")" "$(sha "origin/${f%%:*}" 2>/dev/null)"
done

# ---- 4. stopped: the store is sound; restarted: every acknowledged upload is there -------------------
stop_relay
expect_eq "SIGTERM exit code" 0 "$STOP_RC"
RELAY_PID=
rc=0
"$SITERELAY" cache verify --config relay.toml > verify.out 2>&1 || rc=$?
expect_eq "cache verify exit code ($(tail -n 1 verify.out))" 0 "$rc"
bad=0
while IFS= read -r f; do
  [[ $(sha "$f") == "$(basename "$f")" ]] || { bad=$((bad + 1)); echo "corrupt: $f" >&2; }
done < <(find "$DATA/objects" -type f)
expect_eq "every file under objects/ hashes to its name" 0 "$bad"
mv serve.log serve-full.log  # start_relay starts a new one
start_relay relay.toml
base="http://127.0.0.1:$HTTP_PORT"
for f in $MAC-phone.cfg:phone1.cfg 0004f2d00002-phone.cfg:phone2.cfg 0004f2d00003-web.cfg:web3.cfg \
         0004f2d00002-directory.xml:dir2.xml $MAC-app.log:appbig.log big.sip.ld:origin/big.sip.ld site.cfg:origin/site.cfg; do
  code=$(get "${f%%:*}" got.after)
  expect_eq "after a restart: ${f%%:*}" "200 $(sha "${f#*:}")" "$code $(sha got.after)"
done
stop_relay
RELAY_PID=
expect_eq "SIGTERM exit code after the restart" 0 "$STOP_RC"
finish
