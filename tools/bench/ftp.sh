#!/usr/bin/env bash
# Benchmarks the FTP side of `siterelay serve` against vsftpd on loopback.
#
# FTP with user and password PlcmSpIp is a Poly phone's factory default, so a relay that replaces
# a branch's FTP server carries every phone's firmware over FTP or FTPS after a power cut. This
# script starts the relay and vsftpd in the same run, both serving the same generated files, and
# measures with curl, interleaved round by round:
#   1. one 200 MiB image (--quick: 8 MiB) over plain FTP, passive, relay against vsftpd,
#   2. the same image over explicit FTPS (AUTH TLS, then PBSZ 0 and PROT P: curl --ssl-reqd),
#      relay against vsftpd,
#   3. 100 sessions at once (--quick: 10), each a RETR of a 1 MiB file from the relay over plain
#      FTP, each byte-exact,
# and reports the medians of the MB/s (wall clock of one curl process, login and handshakes
# included), the relay/vsftpd ratios and the relay's peak resident set (VmHWM) over the whole
# run. Targets (issue 9): relay/vsftpd >= 1.0 over FTP, >= 2.0 over FTPS, relay peak RSS
# < 64 MiB. The last lines are RESULT lines for tools/bench/run (lib.sh's bench_result), in
# --quick too.
#
# Fairness. Both servers run pinned to CPU 0 (taskset -c 0; vsftpd's session processes inherit
# it) and every curl to CPU 1, so the client never competes with the server under test. Both
# serve the same bytes from a warm page cache (vsftpd from the generated tree, the relay from its
# object store, into which the tree is imported first), over TLS with the same self-signed
# RSA-2048 certificate made with openssl in the work directory, and both log one line per
# transfer to a file in the work directory. Only one server is loaded at a time. curl runs with
# its defaults but for -k (the throwaway certificate): EPSV, CWD into the image's folder, and
# over FTPS it offers the control connection's TLS session on the data connection, which either
# server may take or not. The timed transfers go to /dev/null and are checked for their size:
# writing 200 MiB into a file and hashing it would load the client's CPU more than either server
# loads its own, and the figures would measure the client. The untimed warm-up transfer of each
# server and mode, and every concurrent session, is checked by sha256. A wrong or failed
# transfer fails the benchmark.
#
# Over FTPS curl starts its TLS handshake on the data connection as soon as that connects, right
# after EPSV and before TYPE I, SIZE and RETR. vsftpd answers it only once RETR has come, and
# until then curl sends its next command about 0.2 s late (curl --trace-time shows it; vsftpd
# itself answers at once). A server that completes the handshake when the data connection
# arrives does not pay it (tried with a stand-in server: 8 MiB went from ~25 to ~80 MB/s). That
# is part of what is measured, as phones run curl; it weighs on every FTPS transfer, most on the
# 8 MiB image of --quick.
#
# vsftpd (Debian's 3.0.3) runs from its own vsftpd.conf in the work directory, in the foreground
# (listen=YES without background=YES), and otherwise as shipped: one unprivileged process per
# session beside its privileged helper, sendfile(2) for plain downloads, its built-in TLS cipher
# list (Debian's ECDHE-RSA-AES256-GCM-SHA384 for TLS 1.2; OpenSSL's TLS 1.3 suites), session
# isolation and the seccomp sandbox. The settings that differ from its defaults, and why:
#   listen=YES, listen_address=127.0.0.1, listen_port=<random free port>
#                      standalone on loopback only, on a port this script picks
#   anonymous_enable=YES, anon_root=<the tree>
#                      a login rooted at the generated files without a system account
#                      (anonymous logins are off by default; as root vsftpd chroots into the
#                      tree and serves it as the 'ftp' user)
#   pasv_min_port, pasv_max_port
#                      passive ports from a free range below the ephemeral ports, apart from
#                      the relay's
#   ssl_enable=YES, allow_anon_ssl=YES, rsa_cert_file, rsa_private_key_file
#                      AUTH TLS for measurement 2, for the anonymous login too, with the
#                      certificate the relay serves; plain FTP stays allowed (force_anon_*_ssl
#                      are off by default) for measurement 1
#   require_ssl_reuse=NO
#                      vsftpd otherwise requires the data connection to resume the control
#                      connection's TLS session; the contract never requires it of the relay
#                      (phones do not resume), so neither server does here
#   xferlog_enable=YES, vsftpd_log_file=<work dir>/vsftpd/vsftpd.log
#                      one line per transfer, as the relay logs (Debian's sample config turns
#                      xferlog on too), kept in the work directory
#   secure_chroot_dir=<work dir>/vsftpd/empty
#                      the default, /var/run/vsftpd/empty, is made at boot by systemd-tmpfiles
#                      (the package's tmpfiles.d entry) and is missing where /run was cleared
#                      without it, as in a container
#   run_as_launching_user=YES (only when the script is not run as root)
#                      vsftpd refuses to start as any other user otherwise; then it serves the
#                      tree by its path, without chroot
#
# The relay: [ftp] listen on 127.0.0.1, any free port, which it announces in its log as
# `phones: ftp://127.0.0.1:PORT/`; passive_ports from a free range apart from vsftpd's; one
# [[account]] PlcmSpIp/PlcmSpIp with root "/"; [tls] the script's certificate, so that AUTH TLS
# is offered.
#
# Nothing leaves the machine: both servers listen on 127.0.0.1 only. Every transfer runs under
# timeout(1) and the trap stops both servers however the script ends. A full run takes under a
# minute and needs about 650 MiB in the work directory, --quick a few seconds.
#
# usage: tools/bench/ftp.sh [--quick] [--runs N] [--binary PATH] [--check]
# Exit: 0 done (targets are reported, not enforced); 1 a target failed under --check;
#       2 usage error, missing tool, a failed command, or a server failed (crashed, or a transfer
#       failed or came back with wrong bytes).
set -euo pipefail
export LC_ALL=C  # '.' as the decimal separator in awk and printf.

readonly kTargetPlainRatio=1.0  # relay MB/s / vsftpd MB/s, plain FTP, at least
readonly kTargetTlsRatio=2.0    # relay MB/s / vsftpd MB/s, explicit FTPS (PROT P), at least
readonly kTargetRssMiB=64       # peak resident set of the relay during the run, below
readonly kMiB=$((1 << 20))
readonly kSmallBytes=$kMiB
readonly kTransferSeconds=120   # for one transfer, or for all concurrent ones
readonly kServerCpu=0
readonly kClientCpu=1
readonly kUser=PlcmSpIp         # the relay's account: a Poly phone's factory default
readonly kPassword=PlcmSpIp
readonly kVsftpdPasvPorts=50    # vsftpd's passive range: one transfer at a time
readonly kRelayPasvSlack=50     # the relay's: one port per concurrent session, and this many more

usage() {
  cat <<EOF
usage: $0 [--quick] [--runs N] [--binary PATH] [--check]

  --quick         CI mode: 8 MiB image, 1 run, 10 concurrent sessions; targets not judged
  --runs N        rounds of every measurement, interleaved; the median is reported
                  (default 3; --quick: 1)
  --binary PATH   siterelay binary (default: $repo_root/build/siterelay)
  --check         exit 1 when a target fails (default: report only)

Needs vsftpd, curl, openssl, taskset and at least 2 CPUs; tools/install-deps installs them.
Work directory: a fresh one under \${TMPDIR:-/tmp}, removed at the end (kept, with the servers'
logs, when a server failed).
EOF
}

bench_name=ftp.sh
# shellcheck source=tools/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_parse_options "$@"

if ((quick)); then
  big_bytes=$((8 * kMiB))
  concurrent=10
  : "${runs:=1}"
else
  big_bytes=$((200 * kMiB))
  concurrent=100
  : "${runs:=3}"
fi
bench_positive --runs "$runs"

# ---- prerequisites ----------------------------------------------------------------------------

bench_need_tools curl:curl taskset:util-linux openssl:openssl ss:iproute2 timeout:coreutils \
  pgrep:procps
# Debian installs vsftpd in /usr/sbin, which is not on a normal user's PATH.
vsftpd=$(PATH="$PATH:/usr/sbin:/sbin" command -v vsftpd) || missing_tool vsftpd vsftpd
(($(nproc) >= 2)) || die "needs 2 CPUs (servers on CPU $kServerCpu, clients on CPU $kClientCpu)"
bench_resolve_binary

bench_work_dir "relay.log, vsftpd/vsftpd.log, vsftpd/stderr.log"
vsftpd_pid=
# shellcheck disable=SC2317  # run by lib.sh's trap
bench_cleanup_own() {
  [[ -n $vsftpd_pid ]] || return 0
  # The listener, then any session still running (its children, by their ids).
  local sessions
  sessions=$(pgrep -P "$vsftpd_pid" || true)
  kill -TERM "$vsftpd_pid" 2>/dev/null || true
  wait_gone "$vsftpd_pid" "$kStopSeconds" || kill -KILL "$vsftpd_pid" 2>/dev/null || true
  wait "$vsftpd_pid" 2>/dev/null || true
  # shellcheck disable=SC2086  # one pid a word
  [[ -z $sessions ]] || kill -KILL $sessions 2>/dev/null || true
  vsftpd_pid=
}

# ---- the files --------------------------------------------------------------------------------

# Contents are keystream (bench_keystream): the same bytes on every machine, and incompressible.
tree="$work/tree"
big_path=firmware/3111-48300-001.sip.ld
small_path=firmware/3111-48300-001.bootrom.ld
mkdir -p "$tree/firmware" "$work/out"
echo "generating a $((big_bytes / kMiB)) MiB image and a $((kSmallBytes / kMiB)) MiB file ..." >&2
bench_keystream "$big_bytes" 0 >"$tree/$big_path"
bench_keystream "$kSmallBytes" 1 >"$tree/$small_path"
# vsftpd serves anonymous logins only world-readable files (anon_world_readable_only).
chmod -R a+rX "$tree"
big_sha=$(sha256sum "$tree/$big_path" | cut -d' ' -f1)
small_sha=$(sha256sum "$tree/$small_path" | cut -d' ' -f1)

cert="$work/cert.pem"
cert_key="$work/key.pem"
echo "making a self-signed RSA-2048 certificate for 127.0.0.1 ..." >&2
timeout 60 openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 \
  -keyout "$cert_key" -out "$cert" -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$work/openssl-req.log" 2>&1 ||
  { cat "$work/openssl-req.log" >&2; die "openssl req failed; output above"; }

# ---- ports ------------------------------------------------------------------------------------

# Passive ranges (and vsftpd's control port) come from below the ephemeral ports, so that no
# client's own port can be sitting in them. A free port cannot be reserved: a range counts as
# free when nothing listens or is connected on it now.
read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range
((ephemeral_low > 12000)) || ephemeral_low=32768
port_range_free() {  # low, high
  ! ss -Htan "( sport >= :$1 and sport <= :$2 )" | grep -q .
}
# Prints the low end of a free range of $1 ports that does not overlap $2..$3.
pick_range() {  # count, avoid low, avoid high
  local attempt low
  for ((attempt = 0; attempt < 50; attempt++)); do
    low=$((10000 + RANDOM % (ephemeral_low - 10000 - $1)))
    ((low + $1 - 1 < $2 || low > $3)) || continue
    port_range_free "$low" $((low + $1 - 1)) && { echo "$low"; return 0; }
  done
  die "found no free range of $1 ports below $ephemeral_low"
}
relay_pasv_low=$(pick_range $((concurrent + kRelayPasvSlack)) 0 0)
relay_pasv_high=$((relay_pasv_low + concurrent + kRelayPasvSlack - 1))
# vsftpd's control port is the port just below its passive range.
vsftpd_pasv_low=$(pick_range $((kVsftpdPasvPorts + 1)) "$relay_pasv_low" "$relay_pasv_high")
vsftpd_pasv_low=$((vsftpd_pasv_low + 1))
vsftpd_pasv_high=$((vsftpd_pasv_low + kVsftpdPasvPorts - 1))

# ---- siterelay --------------------------------------------------------------------------------

config="$work/relay.toml"
cat >"$config" <<EOF
# Written by tools/bench/ftp.sh: phones over FTP (AUTH TLS with the certificate below) and the
# admin port on loopback, any free port.
data_dir = '$work/data'
$(bench_relay_listeners ftp "passive_ports = [$relay_pasv_low, $relay_pasv_high]")
[tls]
cert = '$cert'
key = '$cert_key'

[[account]]
user = "$kUser"
password = "$kPassword"
root = "/"
EOF
echo "importing into the relay's cache ..." >&2
"$relay" import "$tree" --config "$config" >"$work/import.log" 2>&1 ||
  { cat "$work/import.log" >&2; die "siterelay import failed; output above"; }
start_relay "$work/relay.log" ftp
taskset -a -p -c "$kServerCpu" "$relay_pid" >/dev/null

# ---- vsftpd -----------------------------------------------------------------------------------

vsftpd_dir="$work/vsftpd"
mkdir -p "$vsftpd_dir/empty"
chmod 755 "$vsftpd_dir/empty"
# Writes vsftpd.conf for control port $1: only the settings the header lists.
write_vsftpd_conf() {  # port
  {
    echo "# Written by tools/bench/ftp.sh: what differs from vsftpd's defaults (see its header)."
    cat <<EOF
listen=YES
listen_address=127.0.0.1
listen_port=$1
anonymous_enable=YES
anon_root=$tree
pasv_min_port=$vsftpd_pasv_low
pasv_max_port=$vsftpd_pasv_high
ssl_enable=YES
allow_anon_ssl=YES
rsa_cert_file=$cert
rsa_private_key_file=$cert_key
require_ssl_reuse=NO
xferlog_enable=YES
vsftpd_log_file=$vsftpd_dir/vsftpd.log
secure_chroot_dir=$vsftpd_dir/empty
EOF
    (($(id -u) == 0)) || echo "run_as_launching_user=YES"
  } >"$vsftpd_dir/vsftpd.conf"
}

# Starts vsftpd on the port just below its passive range, or, when that one is taken by the
# time it binds, on a few other ports; it is up once it listens. Sets vsftpd_pid, vsftpd_port.
start_vsftpd() {
  local attempt tenths port=$((vsftpd_pasv_low - 1))
  for ((attempt = 0; attempt < 10; attempt++)); do
    ((attempt == 0)) || port=$((10000 + RANDOM % (ephemeral_low - 10000)))
    ((port < vsftpd_pasv_low - 1 || port > vsftpd_pasv_high)) || continue
    ((port < relay_pasv_low || port > relay_pasv_high)) || continue
    ss -Htln "sport = :$port" | grep -q . && continue
    write_vsftpd_conf "$port"
    : >"$vsftpd_dir/stderr.log"
    taskset -c "$kServerCpu" "$vsftpd" "$vsftpd_dir/vsftpd.conf" >"$vsftpd_dir/stderr.log" 2>&1 &
    vsftpd_pid=$!
    tenths=$((kStartSeconds * 10))
    while ((tenths-- > 0)); do
      kill -0 "$vsftpd_pid" 2>/dev/null || break
      if ss -Htln "sport = :$port" | grep -q .; then
        vsftpd_port=$port
        return 0
      fi
      sleep 0.1
    done
    kill -KILL "$vsftpd_pid" 2>/dev/null || true
    wait "$vsftpd_pid" 2>/dev/null || true
    vsftpd_pid=
    grep -qi "bind" "$vsftpd_dir/stderr.log" || break
  done
  cat "$vsftpd_dir/stderr.log" >&2
  die "vsftpd did not start with $vsftpd_dir/vsftpd.conf; its output above"
}
vsftpd_port=
start_vsftpd

# ---- transfers --------------------------------------------------------------------------------

# curl's options per mode: plain FTP, or explicit FTPS with PROT P (--ssl-reqd: AUTH TLS, and
# fail rather than fall back to plain), trusting the throwaway certificate.
curl_mode_options() {  # plain|tls
  if [[ $1 == tls ]]; then echo "--ssl-reqd -k"; fi
}
server_url() {  # relay|vsftpd
  if [[ $1 == relay ]]; then
    echo "ftp://$kUser:$kPassword@127.0.0.1:$relay_port"
  else
    echo "ftp://anonymous:bench@127.0.0.1:$vsftpd_port"
  fi
}

# Fetches URL $1 into $2 with curl on the client CPU, over mode $3.
fetch() {  # url, local file, plain|tls
  local mode_options
  read -r -a mode_options <<<"$(curl_mode_options "$3")"
  timeout --kill-after=5 "$kTransferSeconds" taskset -c "$kClientCpu" \
    curl -sS --ftp-pasv ${mode_options[@]+"${mode_options[@]}"} -o "$2" "$1" \
      -w '%{size_download}'
}

# A failed or wrong transfer: from the relay, keep the work directory and fail; from vsftpd,
# fail too (its figures would be meaningless).
server_failed() {  # server, message
  if [[ $1 == relay ]]; then relay_failed "$2"; fi
  keep_work=1
  die "$1: $2 (logs in $work)"
}

# One transfer of the big file: server (relay|vsftpd), mode (plain|tls), and "verify" to write
# it to a file and check its sha256 (untimed) rather than time it into /dev/null with a size
# check. Prints MB/s.
measure() {
  local server=$1 mode=$2 verify=${3:-} out t0 t1 err got
  out=/dev/null
  [[ -n $verify ]] && out="$work/out/big.$server"
  t0=$(date +%s%N)
  err=$(fetch "$(server_url "$server")/$big_path" "$out" "$mode" 2>&1) ||
    server_failed "$server" "curl failed (exit $?; 124: hung) on $big_path over $mode: $err"
  t1=$(date +%s%N)
  if [[ -n $verify ]]; then
    got=$(sha256sum "$out" | cut -d' ' -f1)
    [[ $got == "$big_sha" ]] ||
      server_failed "$server" "$big_path over $mode came back with sha256 $got," \
        "$(stat -c %s "$out") bytes (want $big_sha, $big_bytes bytes)"
    rm -f "$out"
  elif [[ $err != "$big_bytes" ]]; then
    server_failed "$server" "$big_path over $mode came back with $err bytes (want $big_bytes)"
  fi
  awk -v b="$big_bytes" -v ns=$((t1 - t0)) 'BEGIN {printf "%.1f\n", b / (ns / 1e9) / 1e6}'
}

# Warm-up: one transfer from each server in each mode checks it and warms the page cache (the
# relay wrote its objects with O_DIRECT, so they are not in it yet).
echo "checking and warming the servers ..." >&2
for server in relay vsftpd; do
  measure "$server" plain verify >/dev/null
  measure "$server" tls verify >/dev/null
done

declare -a relay_plain=() vsftpd_plain=() relay_tls=() vsftpd_tls=()
for ((r = 1; r <= runs; r++)); do
  echo "round $r/$runs ..." >&2
  order=(relay vsftpd)
  if ((r % 2 == 0)); then order=(vsftpd relay); fi
  for mode in plain tls; do
    for server in "${order[@]}"; do
      declare -n results="${server}_$mode"
      results+=("$(measure "$server" "$mode")")
      unset -n results
    done
  done
done

# $concurrent sessions at once, each a RETR of the small file from the relay, every one
# byte-exact.
echo "$concurrent sessions at once from the relay ..." >&2
declare -a pids=()
t0=$(date +%s%N)
for ((i = 0; i < concurrent; i++)); do
  fetch "$(server_url relay)/$small_path" "$work/out/small.$i" plain \
    >"$work/out/small.$i.log" 2>&1 &
  pids+=("$!")
done
failed=0
for ((i = 0; i < concurrent; i++)); do
  wait "${pids[i]}" || { failed=$((failed + 1)); echo "session $i: exit $?" >>"$work/out/failed"; }
done
t1=$(date +%s%N)
concurrent_seconds=$(awk -v ns=$((t1 - t0)) 'BEGIN {printf "%.2f", ns / 1e9}')
wrong=0
for ((i = 0; i < concurrent; i++)); do
  got=$(sha256sum "$work/out/small.$i" 2>/dev/null | cut -d' ' -f1) || got=
  [[ $got == "$small_sha" ]] || wrong=$((wrong + 1))
done
if ((failed || wrong)); then
  cat "$work/out/failed" "$work"/out/small.*.log >&2 2>/dev/null || true
  relay_failed "$concurrent sessions at once: $failed failed, $wrong with wrong bytes"
fi
rm -f "$work"/out/small.*

kill -0 "$relay_pid" 2>/dev/null || relay_failed "the relay died during the run"
rss_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$relay_pid/status")

# ---- header -----------------------------------------------------------------------------------

# One AUTH TLS handshake with openssl s_client's default settings, verifying the certificate:
# "TLSv1.3 TLS_AES_256_GCM_SHA384, X25519, ..." for port $1.
tls_negotiated() {
  local out
  out=$(timeout 10 openssl s_client -starttls ftp -connect "127.0.0.1:$1" -brief \
    -CAfile "$cert" -verify_return_error </dev/null 2>&1) ||
    { echo "handshake failed: $(tail -n 1 <<<"$out")"; return; }
  awk -F': ' '
    $1 == "Protocol version" { p = $2 }
    $1 == "Ciphersuite" { c = $2 }
    $1 ~ /Temp Key$/ { k = $2; sub(/,.*/, "", k) }
    $1 == "Verification" { v = $2 }
    END { printf "%s %s, %s, certificate verification %s", p, c, k, (v == "" ? "?" : v) }' <<<"$out"
}
vsftpd_negotiated=$(tls_negotiated "$vsftpd_port")
[[ $vsftpd_negotiated == TLS* ]] ||
  die "openssl s_client -starttls ftp against vsftpd: $vsftpd_negotiated"
relay_negotiated=$(tls_negotiated "$relay_port")
[[ $relay_negotiated == TLS* ]] ||
  relay_failed "openssl s_client -starttls ftp against the relay: $relay_negotiated"

bench_relay_facts "$work"
# It prints "vsftpd: version 3.0.3" to its standard input.
vsftpd_version=$("$vsftpd" -v 0>&1 2>/dev/null | sed -n 's/^vsftpd: version /vsftpd /p' || true)
vsftpd_package=$(dpkg-query -W -f='${Version}' vsftpd 2>/dev/null || echo unknown)
curl_version=$(curl --version 2>/dev/null | head -n 1 | awk '{print $1, $2, $4}' || true)

stop_relay
bench_cleanup_own
# One "OK DOWNLOAD" line a vsftpd transfer: warm-up and rounds; anything else spoils its figures.
vsftpd_expected=$((2 + 2 * runs))
vsftpd_transfers=$(grep -c 'OK DOWNLOAD' "$vsftpd_dir/vsftpd.log" 2>/dev/null || true)
((vsftpd_transfers == vsftpd_expected)) ||
  server_failed vsftpd "its log has $vsftpd_transfers downloads for $vsftpd_expected made"
read -r log_warnings < <(awk '$2 ~ /^(warn|warning|error|fatal)$/ { w++ }
  END { printf "%d\n", w }' "$relay_log")
# One "ftp RETR <path> <reply code> <bytes> <ms>ms <ip> ..." line a relay transfer ("ftps" over
# TLS), 226 when it went through: warm-up, rounds, concurrent sessions.
expected_done=$((2 + 2 * runs + concurrent))
read -r log_done log_other < <(awk '($3 == "ftp" || $3 == "ftps") && $4 == "RETR" {
    if ($6 == 226) d++; else o++
  } END { printf "%d %d\n", d, o }' "$relay_log")
if ((log_warnings)); then
  echo "--- the relay's warning/error lines (first 5):" >&2
  awk '$2 ~ /^(warn|warning|error|fatal)$/' "$relay_log" | head -n 5 >&2
fi

echo "# siterelay FTP benchmark (siterelay serve vs. vsftpd, same files and certificate," \
  "loopback)"
bench_machine_lines
echo "vsftpd:     ${vsftpd_version:-vsftpd} (Debian $vsftpd_package), anonymous login rooted" \
  "at the tree, one process per session, sendfile for plain FTP, shipped TLS ciphers," \
  "require_ssl_reuse=NO; config: see the script's header"
echo "client:     $curl_version, --ftp-pasv (EPSV), over FTPS --ssl-reqd -k (AUTH TLS," \
  "PROT P); one process a transfer"
echo "siterelay:  $relay_version ($binary, sha256 $relay_sha; source $source_rev), one event loop"
echo "tls:        one self-signed RSA-2048 certificate for both servers; $(openssl version)"
echo "negotiated: (openssl s_client -starttls ftp) relay: $relay_negotiated;" \
  "vsftpd: $vsftpd_negotiated"
echo "cpus:       servers pinned to CPU $kServerCpu, clients to CPU $kClientCpu (taskset)"
echo "files:      $big_path $big_bytes bytes ($((big_bytes / kMiB)) MiB), $small_path" \
  "$kSmallBytes bytes; page cache warm; work dir $work ($fs_type)"
echo "runs:       $runs round(s), order alternating; median reported; MB/s = 10^6 bytes over" \
  "the curl process's wall clock into /dev/null, size checked; warm-up transfers and" \
  "concurrent sessions checked by sha256"
if ((quick)); then
  echo "note:       --quick checks that the benchmark runs; an 8 MiB image is too small for the" \
    "targets to mean much"
fi
echo

median() { bench_median 1 "$@"; }
med_relay_plain=$(median "${relay_plain[@]}")
med_vsftpd_plain=$(median "${vsftpd_plain[@]}")
med_relay_tls=$(median "${relay_tls[@]}")
med_vsftpd_tls=$(median "${vsftpd_tls[@]}")
row() {  # measurement, server, median, runs
  printf '%-34s %-10s %8s MB/s   %s\n' "$1" "$2" "$3" "$4"
}
printf '%-34s %-10s %13s   %s\n' measurement server median runs
row "image, plain FTP (passive)" siterelay "$med_relay_plain" "${relay_plain[*]}"
row "" vsftpd "$med_vsftpd_plain" "${vsftpd_plain[*]}"
row "image, explicit FTPS (PROT P)" siterelay "$med_relay_tls" "${relay_tls[*]}"
row "" vsftpd "$med_vsftpd_tls" "${vsftpd_tls[*]}"
echo

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
ratio_plain=$(ratio "$med_relay_plain" "$med_vsftpd_plain")
ratio_tls=$(ratio "$med_relay_tls" "$med_vsftpd_tls")
rss_mib=$(awk -v k="$rss_kib" 'BEGIN {printf "%.1f", k / 1024}')
line() { printf '%-46s %s\n' "$1:" "${*:2}"; }
line "relay / vsftpd (plain FTP)" "$ratio_plain"
line "relay / vsftpd (explicit FTPS, PROT P)" "$ratio_tls"
line "$concurrent sessions at once from the relay" \
  "all $concurrent byte-exact, $concurrent_seconds s wall clock"
line "relay peak RSS (VmHWM, whole run)" "$rss_mib MiB"
line "relay log" "$log_done transfers done ($expected_done expected), $log_other not done," \
  "$log_warnings warning/error line(s)"
line "vsftpd log" "$vsftpd_transfers downloads ($vsftpd_expected expected)"
((log_done == expected_done && log_other == 0)) ||
  relay_failed "its log has $log_done RETRs done, $log_other not, for $expected_done made"
echo

fail=0
ok_plain=$(bench_holds "$ratio_plain" ">=" "$kTargetPlainRatio")
ok_tls=$(bench_holds "$ratio_tls" ">=" "$kTargetTlsRatio")
ok_rss=$(bench_holds "$rss_mib" "<" "$kTargetRssMiB")
judge() { bench_judge 46 "target $1:" "$2" "$3"; }  # name, ok (1/0), shown value
judge "relay/vsftpd plain FTP >= $kTargetPlainRatio" "$ok_plain" "$ratio_plain"
judge "relay/vsftpd FTPS >= $kTargetTlsRatio" "$ok_tls" "$ratio_tls"
judge "relay peak RSS < $kTargetRssMiB MiB" "$ok_rss" "$rss_mib MiB"
printf '%-46s PASS\n' "check every transfer's bytes:"
echo
bench_result "FTP $((big_bytes / kMiB)) MiB image, plain (passive)" "$med_relay_plain" \
  "$med_vsftpd_plain" MB/s "$ratio_plain" ">=$kTargetPlainRatio" "$ok_plain"
bench_result "FTPS $((big_bytes / kMiB)) MiB image, explicit (PROT P)" "$med_relay_tls" \
  "$med_vsftpd_tls" MB/s "$ratio_tls" ">=$kTargetTlsRatio" "$ok_tls"
bench_result "relay peak RSS (FTP)" "$rss_mib" - MiB - "<$kTargetRssMiB MiB" "$ok_rss"

if ((check && fail)); then
  exit 1
fi
exit 0
