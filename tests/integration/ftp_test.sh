#!/usr/bin/env bash
# siterelay serve over FTP and FTPS with real clients: curl (ftp://, ftps:// implicit,
# --ssl-reqd explicit, passive and active, -C -, --append, uploads), lftp, a Poly-phone-like
# implicit FTPS client of ours (no PBSZ/PROT, TLS data connection without session reuse), and
# raw control lines through bash's /dev/tcp for what no client sends on purpose (PORT bounce,
# traversal, bad logins).
source "$(dirname "$0")/lib.sh"
cd "$WORK"

mkdir -p tree/firmware origin
printf '<APPLICATION APP_FILE_PATH="sip.ld"/>\n' > tree/000000000000.cfg
head -c 3000000 /dev/urandom > tree/firmware/3111-44500-001.sip.ld
# Only on the origin (a file:// origin): the first RETR pulls it through the cache.
head -c 2000000 /dev/urandom > origin/pulled.sip.ld
write_config relay.toml \
  "[[account]]
user = \"PlcmSpIp\"
password = \"PlcmSpIp\"
root = \"/\"" \
  "[origin]
url = \"file://$WORK/origin/\""
# write_config turns FTP off; turn both listeners on, on ports the kernel picks, and a passive
# range of our own.
passive_lo=$((40000 + RANDOM % 20000))
sed -i "/^\[ftp\]$/,/^implicit_tls_listen/c\\
[ftp]\\
listen = [\"127.0.0.1:0\"]\\
implicit_tls_listen = [\"127.0.0.1:0\"]\\
passive_ports = [$passive_lo, $((passive_lo + 20))]" relay.toml
"$SITERELAY" import tree --config relay.toml >/dev/null 2>&1 || fail "import"
start_relay relay.toml
FTP_PORT=$(sed -n 's|.*phones: ftp://[^ ]*:\([0-9]*\)/ .*|\1|p' serve.log | head -n 1)
FTPS_PORT=$(sed -n 's|.*phones: ftps://[^ ]*:\([0-9]*\)/ .*|\1|p' serve.log | head -n 1)
[[ -n $FTP_PORT && -n $FTPS_PORT ]] && pass || { fail "no ftp listeners announced"; cat serve.log >&2; }
creds=PlcmSpIp:PlcmSpIp
ftp="ftp://$creds@127.0.0.1:$FTP_PORT"
ftps="ftps://$creds@127.0.0.1:$FTPS_PORT"
same() { cmp -s "$1" "$2" && pass || fail "$3: bytes differ"; }
c() { curl -s --max-time 60 "$@"; }

# ---- reads ----
c -o pasv.ld "$ftp/firmware/3111-44500-001.sip.ld"
same pasv.ld tree/firmware/3111-44500-001.sip.ld "curl passive RETR"
c --ftp-port 127.0.0.1 -o port.ld "$ftp/firmware/3111-44500-001.sip.ld"
same port.ld tree/firmware/3111-44500-001.sip.ld "curl active (EPRT) RETR"
c --disable-epsv -o pasv4.ld "$ftp/firmware/3111-44500-001.sip.ld"
same pasv4.ld tree/firmware/3111-44500-001.sip.ld "curl PASV (not EPSV) RETR"
c --ssl-reqd -k -o explicit.ld "$ftp/firmware/3111-44500-001.sip.ld"
same explicit.ld tree/firmware/3111-44500-001.sip.ld "curl explicit FTPS (AUTH TLS, PROT P)"
c -k -o implicit.ld "$ftps/firmware/3111-44500-001.sip.ld"
same implicit.ld tree/firmware/3111-44500-001.sip.ld "curl implicit FTPS"
head -c 1000000 tree/firmware/3111-44500-001.sip.ld > resumed.ld
c -C - -o resumed.ld "$ftp/firmware/3111-44500-001.sip.ld"
same resumed.ld tree/firmware/3111-44500-001.sip.ld "curl -C - (REST + RETR)"
c -o pulled.ld "$ftp/pulled.sip.ld"
same pulled.ld origin/pulled.sip.ld "RETR of a file only the origin has (pull-through)"
expect_eq "SIZE and MDTM (curl -I)" "Content-Length: 3000000" \
  "$(c -I "$ftp/firmware/3111-44500-001.sip.ld" | tr -d '\r' | grep Content-Length)"
expect_eq "RETR of a missing file" 78 "$(c -o /dev/null "$ftp/nothing.cfg"; echo $?)"

# ---- listings ----
list=$(c "$ftp/")
expect_contains "LIST shows a file in ls -l format" "3111" "$(c "$ftp/firmware/")"
expect_contains "LIST shows a directory" "dr-xr-xr-x" "$list"
expect_eq "NLST" "000000000000.cfg
firmware
pulled.sip.ld" "$(c -l "$ftp/" | tr -d '\r')"

# ---- uploads (CONTRACT.md: phone upload names only; logs append, settings replace) ----
printf '0517184023|copy |3|00|first\n' > app1.log
printf '0517184024|copy |3|00|second\n' > app2.log
c -T app1.log "$ftp/0004f2aabbcc-app.log"
expect_eq "STOR of a log" 0 "$?"
c -T app2.log --append "$ftp/0004f2aabbcc-app.log"
expect_eq "APPE of a log" 0 "$?"
cat app1.log app2.log > app12.log
c -T app12.log "$ftp/0004f2aabbcc-app.log"  # the whole log again: nothing is new
c -o got.log "$ftp/0004f2aabbcc-app.log"
same got.log app12.log "the log holds each line once"
head -c 100000 /dev/urandom | base64 > phone.cfg
c --ssl-reqd -k -T phone.cfg "$ftp/0004f2aabbcc-phone.cfg"
c -u "$creds" -o got-phone.cfg "http://127.0.0.1:$HTTP_PORT/0004f2aabbcc-phone.cfg"
same got-phone.cfg phone.cfg "explicit FTPS STOR of settings, served back over HTTP"
expect_eq "STOR of another name is 550 (curl 25)" 25 "$(c -T app1.log "$ftp/firmware/x.ld"; echo $?)"

# ---- lftp ----
lftp_run() { timeout 60 lftp -e "set ftp:ssl-allow no; set net:max-retries 1; $1; bye" \
  -u "$creds" "127.0.0.1:$FTP_PORT" 2>&1; }
lftp_run "get firmware/3111-44500-001.sip.ld -o lftp.ld" >/dev/null
same lftp.ld tree/firmware/3111-44500-001.sip.ld "lftp get"
expect_contains "lftp ls" "3111-44500-001.sip.ld" "$(lftp_run "cd firmware; ls")"
printf 'lftp line\n' > lftp.log
lftp_run "put lftp.log -o 0004f2aabbcc-boot.log" >/dev/null
c -o got-lftp.log "$ftp/0004f2aabbcc-boot.log"
same got-lftp.log lftp.log "lftp put of a boot log"
lftp_tls=$(timeout 60 lftp -e "set ftp:ssl-force yes; set ssl:verify-certificate no; \
  set net:max-retries 1; get firmware/3111-44500-001.sip.ld -o lftp-tls.ld; bye" \
  -u "$creds" "127.0.0.1:$FTP_PORT" 2>&1)
same lftp-tls.ld tree/firmware/3111-44500-001.sip.ld "lftp over explicit FTPS"

# ---- a Poly phone on implicit FTPS: no PBSZ/PROT, TLS data connection, no session reuse ----
POLY=${POLY_FTPS_CLIENT:-$(dirname "$SITERELAY")/tests/poly_ftps_client}
if [[ -x $POLY ]]; then
  poly() { timeout 60 "$POLY" "$@"; }
  poly --user PlcmSpIp --password PlcmSpIp 127.0.0.1 "$FTPS_PORT" \
    get firmware/3111-44500-001.sip.ld poly.ld
  same poly.ld tree/firmware/3111-44500-001.sip.ld "phone-like client: implicit FTPS RETR"
  poly --user PlcmSpIp --password PlcmSpIp 127.0.0.1 "$FTPS_PORT" append app1.log 0004f2aabbdd-app.log
  poly --user PlcmSpIp --password PlcmSpIp 127.0.0.1 "$FTPS_PORT" append app2.log 0004f2aabbdd-app.log
  c -o poly.log "$ftp/0004f2aabbdd-app.log"
  same poly.log app12.log "phone-like client: a log appended twice"
  poly --user PlcmSpIp --password PlcmSpIp 127.0.0.1 "$FTPS_PORT" put phone.cfg 0004f2aabbdd-web.cfg
  poly --user PlcmSpIp --password PlcmSpIp 127.0.0.1 "$FTPS_PORT" get 0004f2aabbdd-web.cfg poly.cfg
  same poly.cfg phone.cfg "phone-like client: settings stored and read back"
  poly --user PlcmSpIp --password PlcmSpIp 127.0.0.1 "$FTPS_PORT" put app1.log firmware.ld \
    2>/dev/null
  expect_eq "phone-like client: a refused name is an FTP error" 1 "$?"
  # A TCP close without close_notify: the upload may be cut short, so it fails.
  poly --user PlcmSpIp --password PlcmSpIp --no-close-notify 127.0.0.1 "$FTPS_PORT" \
    put phone.cfg 0004f2aabbdd-local.cfg 2>/dev/null
  expect_eq "upload without close_notify fails" 1 "$?"
  expect_eq "... and stores nothing" 22 \
    "$(c -u "$creds" -f -o /dev/null "http://127.0.0.1:$HTTP_PORT/0004f2aabbdd-local.cfg"; echo $?)"
else
  fail "the phone-like client $POLY is not built"
fi

# ---- raw control lines: refusals ----
# ftp_raw LINE...: one control session on the plain port; prints every reply line.
ftp_raw() {
  exec 3<>"/dev/tcp/127.0.0.1/$FTP_PORT"
  local line reply
  IFS= read -r -t 10 reply <&3 && printf '%s\n' "${reply%$'\r'}"
  for line in "$@"; do
    printf '%s\r\n' "$line" >&3
    while IFS= read -r -t 10 reply <&3; do
      printf '%s\n' "${reply%$'\r'}"
      [[ $reply =~ ^[0-9]{3}\  ]] && break
    done
  done
  exec 3<&- 3>&-
}
out=$(ftp_raw "USER PlcmSpIp" "PASS PlcmSpIp" "PORT 10,9,8,7,4,1" "EPRT |1|10.9.8.7|1025|")
expect_contains "PORT to another address is refused" "504 Data connections go to your own" \
  "$(grep '^504' <<<"$out" | head -n 1)"
expect_eq "EPRT to another address is refused too" 2 "$(grep -c '^504' <<<"$out")"
out=$(ftp_raw "USER PlcmSpIp" "PASS PlcmSpIp" "CWD ../.." "SIZE ../etc/passwd" \
  "SIZE /%2e%2e/x" "RETR ..\\..\\x")
expect_eq "traversal is refused, never resolved" 3 "$(grep -c '^550 Permission denied' <<<"$out")"
out=$(ftp_raw "RETR 000000000000.cfg" "SITE CHMOD 777 x" "USER PlcmSpIp" "PASS PlcmSpIp" "SITE CHMOD 777 x" \
  "FEAT")
expect_contains "commands before login are refused" "530 Please login" "$out"
expect_contains "unknown commands are 502" "502 Command not implemented" "$out"
expect_contains "FEAT offers AUTH TLS" " AUTH TLS" "$out"
expect_contains "FEAT offers MLST" " MLST type*;size*;modify*;perm*;" "$out"
t0=$(date +%s%N)
out=$(ftp_raw "USER PlcmSpIp" "PASS wrong" "USER PlcmSpIp" "PASS wrong2" "USER PlcmSpIp" \
  "PASS wrong3")
ms=$((($(date +%s%N) - t0) / 1000000))
expect_eq "three bad logins: three 530s" 3 "$(grep -c '^530 Login incorrect' <<<"$out")"
[[ $ms -ge 1500 ]] && pass || fail "failed logins slow down: three took only ${ms} ms"
if grep -q 'wrong' serve.log; then fail "a password reached the log"; else pass; fi
out=$(ftp_raw "USER PlcmSpIp" "PASS PlcmSpIp" "PWD")
expect_contains "a good login after bad ones still works" "230 Login successful" "$out"

stop_relay
expect_eq "SIGTERM exit code" 0 "$STOP_RC"
if grep -E ' (warn|error) ' serve.log | grep -v -E 'login as|another address|close_notify|refused' \
    >&2; then
  fail "unexpected warnings in the log (above)"
else
  pass
fi
finish
