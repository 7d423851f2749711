#!/usr/bin/env bash
# HTTPS through the TLS filter: the generated certificate, a configured one, legacy TLS 1.0 for
# old phones, big files and uploads over TLS, and a certificate change on SIGHUP.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

mkdir tree
head -c 5000000 /dev/urandom > tree/3111-44500-001.sip.ld
printf '<APPLICATION/>' > tree/000000000000.cfg
tls_config() { write_config relay.toml '[tls]' "$1"; }  # $1: [tls] lines
https_port() { sed -n 's|.*phones: https://[^ ]*:\([0-9]*\)/ .*|\1|p' serve.log | tail -n 1; }
served_fingerprint() {
  openssl s_client -connect "127.0.0.1:$1" </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256 | sed 's/.*=//'
}

tls_config ''
"$SITERELAY" import tree --config relay.toml >/dev/null 2>&1 || fail "import"
start_relay relay.toml
port=$(https_port)
[[ -f data/tls/cert.pem && -f data/tls/key.pem ]] && pass || fail "no self-signed pair in data/tls"
expect_eq "key readable by the relay only" 600 "$(stat -c %a data/tls/key.pem)"
sans=$(openssl x509 -in data/tls/cert.pem -noout -ext subjectAltName)
expect_contains "SAN localhost" "DNS:localhost" "$sans"
expect_contains "SAN 127.0.0.1" "IP Address:127.0.0.1" "$sans"
fp=$(openssl x509 -in data/tls/cert.pem -noout -fingerprint -sha256 | sed 's/.*=//')
expect_contains "fingerprint logged" "SHA-256 $fp" "$(cat serve.log)"

curl -s --cacert data/tls/cert.pem -o got.ld "https://127.0.0.1:$port/3111-44500-001.sip.ld"
cmp -s got.ld tree/3111-44500-001.sip.ld && pass || fail "firmware over TLS differs"
curl -s --cacert data/tls/cert.pem -r 4999990- -o tail.bin "https://localhost:$port/3111-44500-001.sip.ld"
cmp -s tail.bin <(tail -c 10 tree/3111-44500-001.sip.ld) && pass || fail "range over TLS differs"
printf 'boot\n' > boot.log
expect_eq "upload over TLS" 201 "$(curl -s -o /dev/null -w '%{http_code}' --cacert data/tls/cert.pem \
  -T boot.log "https://127.0.0.1:$port/0004f282e824-boot.log")"
expect_eq "plain HTTP on the HTTPS port fails" 000 \
  "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/000000000000.cfg")"
legacy=$(openssl s_client -connect "127.0.0.1:$port" -tls1 -cipher 'AES256-SHA@SECLEVEL=0' \
  </dev/null 2>&1)
expect_contains "TLS 1.0 refused by default" "alert protocol version" "$legacy"
stop_relay
expect_eq "exit code" 0 "$STOP_RC"

# The oldest phones: TLS 1.0 with AES256-SHA when tls.min_version = "1.0" (PHONES.md).
tls_config 'min_version = "1.0"'
start_relay relay.toml
port=$(https_port)
legacy=$(openssl s_client -connect "127.0.0.1:$port" -tls1 -cipher 'AES256-SHA@SECLEVEL=0' \
  </dev/null 2>&1)
expect_contains "TLS 1.0 negotiated" "Protocol  : TLSv1" "$legacy"
expect_contains "AES256-SHA negotiated" "Cipher is AES256-SHA" "$legacy"
stop_relay

# A configured certificate, then another one picked up by SIGHUP.
make_cert() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
make_cert one && make_cert two
tls_config "cert = \"$WORK/one.pem\"
key = \"$WORK/one.key\""
start_relay relay.toml
port=$(https_port)
one=$(openssl x509 -in one.pem -noout -fingerprint -sha256 | sed 's/.*=//')
two=$(openssl x509 -in two.pem -noout -fingerprint -sha256 | sed 's/.*=//')
expect_eq "configured certificate served" "$one" "$(served_fingerprint "$port")"
tls_config "cert = \"$WORK/two.pem\"
key = \"$WORK/two.key\""
kill -HUP "$RELAY_PID"
for _ in $(seq 1 100); do grep -q "reload: certificate" serve.log && break; sleep 0.05; done
expect_eq "new certificate after SIGHUP" "$two" "$(served_fingerprint "$port")"
tls_config "cert = \"$WORK/two.pem\"
key = \"$WORK/one.key\""
kill -HUP "$RELAY_PID"
for _ in $(seq 1 100); do grep -q "keeping the old certificate" serve.log && break; sleep 0.05; done
expect_eq "mismatched key on SIGHUP keeps the old certificate" "$two" "$(served_fingerprint "$port")"
stop_relay
expect_eq "exit code" 0 "$STOP_RC"
finish
