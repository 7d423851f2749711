#!/usr/bin/env bash
# Benchmarks the boot storm: hundreds of phones asking the relay for the same cold firmware image
# at once, after a power cut.
#
# With [origin] url set, a cache miss is fetched from the origin once however many clients ask
# at the same time (single flight), and every client is sent the body while it arrives. nginx on
# 127.0.0.1 is the origin here, serving one firmware image (default 100 MiB, --size-mb) behind
# `limit_rate` (default 20 MiB/s, --rate-mb) that stands in for the branch's WAN link. The relay
# has that nginx as its [origin] url. Every round measures:
#   (a) one client alone: a fresh relay with an empty data_dir, one curl of the image; wall time
#       until the body is complete;
#   (b) the storm: the relay restarted on a fresh, empty data_dir, N clients (default 100,
#       --clients) started at once; wall time until the LAST client has its whole body;
#   (c) reference, not judged: the same N clients again on the same relay, which now has the
#       image cached. No origin in the way: this is what the clients, loopback and the shared
#       cores need to move N bodies at all, the floor under (b) on this machine;
# and reports the medians, (b)/(a) and the goal: (b) <= 1.2x (a) for 100 clients, i.e. the storm
# is bounded by the WAN, not by the relay; and the relay's peak resident set during (b) (VmHWM of
# the relay started for it) against issue 9's < 64 MiB. The last lines are RESULT lines for
# tools/bench/run (lib.sh's bench_result), in --quick too. Also reported, not judged: the CPU
# time the relay and the clients used
# in each case; what the origin saw per case (nginx's access log, with $request_time); and the
# probe: during (b) and (c) one more phone fetches its 2 KiB configuration file, cached before
# the storm, over and over (one keep-alive connection, 10 requests a second), and the median and
# longest answer times show whether the relay keeps serving everyone else while it fans the
# image out.
#
# Checks that fail the run (exit 2) in every mode, --quick included: every client got status
# 200 and exactly the image's bytes (curl's byte count and the sha256 of what it wrote, against
# the origin's file); the origin saw exactly one GET for the image in (a) and in (b), and none in
# (c); the relay did not die.
#
# Clients. One curl process per client. All are forked first and wait at a start line (a shared
# flock(1) on a file this script holds locked); when all of them wait, the lock is dropped, each
# flock execs its curl at once and the clock starts (forking 100 from a shell loop takes about
# 0.3 s, which would otherwise be measured). A single `curl --parallel` process was tried first:
# it moves all bodies through one thread and on this 2-core machine tops out near 1.4 GB/s, so
# it, not the relay, set the time of (b). Each body is written in place (stdout
# opened with `1<>`, no truncation) into a file preallocated on tmpfs (/dev/shm when it has room)
# and zeroed before every case, so a short or wrong body cannot pass for the previous one: on
# this VM a first write into fresh memory runs at 0.6-1.3 GB/s, writes into pages already held
# at about 5 GB/s, and hashing while receiving would cost more CPU than the relay. The sha256 of
# every body is taken after the case, outside the measured time. The memory for N bodies is
# held for the whole run (100 x 100 MiB: 10 GiB); the script refuses to start without room.
#
# Nothing leaves the machine: both servers listen on 127.0.0.1 only. Every wait is bounded
# (each curl has --max-time, servers get a fixed time to start and to stop, hashing and zeroing
# run under timeout(1)) and the EXIT trap stops the relay, nginx and any client left, and
# removes the work directory and the bodies (the work directory, with the logs, is kept when the
# relay failed). The default run takes about 1.5 minutes, --quick a few seconds.
#
# usage: tools/bench/storm.sh [--quick] [--size-mb N] [--rate-mb N] [--clients N] [--runs N]
#                             [--binary PATH] [--check]
# Exit: 0 done (the goal is reported, not enforced); 1 the goal was missed under --check;
#       2 usage error, missing tool, a failed command, or the relay failed (died, a client got an
#       error or wrong bytes, the origin was asked more than once).
set -euo pipefail
export LC_ALL=C  # '.' as the decimal separator in awk and printf.

readonly kTargetRatio=1.2   # (b) storm wall time / (a) single client wall time, at most
readonly kTargetClients=100 # the goal is stated for this many clients
readonly kTargetRssMiB=64   # peak resident set of the relay during (b), below (issue 9)
readonly kMiB=$((1 << 20))
readonly kLogSeconds=5      # for nginx's access-log line after the last client is done
readonly kConnectSeconds=10 # curl --connect-timeout

usage() {
  cat <<EOF
usage: $0 [--quick] [--size-mb N] [--rate-mb N] [--clients N] [--runs N] [--binary PATH] [--check]

  --quick         CI mode: 8 MiB image, 10 clients, 1 run; checks only, the goal is not judged
  --size-mb N     the firmware image, MiB (default 100; --quick: 8)
  --rate-mb N     the origin's rate limit per connection (nginx limit_rate), MiB/s (default 20)
  --clients N     clients in the storm (default 100; --quick: 10)
  --runs N        rounds of (a) one client, (b) the storm, (c) the storm on a warm cache; the
                  median is reported (default 3; --quick: 1)
  --binary PATH   siterelay binary (default: $repo_root/build/siterelay)
  --check         exit 1 when (b)/(a) misses the goal of $kTargetRatio (default: report only)

Needs nginx, curl and openssl (tools/install-deps installs them), and memory for N bodies:
clients x size on /dev/shm (else on the work dir's filesystem). Work directory: a fresh one
under \${TMPDIR:-/tmp}, removed at the end (kept, with the servers' logs, when the relay failed).
EOF
}

bench_name=storm.sh
# shellcheck source=tools/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

size_mb=
rate_mb=
clients=
bench_own_option() {
  local value
  case $1 in
    --size-mb | --rate-mb | --clients)
      (($# >= 2)) || die "$1 needs a number"
      value=$2
      BENCH_SHIFT=2
      ;;
    --size-mb=* | --rate-mb=* | --clients=*)
      value=${1#*=}
      BENCH_SHIFT=1
      ;;
    *)
      BENCH_SHIFT=0
      return
      ;;
  esac
  case ${1%%=*} in
    --size-mb) size_mb=$value ;;
    --rate-mb) rate_mb=$value ;;
    --clients) clients=$value ;;
  esac
}
bench_parse_options "$@"

if ((quick)); then
  : "${size_mb:=8}" "${clients:=10}" "${runs:=1}"
else
  : "${size_mb:=100}" "${clients:=100}" "${runs:=3}"
fi
: "${rate_mb:=20}"
bench_positive --size-mb "$size_mb"
bench_positive --rate-mb "$rate_mb"
bench_positive --clients "$clients"
bench_positive --runs "$runs"
((size_mb <= 4096)) || die "--size-mb is at most 4096"
((clients <= 1000)) || die "--clients is at most 1000"
((runs <= 50)) || die "--runs is at most 50"
image_bytes=$((size_mb * kMiB))
rate_bytes=$((rate_mb * kMiB))
# Every curl gives up after ten times what the WAN needs, plus a minute.
client_max_time=$((10 * image_bytes / rate_bytes + 60))

# ---- prerequisites ----------------------------------------------------------------------------

bench_find_nginx
bench_need_tools curl:curl openssl:openssl ss:iproute2 pgrep:procps timeout:coreutils \
  flock:util-linux
bench_resolve_binary
(($(ulimit -n) >= 2 * clients + 64)) ||
  die "the open-file limit ($(ulimit -n)) is too low for $clients clients; raise ulimit -n"

probe_pid=
client_pids=()
bodies=

stop_probe() {
  [[ -n $probe_pid ]] || return 0
  kill -TERM "$probe_pid" 2>/dev/null || true
  wait "$probe_pid" 2>/dev/null || true
  probe_pid=
}

# For the trap, before it stops the servers: the clients and the probe; and the bodies, large and
# worthless once checked, are removed even when the work directory is kept.
# shellcheck disable=SC2317  # run by the trap
bench_cleanup_own() {
  if ((${#client_pids[@]})); then
    kill -TERM "${client_pids[@]}" 2>/dev/null || true
    wait "${client_pids[@]}" 2>/dev/null || true
  fi
  stop_probe
  if [[ -n $bodies ]]; then rm -rf "$bodies"; fi
}

bench_work_dir "relay-*.log, nginx/access.log, clients/"

# ---- the image and the clients' body files ----------------------------------------------------

# The bodies: tmpfs (/dev/shm) when it has room for all of them with 1 GiB to spare, else the
# work directory's filesystem (whose page cache and writeback then weigh on the clients). The work
# directory holds the image twice (the origin's and the relay's copy).
need=$((clients * image_bytes))
(($(df -B1 --output=avail "$work" | tail -n 1) > 2 * image_bytes + (1 << 30))) ||
  die "no room for two copies of a $size_mb MiB image in $work"
mem_avail=$(($(awk '/^MemAvailable:/ {print $2}' /proc/meminfo) * 1024))
bodies_fs=
if [[ -d /dev/shm && -w /dev/shm ]] &&
  [[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]] &&
  (($(df -B1 --output=avail /dev/shm | tail -n 1) > need + (1 << 30))) &&
  ((mem_avail > need + (1 << 30))); then
  bodies=$(mktemp -d /dev/shm/siterelay-bench-storm.XXXXXX)
  bodies_fs=tmpfs
else
  bodies="$work/bodies"
  mkdir -p "$bodies"
  (($(df -B1 --output=avail "$bodies" | tail -n 1) > need + (1 << 30))) ||
    die "no room for $clients bodies of $size_mb MiB ($((need >> 20)) MiB) on /dev/shm nor" \
      "in $work; use fewer --clients or a smaller --size-mb"
  bodies_fs=$(findmnt -no FSTYPE -T "$bodies" 2>/dev/null || echo unknown)
fi

# Contents are keystream (bench_keystream, as in tools/bench/import.sh and http.sh): the same bytes
# on every machine, and incompressible.
tree="$work/tree"
image_path=firmware/3111-48300-001.sip.ld
cfg_path=site/0004f2a1b2c3.cfg
readonly kCfgBytes=2048
mkdir -p "$tree/firmware" "$tree/site" "$work/clients"
echo ready >"$tree/ready.txt"
echo "generating a $size_mb MiB image ..." >&2
bench_keystream "$image_bytes" 0 >"$tree/$image_path"
image_sha=$(openssl dgst -sha256 -r "$tree/$image_path" | cut -d' ' -f1)
bench_keystream "$kCfgBytes" 1 >"$tree/$cfg_path"

# Overwrites the first $1 body files with zeros, in place (the pages stay allocated), one dd a
# core at a time.
zero_bodies() {
  local i
  for ((i = 1; i <= $1; i++)); do echo "$bodies/c$i"; done |
    timeout 600 xargs -P "$(nproc)" -I{} \
      dd if=/dev/zero of={} bs=1M count="$size_mb" conv=notrunc status=none ||
    die "could not zero the body files in $bodies"
}
echo "preallocating $clients body files ($((need >> 20)) MiB on $bodies_fs) ..." >&2
zero_bodies "$clients"

# ---- nginx, the origin ------------------------------------------------------------------------

# What is this benchmark's own in nginx.conf (lib.sh's write_nginx_conf writes the rest).
access_log="$nginx_dir/access.log"
nginx_about=": the origin, rate-limited like a WAN link."
nginx_workers=1
nginx_http=$(
  cat <<EOF
  types { application/octet-stream ld; text/plain txt; }
  log_format storm '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent'
                   ' \$request_time "\$http_user_agent"';
  access_log $access_log storm;
  limit_rate ${rate_mb}m;
EOF
)
nginx_listen=

start_nginx http ready.txt
origin_url="http://127.0.0.1:$nginx_port/"

# ---- siterelay --------------------------------------------------------------------------------

config="$work/relay.toml"
cat >"$config" <<EOF
# Written by tools/bench/storm.sh: phones over HTTP and the admin port on loopback, any free
# port; nginx on loopback as the origin. fresh_for is long so that (c) is served from the cache
# without a revalidation; no background sync passes.
data_dir = '$work/data'
[origin]
url = "$origin_url"
fresh_for = 3600
sync_interval = 0
$(bench_relay_listeners http)
EOF

# A relay on an empty data_dir, logging to relay-$1.log (start_relay sets what it says).
start_fresh_relay() {
  rm -rf "$work/data"
  start_relay "$work/relay-$1.log" http
}

# ---- one case ---------------------------------------------------------------------------------

# Requests for the image in nginx's access log after line $1: "GETs others seconds", seconds
# being the longest request_time among them.
origin_requests() {
  awk -v from="$1" -v want="/$image_path" '
    NR > from {
      split($0, q, "\"")
      split(q[2], r, " ")
      if (r[2] != want) next
      split(q[3], rest, " ")  # status bytes request_time
      if (r[1] == "GET") g++; else o++
      if (rest[3] + 0 > t) t = rest[3] + 0
    }
    END { printf "%d %d %.3f\n", g, o, t }' "$access_log"
}

# CPU seconds (user + system) a process has used so far.
clk_tck=$(getconf CLK_TCK)
cpu_seconds() {
  sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null |
    awk -v hz="$clk_tck" '{printf "%.2f", ($12 + $13) / hz}' || echo 0
}
# CPU seconds (user + system) of this shell's waited-for children so far: bash's `times`, run in
# this shell (in a pipe or $(...) it would report a subshell's).
children_cpu_seconds() {
  times >"$work/times"
  awk 'NR == 2 {
    for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); s += t[1] * 60 + t[2] }
    printf "%.2f", s
  }' "$work/times"
}

# The probe: one more phone fetching its 2 KiB configuration file, already cached, over and over
# on one keep-alive connection, ten requests a second (curl --rate), while the storm runs. One
# long-lived curl, so no process start is in its times; a relay that keeps its event loop turning
# answers it within the time the busy cores take to schedule it. Lines: "status bytes seconds".
start_probe() {
  local url="http://127.0.0.1:$relay_port/$cfg_path" i
  : >"$work/probe.txt"  # read below before curl may have opened it
  # Cached (and so not asked of the origin again: fresh_for) before the storm starts.
  curl -sS -o /dev/null --max-time 30 "$url" || relay_failed "the relay did not serve $cfg_path"
  # Enough requests to outlast the longest storm the clients' --max-time allows.
  for ((i = 0; i < 10 * client_max_time + 10; i++)); do
    printf 'url = "%s"\noutput = "/dev/null"\n' "$url"
  done >"$work/probe.curl"
  # The lines go to stderr, which curl does not buffer: it is stopped with a signal.
  curl -s --rate 10/s --max-time "$client_max_time" -K "$work/probe.curl" \
    -w '%{stderr}%{http_code} %{size_download} %{time_total}\n' >/dev/null 2>>"$work/probe.txt" &
  probe_pid=$!
  # Connected and answered once before the storm starts: one whole line (see probe_lines).
  local tenths=$((kStartSeconds * 10))
  while (($(wc -l <"$work/probe.txt") == 0 && tenths-- > 0)); do sleep 0.1; done
  (($(wc -l <"$work/probe.txt") > 0)) || relay_failed "the probe for $cfg_path got no answer"
}

# The probe's records once it is stopped: its lines that end in a newline. curl writes a line
# in pieces to its unbuffered stderr, so the signal that stops it can cut the last one short
# (a bare "2", or "200 2048 0.00"): that is the stop's doing, not an answer, and is left out.
# A whole line that is not "200 <size>" still fails the run.
probe_lines() {
  if [[ -n $(tail -c 1 "$work/probe.txt") ]]; then
    sed '$d' "$work/probe.txt"
  else
    cat "$work/probe.txt"
  fi
}

# Runs case $1 (a, b or c) with $2 clients against the running relay. Appends to the arrays:
#   wall_<case>:   seconds from the start line to the end of the last client,
#   first_<case>:  the shortest client's curl time_total,
#   origin_<case>: "GETs others seconds" the origin saw for the image,
#   cpu_<case>:    "relay clients" CPU seconds during the case (clients: all curls, the probe's
#                  included),
#   probe_<case>:  "requests median max" of the probe's answer times in seconds (b and c).
# shellcheck disable=SC2034  # filled through run_case's namerefs
declare -a wall_a=() wall_b=() wall_c=() first_a=() first_b=() first_c=()
# shellcheck disable=SC2034
declare -a origin_a=() origin_b=() origin_c=() cpu_a=() cpu_b=() cpu_c=() probe_b=() probe_c=()
run_case() {
  local case=$1 n=$2 i t0 t1 rc log_from url relay_cpu0 clients_cpu0
  local -n wall=wall_$case first=first_$case origin=origin_$case cpu=cpu_$case
  url="http://127.0.0.1:$relay_port/$image_path"
  zero_bodies "$n"
  rm -f "$work"/clients/c*.out
  log_from=$(wc -l <"$access_log")
  client_pids=()
  # The start line: every client is forked first and waits in flock(1) for a shared lock this
  # shell holds exclusively; once all of them wait (/proc/locks), the lock is dropped and each
  # flock execs its curl (--no-fork) at the same moment.
  local lock="$work/start.lock" lock_fd inode tenths waiting
  : >"$lock"
  exec {lock_fd}>"$lock"
  flock -x "$lock_fd"
  inode=$(stat -c %i "$lock")
  for ((i = 1; i <= n; i++)); do
    flock -s --no-fork "$lock" \
      curl -sS --max-time "$client_max_time" --connect-timeout "$kConnectSeconds" \
      -w '%{stderr}result %{http_code} %{size_download} %{time_total}\n' "$url" \
      1<>"$bodies/c$i" 2>"$work/clients/c$i.out" {lock_fd}>&- &
    client_pids+=($!)
  done
  tenths=$((kStartSeconds * 10 + n))
  while :; do
    waiting=$(awk -v inode="$inode" '$2 == "->" && $3 == "FLOCK" && $7 ~ (":" inode "$")' \
      /proc/locks | wc -l)
    ((waiting < n && tenths-- > 0)) || break
    sleep 0.1
  done
  ((waiting == n)) || die "only $waiting of $n clients reached the start line"
  if ((n > 1)); then start_probe; fi
  relay_cpu0=$(cpu_seconds "$relay_pid")
  children_cpu_seconds >"$work/cpu0"
  clients_cpu0=$(<"$work/cpu0")
  t0=$EPOCHREALTIME
  flock -u "$lock_fd"
  exec {lock_fd}>&-
  for i in "${!client_pids[@]}"; do
    rc=0
    wait "${client_pids[$i]}" || rc=$?
    ((rc == 0)) || echo "curl exit $rc" >>"$work/clients/c$((i + 1)).out"
  done
  t1=$EPOCHREALTIME
  client_pids=()
  if ((n > 1)); then
    stop_probe
    local -n probe=probe_$case
    local probe_bad
    probe_lines >"$work/probe-lines.txt"
    probe_bad=$(awk -v size="$kCfgBytes" '$1 != 200 || $2 != size' "$work/probe-lines.txt")
    [[ -z $probe_bad ]] ||
      relay_failed "case ($case): the probe for $cfg_path got $(head -n 1 <<<"$probe_bad")" \
        "(status bytes seconds)"
    probe+=("$(awk '{print $3}' "$work/probe-lines.txt" | sort -g | awk '{v[NR] = $1}
      END {printf "%d %.6f %.6f\n", NR, v[int((NR + 1) / 2)], v[NR]}')")
  fi
  children_cpu_seconds >"$work/cpu1"
  cpu+=("$(awk -v r0="$relay_cpu0" -v r1="$(cpu_seconds "$relay_pid")" -v c0="$clients_cpu0" \
    -v c1="$(<"$work/cpu1")" 'BEGIN {printf "%.2f %.2f", r1 - r0, c1 - c0}')")
  kill -0 "$relay_pid" 2>/dev/null || relay_failed "the relay died during case ($case)"

  # Every client: curl exit 0, status 200, the image's length; then the sha256 of what it wrote.
  local bad
  bad=$(for ((i = 1; i <= n; i++)); do
    awk -v c="$i" -v size="$image_bytes" '
      $1 == "result" { r = $0; code = $2; got = $3 }
      /^curl exit/ { e = $0 }
      END {
        if (e != "" || code != 200 || got != size)
          printf "client %d: %s%sstatus %s, %s bytes (want 200, %d)\n", c, e, (e == "" ? "" : ", "),
            (code == "" ? "none" : code), (got == "" ? "?" : got), size
      }' "$work/clients/c$i.out"
  done)
  if [[ -n $bad ]]; then
    echo "$bad" | head -n 10 >&2
    relay_failed "case ($case): $(grep -c . <<<"$bad") of $n clients failed (first ones above;" \
      "their curl output is in $work/clients)"
  fi
  local digests wrong
  digests=$(for ((i = 1; i <= n; i++)); do echo "$bodies/c$i"; done |
    timeout 600 xargs -P "$(nproc)" -n 1 openssl dgst -sha256 -r) ||
    die "hashing the bodies of case ($case) failed"
  # "digest *path/c7" -> 7 for each body that is not the image.
  wrong=$(awk -v want="$image_sha" '$1 != want {sub(/.*\/c/, "", $2); print $2}' <<<"$digests" |
    sort -n)
  [[ $(grep -c . <<<"$digests") == "$n" ]] || die "hashing the bodies of case ($case) failed"
  if [[ -n $wrong ]]; then
    relay_failed "case ($case): the bodies of $(grep -c . <<<"$wrong") of $n clients differ from" \
      "the origin's file (sha256) though their length is right: client(s)" \
      "$(head -n 10 <<<"$wrong" | paste -sd' ')"
  fi

  # What the origin saw. nginx logs a request when it has sent the last byte, which the relay
  # passes on only once it has it: the line may be a moment behind the clients.
  local seen tenths=$((kLogSeconds * 10)) want_gets=1
  [[ $case == c ]] && want_gets=0
  seen=$(origin_requests "$log_from")
  while ((want_gets > 0 && ${seen%% *} < want_gets && tenths-- > 0)); do
    sleep 0.1
    seen=$(origin_requests "$log_from")
  done
  origin+=("$seen")
  read -r gets others _ <<<"$seen"
  if ((gets != want_gets || others != 0)); then
    relay_failed "case ($case): the origin saw $gets GET(s) and $others other request(s) for" \
      "the image, want $want_gets GET (nginx log: $access_log)"
  fi

  wall+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')")
  first+=("$(cat "$work"/clients/c*.out | awk '$1 == "result" && (m == "" || $4 < m) {m = $4}
    END {printf "%.3f", m}')")
}

# ---- header: what ran where -------------------------------------------------------------------

bench_relay_facts "$work"
nginx_version=$("$nginx" -v 2>&1 | sed 's/^nginx version: //')
curl_version=$(curl --version | awk 'NR == 1 {print $1, $2}')
wan_seconds=$(awk -v s="$image_bytes" -v r="$rate_bytes" 'BEGIN {printf "%.2f", s / r}')

echo "# siterelay boot-storm benchmark (cold-cache pull-through from a rate-limited nginx" \
  "origin, loopback)"
bench_machine_lines
echo "origin:     $nginx_version on 127.0.0.1, 1 worker, sendfile on, limit_rate ${rate_mb}m" \
  "($rate_mb MiB/s a connection: the WAN)"
echo "siterelay:  $relay_version ($binary, sha256 $relay_sha; source $source_rev), one event" \
  "loop; [origin] url = nginx, fresh_for 3600, sync_interval 0"
echo "image:      $image_path $image_bytes bytes ($size_mb MiB): $wan_seconds s at the WAN's rate;" \
  "work dir $work ($fs_type)"
echo "clients:    $curl_version, one process per client, all started at once (flock start line);" \
  "bodies written in place into preallocated files on $bodies_fs, sha256 checked after each case"
echo "cores:      the clients, the relay and nginx share the same $(nproc) core(s)"
echo "cases:      (a) 1 client, cold cache (fresh relay, empty data_dir); (b) $clients clients at" \
  "once, cold cache (fresh relay, empty data_dir); (c) the same $clients again on (b)'s relay," \
  "warm cache (reference: the clients' and loopback's floor)"
echo "runs:       $runs round(s) of (a), (b), (c); median reported; times are wall clock to the" \
  "last complete body"
if ((quick)); then
  echo "note:       --quick checks that the benchmark runs and its checks pass; the goal is not" \
    "judged"
fi
echo

# ---- measurements -----------------------------------------------------------------------------

declare -a rss_b=()
all_logs=()
for ((r = 1; r <= runs; r++)); do
  echo "round $r/$runs: (a) 1 client, cold ..." >&2
  start_fresh_relay "a$r"
  all_logs+=("$relay_log")
  run_case a 1
  stop_relay
  echo "round $r/$runs: (b) $clients clients, cold ..." >&2
  start_fresh_relay "b$r"
  all_logs+=("$relay_log")
  run_case b "$clients"
  rss_b+=("$(awk '/^VmHWM:/ {print $2}' "/proc/$relay_pid/status")")
  echo "round $r/$runs: (c) $clients clients, warm ..." >&2
  run_case c "$clients"
  stop_relay
done
stop_nginx

# What the relay logged: answers for the image, answers not 200 (the probe's included) and
# anything at warning level or worse.
read -r log_requests log_non200 log_warnings < <(cat "${all_logs[@]}" | awk -v image="/$image_path" '
  $3 == "http" && ($4 == "GET" || $4 == "HEAD") && $6 ~ /^[0-9][0-9][0-9]$/ {
    if ($5 == image) n++
    if ($6 != 200) bad++
    next
  }
  $2 == "warning" || $2 == "error" || $2 == "fatal" { w++ }
  END { printf "%d %d %d\n", n, bad, w }')
want_requests=$((runs * (1 + 2 * clients)))

# ---- report -----------------------------------------------------------------------------------

median() { bench_median 3 "$@"; }
fmt_runs() { printf '%s\n' "$@" | awk '{printf "%s%.3f", (NR > 1 ? " " : ""), $1}'; }
field() {  # field number, values...
  local f=$1
  shift
  printf '%s\n' "$@" | awk -v f="$f" '{print $f}'
}

med_a=$(median "${wall_a[@]}")
med_b=$(median "${wall_b[@]}")
med_c=$(median "${wall_c[@]}")
# shellcheck disable=SC2207
origin_secs_a=($(field 3 "${origin_a[@]}"))
# shellcheck disable=SC2207
origin_secs_b=($(field 3 "${origin_b[@]}"))
ratio=$(awk -v a="$med_a" -v b="$med_b" 'BEGIN {printf "%.2f", (a > 0 ? b / a : 0)}')
ratios=$(for ((r = 0; r < runs; r++)); do
  awk -v a="${wall_a[$r]}" -v b="${wall_b[$r]}" 'BEGIN {printf "%.2f\n", b / a}'
done | paste -sd' ')
floor_ratio=$(awk -v a="$med_a" -v c="$med_c" 'BEGIN {printf "%.2f", (a > 0 ? c / a : 0)}')
rss_kib=$(printf '%s\n' "${rss_b[@]}" | sort -n | tail -n 1)
rss_mib=$(awk -v k="$rss_kib" 'BEGIN {printf "%.1f", k / 1024}')
aggregate_b=$(awk -v n="$clients" -v s="$image_bytes" -v t="$med_b" \
  'BEGIN {printf "%.0f", n * s / t / 1e6}')
aggregate_c=$(awk -v n="$clients" -v s="$image_bytes" -v t="$med_c" \
  'BEGIN {printf "%.0f", n * s / t / 1e6}')

printf '%-42s %8s   %s\n' case "median s" "runs (s)"
printf '%-42s %8s   %s\n' "(a) 1 client, cold cache" "$med_a" "$(fmt_runs "${wall_a[@]}")"
printf '%-42s %8s   %s\n' "(b) $clients clients at once, cold cache" "$med_b" \
  "$(fmt_runs "${wall_b[@]}")"
printf '%-42s %8s   %s\n' "(c) $clients clients at once, warm cache" "$med_c" \
  "$(fmt_runs "${wall_c[@]}")"
echo "(wall clock from the start line, where all clients are let go at once, to the end of the"
echo " last; (c) is a reference: no origin, the relay serves its cached copy)"
echo
echo "storm / one client, (b) / (a):          $ratio (runs: $ratios)"
echo "warm storm / one client, (c) / (a):     $floor_ratio (the clients' floor on this machine)"
echo "first client done in (b):               $(median "${first_b[@]}") s (median; curl" \
  "time_total)"
echo "origin transfer (nginx request_time):   (a) $(median "${origin_secs_a[@]}") s, (b)" \
  "$(median "${origin_secs_b[@]}") s (median)"
echo "origin GETs for the image per case:     (a) $(field 1 "${origin_a[@]}" | paste -sd' ')," \
  "(b) $(field 1 "${origin_b[@]}" | paste -sd' '), (c) $(field 1 "${origin_c[@]}" | paste -sd' ')"
echo "to the clients in (b), (c):             $aggregate_b MB/s, $aggregate_c MB/s" \
  "(all bodies / median wall time; MB = 10^6 bytes)"
cpu_line() {  # case
  local -n c=cpu_$1
  # shellcheck disable=SC2207
  local relay_s=($(field 1 "${c[@]}")) clients_s=($(field 2 "${c[@]}"))
  printf '(%s) relay %s s, clients %s s' "$1" "$(median "${relay_s[@]}")" \
    "$(median "${clients_s[@]}")"
}
echo "CPU (user+sys, median):                 $(cpu_line a); $(cpu_line b); $(cpu_line c)"
probe_line() {  # case
  local -n p=probe_$1
  # shellcheck disable=SC2207
  local medians=($(field 2 "${p[@]}")) maxes=($(field 3 "${p[@]}"))
  printf '(%s) median %s ms, max %s ms (runs: %s)' "$1" \
    "$(printf '%s\n' "${medians[@]}" | sort -g | awk '{v[NR] = $1}
      END {printf "%.1f", 1000 * v[int((NR + 1) / 2)]}')" \
    "$(printf '%s\n' "${maxes[@]}" | sort -g | tail -n 1 | awk '{printf "%.1f", 1000 * $1}')" \
    "$(printf '%s\n' "${maxes[@]}" | awk '{printf "%s%.1f", (NR > 1 ? " " : ""), 1000 * $1}')"
}
echo "a cached 2 KiB cfg during the storm:    $(probe_line b); $(probe_line c)"
echo "                                        (one keep-alive client, 10 requests/s; max of runs)"
echo "relay peak RSS (VmHWM) during (b):      $rss_mib MiB (max of runs)"
echo "relay log:                              $log_requests answers for the image ($want_requests" \
  "expected)," \
  "$log_non200 not 200, $log_warnings warning/error line(s)"
echo

fail=0
ok_ratio=$(bench_holds "$ratio" "<=" "$kTargetRatio")
ok_rss=$(bench_holds "$rss_mib" "<" "$kTargetRssMiB")
bench_judge 46 "goal (b)/(a) <= $kTargetRatio ($kTargetClients clients):" "$ok_ratio" "$ratio"
bench_judge 46 "target relay peak RSS in (b) < $kTargetRssMiB MiB:" "$ok_rss" "$rss_mib MiB"
if ((!quick && clients != kTargetClients)); then
  echo "note: the goal is stated for $kTargetClients clients; this run had $clients"
fi
# Reaching here means every case passed them; they fail the run (exit 2) where they fail.
printf '%-46s PASS\n' "check every body's sha256 and length:"
printf '%-46s PASS\n' "check one origin GET per cold case, none warm:"
if ((log_requests != want_requests || log_non200 != 0 || log_warnings != 0)); then
  echo "note: the relay's log is not clean (see the figures above); kept in $work"
  keep_work=1
fi
echo
bench_result "storm: $clients clients / 1 client, cold $size_mb MiB image (wall s)" "$med_b" \
  "$med_a" s "$ratio" "<=$kTargetRatio" "$ok_ratio"
bench_result "relay peak RSS (storm, $clients clients)" "$rss_mib" - MiB - "<$kTargetRssMiB MiB" \
  "$ok_rss"

if ((check && fail)); then
  exit 1
fi
exit 0
