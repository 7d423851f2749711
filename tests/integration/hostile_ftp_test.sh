#!/usr/bin/env bash
# Hostile FTP clients against the real binary (issue 11): command lines at and past their limits
# (and a client that pipelines without ever reading its replies), every command before login,
# PORT/EPRT to third parties and privileged ports and a thief at a passive port (beyond the two
# bounces ftp_test.sh tries), one address hoarding the passive range while fresh clients are
# served, parallel password guessing against the per-address backoff, TLS downgrades on explicit
# FTPS (other AUTH mechanisms, PROT before PBSZ, CCC, a command smuggled behind AUTH TLS) and
# plaintext on the implicit-TLS port while a real implicit client is served. After the battery
# the relay still serves a known file byte-exact, its fd count is back to where it started and
# its peak resident set is bounded. Raw lines come from hostile_ftp.py (python3, standard
# library), real clients are curl and lftp. About 20 s.
source "$(dirname "$0")/lib.sh"
SITERELAY=$(realpath "$SITERELAY")
HOSTILE=$(realpath "$(dirname "$0")/hostile_ftp.py")
cd "$WORK" || exit 1
# Whatever happens, no relay or hostile client outlives the script (lib.sh's trap only removes
# $WORK).
trap 'kill ${RELAY_PID:-} ${brute_pid:-} ${hoard_pid:-} 2>/dev/null; rm -rf "$WORK"' EXIT
t_start=$(date +%s%N)

mkdir tree
printf '<APPLICATION APP_FILE_PATH="sip.ld"/>\n' > tree/000000000000.cfg
head -c 300000 /dev/urandom > tree/sip.ld
write_config relay.toml \
  "[[account]]
user = \"PlcmSpIp\"
password = \"PlcmSpIp\"
root = \"/\""
# Both FTP listeners on ports the kernel picks, and a passive range of 21 ports of our own.
PASSIVE_LO=$(pick_port)
while ((PASSIVE_LO > 59900)); do PASSIVE_LO=$(pick_port); done
PASSIVE_HI=$((PASSIVE_LO + 20))
sed -i "/^\[ftp\]$/,/^implicit_tls_listen/c\\
[ftp]\\
listen = [\"127.0.0.1:0\"]\\
implicit_tls_listen = [\"127.0.0.1:0\"]\\
passive_ports = [$PASSIVE_LO, $PASSIVE_HI]" relay.toml
"$SITERELAY" import tree --config relay.toml > /dev/null || { echo "FAIL: import" >&2; exit 1; }
start_relay relay.toml
FTP_PORT=$(sed -n 's|.*phones: ftp://[^ ]*:\([0-9]*\)/ .*|\1|p' serve.log | head -n 1)
FTPS_PORT=$(sed -n 's|.*phones: ftps://[^ ]*:\([0-9]*\)/ .*|\1|p' serve.log | head -n 1)
[[ -n $FTP_PORT && -n $FTPS_PORT ]] || { echo "FAIL: no ftp listeners" >&2; cat serve.log >&2; exit 1; }
export FTP_PORT FTPS_PORT PASSIVE_LO PASSIVE_HI TREE="$WORK/tree" RELEASE="$WORK/release"
creds=PlcmSpIp:PlcmSpIp
same() { cmp -s "$1" "$2" && pass || fail "$3: bytes differ"; }
c() { curl -s --max-time 30 "$@"; }
c -o warm.ld "ftp://$creds@127.0.0.1:$FTP_PORT/sip.ld"  # warm: the fd count includes what stays
baseline_fds=$(fds)

# relay_listeners: how many TCP sockets of the relay listen on ports of the passive range (its own
# sockets only: other programs on this machine may hold ports there).
relay_listeners() {
  local -A mine=()
  local link inode sl local_addr rem st n=0
  for link in /proc/"$RELAY_PID"/fd/*; do
    inode=$(readlink "$link") && [[ $inode == socket:* ]] && mine[${inode//[^0-9]/}]=1
  done
  while read -r sl local_addr rem st _ _ _ _ _ inode _; do
    [[ $st == 0A && -n ${mine[$inode]:-} ]] || continue
    local port=$((16#${local_addr##*:}))
    ((port >= PASSIVE_LO && port <= PASSIVE_HI)) && n=$((n + 1))
  done < <(tail -n +2 /proc/net/tcp)
  echo "$n"
}

declare -A tried
# absorb CATEGORY: turns the lines hostile_ftp.py wrote to CATEGORY.out into checks and counts.
absorb() {
  local kind rest
  while read -r kind rest; do
    case $kind in
      ok) pass ;;
      fail) fail "$rest" ;;
      count) tried[${rest%% *}]=${rest#* } ;;
      info) echo "$rest" ;;
      held) ;;
      *) fail "hostile_ftp.py $1: $kind $rest" ;;
    esac
  done < "$1.out"
  [[ -n ${tried[$1]:-} ]] || fail "hostile_ftp.py $1 did not finish: $(tail -n 3 "$1.out")"
}
hostile() {
  python3 "$HOSTILE" "$1" > "$1.out" 2>&1
  absorb "$1"
}

# Password guessing runs meanwhile (about 8 s): from addresses of its own, so the backoff it
# earns slows nothing below.
python3 "$HOSTILE" bruteforce > bruteforce.out 2>&1 &
brute_pid=$!

hostile overlong
hostile prelogin
expect_eq "no passive port opened before login" 0 "$(relay_listeners)"
hostile bounce
hostile tls

# Plaintext on the implicit-TLS port, 180 connections, while curl fetches over implicit FTPS.
python3 "$HOSTILE" implicit > implicit.out 2>&1 &
implicit_pid=$!
c -k -o implicit.ld "ftps://$creds@127.0.0.1:$FTPS_PORT/sip.ld"
same implicit.ld tree/sip.ld "curl over implicit FTPS during the plaintext flood"
wait "$implicit_pid"
absorb implicit

# One address hoards the passive range: 60 sessions, 300 PASV/EPSV, never connecting. Fresh
# clients at other addresses are served all the same (an unused port of the hoarder's goes to
# them), and the relay never listens on more ports than the range has.
: > passive.out
python3 "$HOSTILE" passive > passive.out 2>&1 &
hoard_pid=$!
for _ in $(seq 1 300); do grep -q '^held' passive.out && break; sleep 0.1; done
grep -q '^held' passive.out && pass || fail "the hoarder did not get going: $(tail -n 3 passive.out)"
held=$(relay_listeners)
((held > 0 && held <= PASSIVE_HI - PASSIVE_LO + 1)) && pass ||
  fail "$held passive listeners while hoarded, the range has 21"
echo "passive: the relay listened on $held ports of the range of 21 while hoarded"
c --interface 127.0.0.2 -o fresh-epsv.ld "ftp://$creds@127.0.0.1:$FTP_PORT/sip.ld"
same fresh-epsv.ld tree/sip.ld "a fresh client (EPSV) while the range is hoarded"
c --interface 127.0.0.3 --disable-epsv -o fresh-pasv.ld "ftp://$creds@127.0.0.1:$FTP_PORT/sip.ld"
same fresh-pasv.ld tree/sip.ld "a fresh client (PASV) while the range is hoarded"
timeout 30 lftp -e "set ftp:ssl-force yes; set ssl:verify-certificate no; set net:max-retries 1; \
  set net:socket-bind-ipv4 127.0.0.4; get sip.ld -o fresh-lftp.ld; bye" \
  -u "$creds" "127.0.0.1:$FTP_PORT" > lftp.out 2>&1
same fresh-lftp.ld tree/sip.ld "lftp over explicit FTPS while the range is hoarded"
touch "$RELEASE"
wait "$hoard_pid"
absorb passive

wait "$brute_pid"
absorb bruteforce
if grep -q 'guess' serve.log; then  # the guessed passwords are guess, guess0 ... guess3
  fail "a guessed password reached the log"
else
  pass
fi

# After the battery.
kill -0 "$RELAY_PID" 2>/dev/null && pass || fail "the relay died"
c -o after.ld "ftp://$creds@127.0.0.1:$FTP_PORT/sip.ld"
same after.ld tree/sip.ld "a known file after the battery"
expect_relay_as_before "$baseline_fds" 100
peak=$PEAK_KIB
stop_relay
expect_eq "SIGTERM exit code" 0 "$STOP_RC"
secs=$((($(date +%s%N) - t_start) / 1000000000))
echo "hostile_ftp: ${tried[overlong]:-0} overlong or odd lines, ${tried[prelogin]:-0} commands" \
  "before login, ${tried[bounce]:-0} bounce and theft attempts, ${tried[passive]:-0} hoarded" \
  "PASV/EPSV, ${tried[bruteforce]:-0} guessed logins, ${tried[tls]:-0} TLS downgrades," \
  "${tried[implicit]:-0} plaintext connections to implicit FTPS; peak RSS ${peak} KiB;" \
  "fds ${baseline_fds}; ${secs} s"
finish
