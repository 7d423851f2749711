#!/usr/bin/env bash
# siterelay serve over TFTP, with the clients phones' firmware resembles: tftp-hpa (RFC 1350,
# no options), curl (tsize, blksize) and atftp (windowsize, RFC 7440).
source "$(dirname "$0")/lib.sh"
cd "$WORK"

mkdir tree
printf '<APPLICATION APP_FILE_PATH="sip.ld"/>\n' > tree/000000000000.cfg
head -c 3000000 /dev/urandom > tree/3111-44500-001.sip.ld
# Past 32 MiB at 512-byte blocks: the block number wraps from 65535 to 0.
head -c 40000000 /dev/urandom > tree/big.sip.ld
# netascii: line ends become CR LF on the wire.
printf 'line one\nline two\n' > tree/notes.txt
write_config relay.toml
# write_config turns TFTP off; turn it on, on a port the kernel picks.
sed -i '/^\[tftp\]$/{n;s/.*/listen = ["127.0.0.1:0"]/}' relay.toml
"$SITERELAY" import tree --config relay.toml >/dev/null 2>&1 || fail "import"
start_relay relay.toml
TFTP_PORT=$(sed -n 's|.*phones: tftp://[^ ]*:\([0-9]*\)/ .*|\1|p' serve.log | head -n 1)
[[ -n $TFTP_PORT ]] && pass || { fail "no tftp listener announced"; cat serve.log >&2; }
url="tftp://127.0.0.1:$TFTP_PORT"
same() { cmp -s "$1" "$2" && pass || fail "$3: bytes differ"; }

# tftp-hpa: plain RFC 1350, 512-byte blocks, no options.
timeout 30 tftp 127.0.0.1 "$TFTP_PORT" -m binary -c get 000000000000.cfg hpa.cfg
same hpa.cfg tree/000000000000.cfg "tftp-hpa small file"
timeout 60 tftp 127.0.0.1 "$TFTP_PORT" -m binary -c get 3111-44500-001.sip.ld hpa.ld
same hpa.ld tree/3111-44500-001.sip.ld "tftp-hpa 3 MB image"

# curl: tsize and blksize options (OACK), and the default 512.
curl -s --max-time 60 -o curl.ld "$url/3111-44500-001.sip.ld"
same curl.ld tree/3111-44500-001.sip.ld "curl default options"
curl -s --max-time 60 --tftp-blksize 1468 -o curl1468.ld "$url/3111-44500-001.sip.ld"
same curl1468.ld tree/3111-44500-001.sip.ld "curl blksize 1468"
sleep 0.3  # access lines are written every 100 ms (relay/base/log.h)
expect_contains "blksize 1468 was negotiated" "blksize=1468" \
  "$(grep 'tftp RRQ 3111-44500-001.sip.ld done' serve.log | tail -n 1)"
curl -s --max-time 60 --tftp-blksize 9000 -o curl9000.ld "$url/3111-44500-001.sip.ld"
same curl9000.ld tree/3111-44500-001.sip.ld "curl blksize 9000 (lowered to the server's 1468)"

# 40 MB at 512-byte blocks: 78,125 blocks, so the block number rolls over past 65535.
curl -s --max-time 120 --tftp-no-options -o big.ld "$url/big.sip.ld"
same big.ld tree/big.sip.ld "40 MB at 512-byte blocks (rollover)"

# atftp with windowsize 16 and tsize.
timeout 60 atftp --option "windowsize 16" --option "blksize 1468" --option "tsize 0" \
  --trace -g -r 3111-44500-001.sip.ld -l atftp.ld 127.0.0.1 "$TFTP_PORT" 2>&1 |
  grep 'received OACK' > atftp.oack
same atftp.ld tree/3111-44500-001.sip.ld "atftp windowsize 16"
oack=$(cat atftp.oack)
expect_contains "atftp's OACK: windowsize" "windowsize: 16" "$oack"
expect_contains "atftp's OACK: blksize" "blksize: 1468" "$oack"
expect_contains "atftp's OACK: the real tsize" "tsize: 3000000" "$oack"

# A lossy network: our client drops every Nth datagram it receives. With windowsize 8 it reports
# each gap by acknowledging the last block it has (RFC 7440) and the relay resends from there;
# with windowsize 1 the relay's retransmission timer brings the lost block back.
LOSSY=${TFTP_LOSSY_CLIENT:-$(dirname "$SITERELAY")/tests/tftp_lossy_client}
if [[ -x $LOSSY ]]; then
  timeout 60 "$LOSSY" 127.0.0.1 "$TFTP_PORT" 3111-44500-001.sip.ld lossy8.ld 200 1468 8 2> lossy8.err
  same lossy8.ld tree/3111-44500-001.sip.ld "every 200th datagram lost, windowsize 8"
  dropped=$(sed -n 's/.* \([0-9]*\) datagrams dropped/\1/p' lossy8.err)
  ((${dropped:-0} >= 10)) && pass || fail "the lossy client lost too little: [$(cat lossy8.err)]"
  # 5,860 blocks of 512 bytes: four losses, each brought back by the relay's 1 s timer.
  timeout 60 "$LOSSY" 127.0.0.1 "$TFTP_PORT" 3111-44500-001.sip.ld lossy1.ld 1500 512 1 \
    2> lossy1.err
  same lossy1.ld tree/3111-44500-001.sip.ld "every 1500th datagram lost, windowsize 1"
else
  fail "no lossy TFTP client at $LOSSY"
fi

# netascii: LF becomes CR LF on the wire; tftp-hpa turns it back.
timeout 30 tftp 127.0.0.1 "$TFTP_PORT" -m netascii -c get notes.txt ascii.txt
same ascii.txt tree/notes.txt "netascii round trip"

# Refusals: a missing file is error 1, an escape error 2, an upload error 2.
out=$(timeout 30 tftp 127.0.0.1 "$TFTP_PORT" -m binary -c get 0004f2aabbcc.cfg missing.cfg 2>&1)
expect_contains "missing file is error 1" "Error code 1" "$out"
out=$(timeout 30 tftp 127.0.0.1 "$TFTP_PORT" -m binary -c get ../../etc/passwd passwd 2>&1)
expect_contains "traversal is error 2" "Error code 2" "$out"
[[ ! -s passwd ]] && pass || fail "traversal: got bytes"
printf 'log line\n' > up.log
out=$(timeout 30 tftp 127.0.0.1 "$TFTP_PORT" -m binary -c put up.log 0004f2aabbcc-app.log 2>&1)
expect_contains "WRQ is error 2" "Error code 2" "$out"

stop_relay
expect_eq "SIGTERM exit code" 0 "$STOP_RC"

# Uploads with tftp.allow_uploads: the phone upload names only, stored as over HTTP (a log
# appends only what is new; settings are served back at once).
sed -i 's/^allow_uploads = .*//; /^\[tftp\]$/a allow_uploads = true' relay.toml
start_relay relay.toml
TFTP_PORT=$(sed -n 's|.*phones: tftp://[^ ]*:\([0-9]*\)/ .*|\1|p' serve.log | head -n 1)
base="http://127.0.0.1:$HTTP_PORT"
printf '0517184023|copy |3|00|first line\n' > app1.log
out=$(timeout 30 tftp 127.0.0.1 "$TFTP_PORT" -m binary -c put app1.log 0004f2aabbcc-app.log 2>&1)
expect_eq "WRQ of a log" "" "$out"
cat app1.log > app2.log
printf '0517184024|copy |3|00|second line\n' >> app2.log
timeout 30 tftp 127.0.0.1 "$TFTP_PORT" -m binary -c put app2.log 0004f2aabbcc-app.log
expect_eq "the log holds each line once" "$(cat app2.log)" \
  "$(curl -s --max-time 10 "$base/0004f2aabbcc-app.log")"
head -c 200000 /dev/urandom | base64 > phone.cfg  # several blocks at 512 bytes
curl -s --max-time 30 -T phone.cfg --tftp-blksize 1468 "tftp://127.0.0.1:$TFTP_PORT/0004f2aabbcc-phone.cfg"
expect_eq "curl WRQ of settings (blksize 1468)" 0 "$?"
curl -s --max-time 10 -o got-phone.cfg "$base/0004f2aabbcc-phone.cfg"
same got-phone.cfg phone.cfg "settings upload served back"
head -c 300000 /dev/urandom | base64 > web.cfg  # windowed: one ACK per 8 blocks (RFC 7440)
out=$(timeout 30 atftp --option "windowsize 8" --option "blksize 1468" --trace -p -l web.cfg \
  -r 0004f2aabbcc-web.cfg 127.0.0.1 "$TFTP_PORT" 2>&1)
expect_contains "atftp WRQ with windowsize 8: OACK" "windowsize: 8" "$(grep 'received OACK' <<<"$out")"
web_blocks=$(($(stat -c %s web.cfg) / 1468 + 1))
expect_eq "atftp WRQ with windowsize 8: one ACK per window" $(((web_blocks + 7) / 8)) \
  "$(grep -c 'received ACK' <<<"$out")"
curl -s --max-time 10 -o got-web.cfg "$base/0004f2aabbcc-web.cfg"
same got-web.cfg web.cfg "windowed settings upload served back"
out=$(timeout 30 tftp 127.0.0.1 "$TFTP_PORT" -m binary -c put app1.log firmware.ld 2>&1)
expect_contains "WRQ of another name is error 2" "Error code 2" "$out"
stop_relay
expect_eq "SIGTERM exit code after uploads" 0 "$STOP_RC"
finish
