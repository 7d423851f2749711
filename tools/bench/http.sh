#!/usr/bin/env bash
# Benchmarks `siterelay serve` against nginx serving the same files over HTTP on loopback.
#
# After a power cut every phone of the branch boots at once and pulls its configuration and a
# firmware image of 30 to 300 MB. nginx with sendfile is the reference for serving files from the
# page cache, so this script starts both servers on 127.0.0.1 in the same run and measures, with
# wrk, interleaved round by round:
#   1. big file: one 200 MiB firmware image (--quick: 20 MiB) fetched over and over by 20
#      keep-alive connections (wrk -t2 -c20); aggregate throughput in MB/s,
#   2. small file: one 2 KiB configuration file over 50 keep-alive connections (wrk -t2 -c50);
#      requests per second,
#   3. the relay's peak resident set (VmHWM) over the whole run,
# and reports the medians, the relay/nginx ratios and the targets: big file >= 0.9x nginx's
# throughput, small file >= 0.6x nginx's request rate, relay peak RSS < 64 MiB.
#
# Fairness. Both servers serve the same bytes from a warm page cache (nginx from the generated
# tree, the relay from its object store, into which the tree is imported first), both with
# sendfile(2), keep-alive and one access-log line per request written to a file in the work
# directory (the relay logs every request to stderr with one write(2) a line and cannot switch it
# off, so nginx's access_log is on and unbuffered too). nginx runs one worker per core
# (worker_processes = nproc), sendfile on, tcp_nopush on, keepalive_requests raised so neither
# server closes a connection during a run; everything else is nginx's default. The relay runs
# one event loop thread. Only one server is loaded at a time, but wrk's two threads and the
# server under test share the machine's cores, so a server that needs less CPU leaves more for
# the client: that is part of what is measured.
#
# wrk counts every byte it reads, a response cut off by the end of the run included, so the big
# file's MB/s is exact even when a run completes only a few responses; a Lua done() hook prints
# wrk's raw counters instead of its rounded summary.
#
# --tls runs the same measurements over HTTPS. A throwaway self-signed RSA-2048 certificate is
# made with openssl in the work directory; the relay serves it from its [https] listener (its
# [http] listener is off) and nginx from `listen ... ssl` with ssl_protocols TLSv1.2 TLSv1.3 and
# otherwise its defaults (ssl_session_cache none, no kTLS: its sendfile stays on in the config
# but is not used over TLS, where nginx reads the file into a buffer and encrypts it, like the
# relay).
# Both servers load the same certificate and key; `openssl s_client` with its default settings,
# which wrk's are too, connects to each once and the header shows the protocol and cipher they
# negotiated. Target (serving issue, TLS): big file >= 0.8x nginx's throughput; the small-file
# and RSS targets are the same as over HTTP. wrk decrypts what it reads, so the client takes
# more of the shared cores than over HTTP, equally for both servers.
#
# Nothing leaves the machine: both servers listen on 127.0.0.1 only. Every step is bounded in
# time (wrk runs under timeout(1), servers get a fixed time to start and to stop) and the trap
# stops both servers however the script ends. A full run takes about 2.5 minutes (3 rounds of
# four 10 s runs), --quick about 15 s; the work directory needs twice the image's size.
#
# usage: tools/bench/http.sh [--tls] [--quick] [--duration N] [--runs N] [--binary PATH] [--check]
# Exit: 0 done (targets are reported, not enforced); 1 a target failed under --check;
#       2 usage error, missing tool, a failed command, or the relay failed under load (crashed,
#       stopped answering, answered with errors or wrong bytes).
set -euo pipefail
export LC_ALL=C  # '.' as the decimal separator in awk and printf.

readonly kTargetBigRatio=0.9    # relay MB/s / nginx MB/s on the big file, at least
readonly kTargetBigRatioTls=0.8 # the same over HTTPS (--tls)
readonly kTargetSmallRatio=0.6  # relay req/s / nginx req/s on the small file, at least
readonly kTargetRssMiB=64       # peak resident set of the relay during the run, below
readonly kMiB=$((1 << 20))
readonly kSmallBytes=2048
readonly kBigConnections=20
readonly kSmallConnections=50
readonly kWrkThreads=2
readonly kWarmupSeconds=1   # an unmeasured wrk run per server and file before the rounds

usage() {
  cat <<EOF
usage: $0 [--tls] [--quick] [--duration N] [--runs N] [--binary PATH] [--check]

  --tls           measure over HTTPS (self-signed RSA-2048 certificate made in the work dir);
                  big-file target 0.8x nginx instead of 0.9x
  --quick         CI mode: 20 MiB image, 2 s per measurement, 1 run; targets not judged
  --duration N    seconds per measurement (default 10; --quick: 2)
  --runs N        rounds of every measurement, interleaved; the median is reported
                  (default 3; --quick: 1)
  --binary PATH   siterelay binary (default: $repo_root/build/siterelay)
  --check         exit 1 when a target fails (default: report only)

Needs nginx, wrk, curl and openssl (tools/install-deps installs them). Work directory: a fresh
one under \${TMPDIR:-/tmp}, removed at the end (kept, with both servers' logs, when the relay
failed).
EOF
}

bench_name=http.sh
# shellcheck source=tools/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tls=0
duration=
bench_own_option() {
  BENCH_SHIFT=1
  case $1 in
    --tls) tls=1 ;;
    --duration)
      (($# >= 2)) || die "--duration needs a number of seconds"
      duration=$2
      BENCH_SHIFT=2
      ;;
    --duration=*) duration=${1#--duration=} ;;
    *) BENCH_SHIFT=0 ;;
  esac
}
bench_parse_options "$@"

if ((quick)); then
  big_bytes=$((20 * kMiB))
  : "${duration:=2}" "${runs:=1}"
else
  big_bytes=$((200 * kMiB))
  : "${duration:=10}" "${runs:=3}"
fi
if ((tls)); then
  scheme=https
  target_big_ratio=$kTargetBigRatioTls
else
  scheme=http
  target_big_ratio=$kTargetBigRatio
fi
bench_positive --duration "$duration"
bench_positive --runs "$runs"
((duration <= 600)) || die "--duration is at most 600 s"

# ---- prerequisites ----------------------------------------------------------------------------

bench_find_nginx
bench_need_tools wrk:wrk curl:curl openssl:openssl ss:iproute2 pgrep:procps timeout:coreutils
bench_resolve_binary

bench_work_dir "relay.log, nginx/error.log"

# ---- the files --------------------------------------------------------------------------------

# Contents are keystream (bench_keystream, as in tools/bench/import.sh): the same bytes on every
# machine, and incompressible, so neither server can be flattered by them.
tree="$work/tree"
big_path=firmware/3111-48300-001.sip.ld
small_path=site/0004f2a1b2c3.cfg
mkdir -p "$tree/firmware" "$tree/site"
echo "generating a $((big_bytes / kMiB)) MiB image and a $kSmallBytes-byte cfg ..." >&2
bench_keystream "$big_bytes" 0 >"$tree/$big_path"
bench_keystream "$kSmallBytes" 1 >"$tree/$small_path"
big_sha=$(sha256sum "$tree/$big_path" | cut -d' ' -f1)
small_sha=$(sha256sum "$tree/$small_path" | cut -d' ' -f1)

# ---- TLS (--tls) ------------------------------------------------------------------------------

# curl's options for the servers' URLs: trust the throwaway certificate, nothing else.
curl_tls=()
if ((tls)); then
  cert="$work/cert.pem"
  cert_key="$work/key.pem"
  echo "making a self-signed RSA-2048 certificate for 127.0.0.1 ..." >&2
  timeout 60 openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 \
    -keyout "$cert_key" -out "$cert" -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$work/openssl-req.log" 2>&1 ||
    { cat "$work/openssl-req.log" >&2; die "openssl req failed; output above"; }
  curl_tls=(--cacert "$cert")
fi

# ---- siterelay --------------------------------------------------------------------------------

config="$work/relay.toml"
cat >"$config" <<EOF
# Written by tools/bench/http.sh: phones over ${scheme^^} and the admin port on loopback, any free
# port.
data_dir = '$work/data'
$(bench_relay_listeners "$scheme")
EOF
if ((tls)); then
  cat >>"$config" <<EOF
[tls]
cert = '$cert'
key = '$cert_key'
EOF
fi

echo "importing into the relay's cache ..." >&2
"$relay" import "$tree" --config "$config" >"$work/import.log" 2>&1 ||
  { cat "$work/import.log" >&2; die "siterelay import failed; output above"; }

# ---- nginx ------------------------------------------------------------------------------------

# What is this benchmark's own in nginx.conf (lib.sh's write_nginx_conf writes the rest).
nginx_about=.
nginx_workers=$(nproc)
nginx_http="  types { application/octet-stream ld; application/xml cfg; }
  access_log $nginx_dir/access.log;
  keepalive_timeout 65s;
  keepalive_requests 100000000;"
nginx_listen=
if ((tls)); then
  nginx_http+="
  ssl_certificate $cert;
  ssl_certificate_key $cert_key;
  ssl_protocols TLSv1.2 TLSv1.3;"
  nginx_listen=ssl
fi

start_relay "$work/relay.log" "$scheme"
start_nginx "$scheme" "$small_path" ${curl_tls[@]+"${curl_tls[@]}"}
relay_url="$scheme://127.0.0.1:$relay_port"
nginx_url="$scheme://127.0.0.1:$nginx_port"

# Fetches $1 and checks status 200 and the body's digest $2; prints what is wrong otherwise.
verify_body() {
  local url=$1 want=$2 got code
  rm -f "$work/headers"
  got=$(curl -sS --max-time 120 ${curl_tls[@]+"${curl_tls[@]}"} -D "$work/headers" "$url" 2>&1 |
    sha256sum | cut -d' ' -f1) ||
    { echo "$url: curl failed"; return 1; }
  code=$(awk 'NR == 1 {print $2}' "$work/headers" 2>/dev/null || true)
  [[ $code == 200 && $got == "$want" ]] ||
    { echo "$url: status ${code:-none}, body sha256 $got (want 200, $want)"; return 1; }
}

# Fetching both files once through each server checks them and warms the page cache (the relay
# wrote its objects with O_DIRECT, so they are not in it yet).
echo "checking and warming both servers ..." >&2
for base in "$relay_url" "$nginx_url"; do
  for f in "$big_path:$big_sha" "$small_path:$small_sha"; do
    if ! err=$(verify_body "$base/${f%%:*}" "${f#*:}"); then
      [[ $base == "$relay_url" ]] && relay_failed "before any load: $err"
      die "nginx answered wrongly before any load: $err"
    fi
  done
done

# ---- header: what ran where -------------------------------------------------------------------

bench_relay_facts "$work"
nginx_version=$("$nginx" -v 2>&1 | sed 's/^nginx version: //')
wrk_version=$(wrk -v 2>&1 | head -n 1 | awk '{print $1, $2, $3}' || true)

# One handshake with openssl s_client's default settings (wrk's are OpenSSL's defaults too),
# verifying the certificate: "TLSv1.3 TLS_AES_256_GCM_SHA384, X25519" for port $1.
tls_negotiated() {
  local out
  out=$(timeout 10 openssl s_client -connect "127.0.0.1:$1" -brief -CAfile "$cert" \
    -verify_return_error </dev/null 2>&1) ||
    { echo "handshake failed: $(tail -n 1 <<<"$out")"; return; }
  awk -F': ' '
    $1 == "Protocol version" { p = $2 }
    $1 == "Ciphersuite" { c = $2 }
    $1 ~ /Temp Key$/ { k = $2; sub(/,.*/, "", k) }
    $1 == "Verification" { v = $2 }
    END { printf "%s %s, %s, certificate verification %s", p, c, k, (v == "" ? "?" : v) }' <<<"$out"
}
if ((tls)); then
  relay_tls=$(tls_negotiated "$relay_port")
  nginx_tls=$(tls_negotiated "$nginx_port")
  [[ $relay_tls == TLS* ]] || relay_failed "openssl s_client against the relay: $relay_tls"
  [[ $nginx_tls == TLS* ]] || die "openssl s_client against nginx: $nginx_tls"
  cert_bits=$(openssl x509 -in "$cert" -noout -text |
    sed -n 's/.*Public-Key: (\([0-9]*\) bit).*/\1/p')
fi

if ((tls)); then
  echo "# siterelay HTTPS benchmark, TLS mode (siterelay serve vs. nginx, same files and" \
    "certificate, loopback)"
else
  echo "# siterelay HTTP benchmark (siterelay serve vs. nginx, same files, loopback)"
fi
bench_machine_lines
if ((tls)); then
  echo "nginx:      $nginx_version, worker_processes $nginx_workers, listen ssl, ssl_protocols" \
    "TLSv1.2 TLSv1.3, sendfile on (unused over TLS: no kTLS), tcp_nopush on, keep-alive," \
    "ssl_session_cache none, open_file_cache off (defaults)"
else
  echo "nginx:      $nginx_version, worker_processes $nginx_workers, sendfile on, tcp_nopush on," \
    "keep-alive, open_file_cache off (default)"
fi
echo "wrk:        $wrk_version, -t$kWrkThreads, -c$kBigConnections (big) / -c$kSmallConnections" \
  "(small), keep-alive, ${duration} s a run"
echo "siterelay:  $relay_version ($binary, sha256 $relay_sha; source $source_rev), one event loop"
if ((tls)); then
  echo "tls:        TLS mode, https:// URLs; both servers use one self-signed RSA-${cert_bits:-?}" \
    "certificate made for this run; $(openssl version)"
  echo "negotiated: (openssl s_client, default settings as wrk's) relay: $relay_tls;" \
    "nginx: $nginx_tls"
fi
echo "cores:      wrk ($kWrkThreads threads) and the server under test share the same" \
  "$(nproc) core(s); the idle server sleeps"
echo "logging:    both write one access-log line per request to a file in the work dir" \
  "(relay: stderr; nginx: access_log, unbuffered)"
echo "files:      $big_path $big_bytes bytes ($((big_bytes / kMiB)) MiB)," \
  "$small_path $kSmallBytes bytes; page cache warm; work dir $work ($fs_type)"
echo "runs:       $runs round(s), relay and nginx alternating first; median reported;" \
  "MB = 10^6 bytes"
if ((quick)); then
  echo "note:       --quick checks that the benchmark runs; 2 s runs on a 20 MiB image are" \
    "too short for the targets to mean much"
fi
echo

# ---- measurements -----------------------------------------------------------------------------

lua="$work/report.lua"
cat >"$lua" <<'EOF'
-- wrk's exact counters; its own summary rounds to three digits.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "wrk-result bytes=%d us=%d requests=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.bytes, summary.duration, summary.requests,
    e.connect, e.read, e.write, e.status, e.timeout))
end
EOF

# CPU ticks (user + system) of a process and its children processes' (nginx's workers).
cpu_ticks() {
  local pid total=0 t
  for pid in "$@"; do
    t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
server_pids() {  # relay|nginx
  if [[ $1 == relay ]]; then
    echo "$relay_pid"
  else
    # shellcheck disable=SC2046  # one pid a word
    echo "$nginx_pid" $(pgrep -P "$nginx_pid" || true)
  fi
}
clk_tck=$(getconf CLK_TCK)

# One wrk run: server (relay|nginx), file (big|small), seconds[, array]. Appends "value errors
# cpu% completed connect read write non-2xx timeout" to the array (default
# result_<server>_<file>).
# shellcheck disable=SC2034  # filled through measure's nameref
declare -a result_relay_big=() result_nginx_big=() result_relay_small=() result_nginx_small=()
# shellcheck disable=SC2034
declare -a warmup=()
measure() {
  local server=$1 file=$2 seconds=$3 url conns pids t0 t1 out
  local -n out_array=${4:-result_${server}_${file}}
  if [[ $server == relay ]]; then url=$relay_url; else url=$nginx_url; fi
  if [[ $file == big ]]; then
    url+="/$big_path"
    conns=$kBigConnections
  else
    url+="/$small_path"
    conns=$kSmallConnections
  fi
  pids=$(server_pids "$server")
  # shellcheck disable=SC2086  # one pid a word
  t0=$(cpu_ticks $pids)
  # --timeout: a big response may take longer than wrk's default 2 s; none may outlast the run.
  local rc=0
  out=$(timeout --kill-after=5 $((seconds + 30)) \
    wrk -t"$kWrkThreads" -c"$conns" -d"${seconds}s" --timeout "$((seconds + 10))s" -s "$lua" \
    "$url" 2>&1) || rc=$?
  # shellcheck disable=SC2086
  t1=$(cpu_ticks $pids)
  if [[ $server == relay ]] && ! kill -0 "$relay_pid" 2>/dev/null; then
    echo "$out" >&2
    relay_failed "the relay died during the $file-file run"
  fi
  if ((rc != 0)); then
    echo "$out" >&2
    [[ $server == relay ]] && relay_failed "wrk failed (exit $rc; 124: hung) on the $file file"
    die "wrk against nginx failed (exit $rc; 124: hung) on the $file file"
  fi
  local line
  line=$(grep '^wrk-result ' <<<"$out") || { echo "$out" >&2; die "no wrk result"; }
  out_array+=("$(awk -v file="$file" -v cpu=$((t1 - t0)) -v hz="$clk_tck" '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    s = v["us"] / 1e6
    value = file == "big" ? v["bytes"] / s / 1e6 : v["requests"] / s
    errors = v["connect"] + v["read"] + v["write"] + v["status"] + v["timeout"]
    printf "%.1f %d %.0f %d %d %d %d %d %d\n", value, errors, 100 * cpu / hz / s, v["requests"],
      v["connect"], v["read"], v["write"], v["status"], v["timeout"]
  }' <<<"$line")")
}

echo "warming up (${kWarmupSeconds} s a server and file, not measured) ..." >&2
for server in relay nginx; do
  for file in big small; do
    measure "$server" "$file" "$kWarmupSeconds" warmup
  done
done

for ((r = 1; r <= runs; r++)); do
  echo "round $r/$runs ..." >&2
  if ((r % 2)); then order=(relay nginx); else order=(nginx relay); fi
  for file in big small; do
    for server in "${order[@]}"; do
      measure "$server" "$file" "$duration"
    done
  done
done

# After the load: the relay must still be up, healthy and serving the right bytes.
kill -0 "$relay_pid" 2>/dev/null || relay_failed "the relay died during the run"
health=$(curl -sS --max-time 10 "http://127.0.0.1:$admin_port/healthz" 2>&1) ||
  relay_failed "/healthz did not answer after the load: $health"
for f in "$big_path:$big_sha" "$small_path:$small_sha"; do
  err=$(verify_body "$relay_url/${f%%:*}" "${f#*:}") ||
    relay_failed "after the load: $err"
done

rss_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$relay_pid/status")
nginx_rss_kib=0
for pid in $(pgrep -P "$nginx_pid" || true); do
  kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  ((kib > nginx_rss_kib)) && nginx_rss_kib=$kib
done

stop_relay
stop_nginx
# What the relay logged: requests answered (by status) and anything at warning level or worse.
read -r log_requests log_non200 log_warnings < <(awk '
  ($3 == "http" || $3 == "https") && ($4 == "GET" || $4 == "HEAD") && $6 ~ /^[0-9][0-9][0-9]$/ {
    n++; if ($6 != 200) bad++; next
  }
  $2 == "warning" || $2 == "error" || $2 == "fatal" { w++ }
  END { printf "%d %d %d\n", n, bad, w }' "$relay_log")

# ---- report -----------------------------------------------------------------------------------

median() { bench_median 1 "$@"; }
field_of() {  # array name, field number (1 value, 2 errors, 3 cpu%, 4 completed requests)
  local -n a=$1
  local x
  for x in "${a[@]}"; do awk -v f="$2" '{print $f}' <<<"$x"; done
}
sum_column() {
  field_of "$1" "$2" | awk '{s += $1} END {printf "%d", s}'
}
error_detail() {  # array name -> "connect c, read r, write w, non-2xx s, timeout t" summed
  local -n a=$1
  printf '%s\n' "${a[@]}" | awk '{c += $5; r += $6; w += $7; s += $8; t += $9}
    END {printf "connect %d, read %d, write %d, non-2xx %d, timeout %d", c, r, w, s, t}'
}

declare -A med errs cpu done_total runs_list
for k in relay_big nginx_big relay_small nginx_small; do
  name="result_$k"
  # shellcheck disable=SC2207
  values=($(field_of "$name" 1))
  med[$k]=$(median "${values[@]}")
  runs_list[$k]="${values[*]}"
  errs[$k]=$(sum_column "$name" 2)
  # shellcheck disable=SC2207
  cpus=($(field_of "$name" 3))
  cpu[$k]=$(median "${cpus[@]}")
  done_total[$k]=$(sum_column "$name" 4)
done

row() {  # label, server, key, unit
  printf '%-22s %-10s %10s %-6s %7s %6s %8s   %s\n' "$1" "$2" "${med[$3]}" "$4" \
    "${cpu[$3]}%" "${errs[$3]}" "${done_total[$3]}" "${runs_list[$3]}"
}
printf '%-22s %-10s %10s %-6s %7s %6s %8s   %s\n' measurement server median unit "CPU" \
  errors "done" "runs"
row "big file, $kBigConnections conns" siterelay relay_big MB/s
row "($((big_bytes / kMiB)) MiB image)" nginx nginx_big MB/s
row "small file, $kSmallConnections conns" siterelay relay_small req/s
row "($kSmallBytes B cfg)" nginx nginx_small req/s
echo "(CPU: the server's user+system time during a run as % of one core, median; errors: wrk's"
echo " socket errors and non-2xx answers, all runs; done: complete responses, all runs)"
echo

ratio_big=$(awk -v a="${med[relay_big]}" -v b="${med[nginx_big]}" \
  'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
ratio_small=$(awk -v a="${med[relay_small]}" -v b="${med[nginx_small]}" \
  'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
rss_mib=$(awk -v k="$rss_kib" 'BEGIN {printf "%.1f", k / 1024}')
nginx_rss_mib=$(awk -v k="$nginx_rss_kib" 'BEGIN {printf "%.1f", k / 1024}')
relay_errors=$((errs[relay_big] + errs[relay_small]))
nginx_errors=$((errs[nginx_big] + errs[nginx_small]))

echo "big file throughput, relay / nginx:   $ratio_big"
echo "small file req/s, relay / nginx:      $ratio_small"
echo "relay peak RSS (VmHWM, whole run):    $rss_mib MiB (largest nginx worker: $nginx_rss_mib MiB)"
echo "relay access log:                     $log_requests requests, $log_non200 not 200," \
  "$log_warnings warning/error line(s)"
echo "wrk errors:                           relay $relay_errors" \
  "(big: $(error_detail result_relay_big); small: $(error_detail result_relay_small));" \
  "nginx $nginx_errors"
echo

fail=0
judge() { bench_judge 40 "target $1:" "$2" "$3"; }  # name, ok (1/0), shown value
judge "big file relay/nginx >= $target_big_ratio" \
  "$(bench_holds "$ratio_big" ">=" "$target_big_ratio")" "$ratio_big"
judge "small file relay/nginx >= $kTargetSmallRatio" \
  "$(bench_holds "$ratio_small" ">=" "$kTargetSmallRatio")" "$ratio_small"
judge "relay peak RSS < $kTargetRssMiB MiB" "$(bench_holds "$rss_mib" "<" "$kTargetRssMiB")" \
  "$rss_mib MiB"
# Not a speed target: a relay that errs under load fails the benchmark in every mode.
if ((relay_errors == 0 && log_non200 == 0)); then
  printf '%-40s PASS\n' "check relay errors under load:"
else
  printf '%-40s FAIL (%d wrk errors, %d non-200 in its log)\n' \
    "check relay errors under load:" "$relay_errors" "$log_non200"
  keep_work=1
  exit 2
fi
if ((nginx_errors > 0)); then
  echo "note: nginx had $nginx_errors error(s); its figures are suspect (see $nginx_dir/error.log)"
  keep_work=1
fi

if ((check && fail)); then
  exit 1
fi
exit 0
