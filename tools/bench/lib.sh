# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154  # its variables are set and read by the sourcing script
# Shared by the benchmark scripts in this folder: sourced with no arguments (so "$@" here is the
# script's command line), not run. The sourcing script sets bench_name (for messages) first and
# defines usage(). The sections after the options serve what the scripts have in common: the
# binary and the generated contents (all three), and for http.sh and storm.sh, which run
# `siterelay serve` and nginx on loopback, the work directory, both servers and the trap.

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
command_line=$(printf '%q ' "$0" "$@")
command_line=${command_line% }

readonly kSeed=20240601     # contents of every generated file (and import.sh's file sizes)
readonly kStartSeconds=10   # for a server to start listening
readonly kStopSeconds=15    # for a server to stop (the relay drains for up to 10 s)

die() {
  echo "$bench_name: $*" >&2
  exit 2
}

# ---- options ----------------------------------------------------------------------------------

# The options every benchmark takes: --quick, --check, --runs N, --binary PATH. Sets quick,
# check, runs and binary; BENCH_SHIFT is how many arguments it used, 0 when $1 is not one of
# them (the script handles it).
quick=0
check=0
runs=
binary="$repo_root/build/siterelay"
bench_common_option() {
  BENCH_SHIFT=1
  case $1 in
    --quick) quick=1 ;;
    --check) check=1 ;;
    --runs)
      (($# >= 2)) || die "--runs needs a number"
      runs=$2
      BENCH_SHIFT=2
      ;;
    --runs=*) runs=${1#--runs=} ;;
    --binary)
      (($# >= 2)) || die "--binary needs a path"
      binary=$2
      BENCH_SHIFT=2
      ;;
    --binary=*) binary=${1#--binary=} ;;
    *) BENCH_SHIFT=0 ;;
  esac
}

# Reads the command line, "$@": the options above, then the script's own through
# bench_own_option when it defines one (called like bench_common_option, it sets BENCH_SHIFT the
# same way), -h and --help (usage, exit 0); anything else prints the usage to stderr, exit 2.
bench_parse_options() {
  while (($#)); do
    bench_common_option "$@"
    if ((BENCH_SHIFT == 0)) && declare -F bench_own_option >/dev/null; then
      bench_own_option "$@"
    fi
    if ((BENCH_SHIFT)); then
      shift "$BENCH_SHIFT"
      continue
    fi
    case $1 in
      -h | --help)
        usage
        exit 0
        ;;
      *)
        usage >&2
        exit 2
        ;;
    esac
  done
}

bench_positive() {  # option, value
  [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer, not '$2'"
}

# ---- prerequisites ----------------------------------------------------------------------------

missing_tool() {  # command, Debian package
  die "$1 is missing; tools/install-deps installs it (Debian package '$2')"
}

# Dies at the first command that is not on PATH; each argument is "command:Debian package".
bench_need_tools() {
  local tool
  for tool in "$@"; do
    command -v "${tool%%:*}" >/dev/null || missing_tool "${tool%%:*}" "${tool#*:}"
  done
}

# Sets nginx. Debian installs nginx in /usr/sbin, which is not on a normal user's PATH.
bench_find_nginx() {
  nginx=$(PATH="$PATH:/usr/sbin:/sbin" command -v nginx) || missing_tool nginx nginx
}

# Checks that --binary is there and makes it an absolute path.
bench_resolve_binary() {
  [[ -x $binary ]] || die "no siterelay binary at $binary; build it with:" \
    "cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build"
  binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
}

# ---- the generated contents and the header ----------------------------------------------------

# $1 bytes of AES-128-CTR keystream under a fixed key, from IV index $2: the same bytes on every
# machine, incompressible, and never the same for two indexes (the index is the IV's high half,
# so keystreams do not overlap even for 100 MB files).
bench_keystream() {  # size, iv index
  head -c "$1" /dev/zero |
    openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$kSeed")" \
      -iv "$(printf '%016x%016x' "$2" 0)"
}

# Sets what the header tells about the relay under test ($relay, the copy that runs) and the
# directory $1 its data lives in: fs_type, relay_version, relay_sha and source_rev.
bench_relay_facts() {  # directory
  fs_type=$(findmnt -no FSTYPE -T "$1" 2>/dev/null || stat -f -c %T "$1" 2>/dev/null ||
    echo unknown)
  relay_version=$("$relay" --version 2>&1 || true)
  relay_sha=$(sha256sum "$relay" | cut -c1-12)
  source_rev=$(git -C "$repo_root" describe --always --dirty 2>/dev/null ||
    echo "not a git checkout")
}

# The command, date and machine lines that open every benchmark's output.
bench_machine_lines() {
  local cpu_model mem_total
  cpu_model=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
  mem_total=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null ||
    true)
  echo "command:    $command_line"
  echo "date:       $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine:    nproc=$(nproc), cpu=${cpu_model:-unknown}, mem=${mem_total:-unknown}," \
    "kernel $(uname -r)"
}

# ---- the work directory and the trap (http.sh, storm.sh) --------------------------------------

# Makes a fresh work directory under ${TMPDIR:-/tmp} and sets the trap that stops both servers
# and removes it however the script ends, or keeps it when keep_work is 1, naming $1 (what in it
# is worth a look). Sets work (absolute), nginx_dir, and relay: a private copy of the binary, so
# a rebuild of build/ during the benchmark cannot swap it.
bench_work_dir() {  # what a kept work directory is kept for
  work=$(mktemp -d "${TMPDIR:-/tmp}/siterelay-bench-${bench_name%.sh}.XXXXXX")
  work=$(cd "$work" && pwd)  # absolute: http.sh's [tls] cert and key must be
  # data_dir goes into a TOML literal string and paths into nginx.conf: no quotes, blanks or ';'.
  [[ $work != *[\'\"\;[:space:]]* ]] || die "the work directory $work has a quote, blank or ';'"
  kept_for=$1
  relay_pid=
  relay_log=
  nginx_pid=
  keep_work=0
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  relay="$work/siterelay"
  cp "$binary" "$relay"
  nginx_dir="$work/nginx"
  mkdir -p "$nginx_dir/tmp"
}

# The trap: first the script's bench_cleanup_own when it defines one (what it started besides
# the servers), then the relay and nginx, then the work directory.
# shellcheck disable=SC2317  # run by the trap
bench_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if declare -F bench_cleanup_own >/dev/null; then bench_cleanup_own; fi
  stop_relay
  stop_nginx
  if ((keep_work)); then
    echo "$bench_name: kept $work ($kept_for) for a look" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}

# Waits up to $2 seconds for process $1 to exit; returns 1 if it is still there.
wait_gone() {
  local pid=$1 tenths=$(($2 * 10))
  while ((tenths-- > 0)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  ! kill -0 "$pid" 2>/dev/null
}

# ---- siterelay (http.sh, storm.sh) ------------------------------------------------------------

# Starts `siterelay serve --config $config` with its stderr going to the log file $1 and waits
# for it to announce its ports. Sets relay_pid, relay_log, relay_port (its phones' port, over
# scheme $2: http, https, tftp or ftp) and admin_port.
start_relay() {  # log file, scheme
  relay_log=$1
  : >"$relay_log"  # before the reads below: the child opens it only once it runs
  "$relay" serve --config "$config" 2>>"$relay_log" &
  relay_pid=$!
  local tenths=$((kStartSeconds * 10))
  relay_port=
  admin_port=
  while ((tenths-- > 0)); do
    relay_port=$(sed -n "s|.*phones: $2://127\\.0\\.0\\.1:\\([0-9]*\\)/.*|\\1|p" "$relay_log" |
      head -n 1)
    admin_port=$(sed -n 's|.*admin: http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$relay_log" | head -n 1)
    [[ -n $relay_port && -n $admin_port ]] && return 0
    kill -0 "$relay_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$relay_log" >&2
  die "siterelay serve did not announce its ports within $kStartSeconds s; log above"
}

# The listeners for a relay.toml: phones on 127.0.0.1 over $1 (http, https: [tls] is the
# script's, tftp, or ftp: plain FTP, which offers AUTH TLS when [tls] is set), the admin port on
# 127.0.0.1, both on any free port, announced in the log for start_relay; no other phones'
# listener (no implicit FTPS either). $2, optional: more lines for the [ftp] table
# (passive_ports).
bench_relay_listeners() {  # scheme[, [ftp] lines]
  local http='[]' https='[]' tftp='[]' ftp='[]'
  case $1 in
    https) https='["127.0.0.1:0"]' ;;
    tftp) tftp='["127.0.0.1:0"]' ;;
    ftp) ftp='["127.0.0.1:0"]' ;;
    *) http='["127.0.0.1:0"]' ;;
  esac
  cat <<EOF
[http]
listen = $http
[https]
listen = $https
[tftp]
listen = $tftp
[ftp]
listen = $ftp
implicit_tls_listen = []
${2:+$2
}[admin]
listen = ["127.0.0.1:0"]
EOF
}

stop_relay() {
  [[ -n $relay_pid ]] || return 0
  kill -TERM "$relay_pid" 2>/dev/null || true
  wait_gone "$relay_pid" "$kStopSeconds" || kill -KILL "$relay_pid" 2>/dev/null || true
  wait "$relay_pid" 2>/dev/null || true
  relay_pid=
}

# The relay fails the run, with the work directory kept, when it has died or answered wrongly
# (storm.sh: or asked the origin more than once).
relay_failed() {
  keep_work=1
  if [[ -n $relay_log ]]; then
    echo "--- last lines of $relay_log other than 200s:" >&2
    grep -v ' https\? GET .* 200 ' "$relay_log" | tail -n 20 >&2 || true
  fi
  die "siterelay: $*"
}

# ---- figures ------------------------------------------------------------------------------------

# bench_median DECIMALS VALUE...: the median of the values, printed with DECIMALS decimals.
bench_median() {
  local decimals=$1
  shift
  printf '%s\n' "$@" | sort -g | awk -v d="$decimals" '{v[NR] = $1} END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.*f", d, m
  }'
}

# ---- targets ------------------------------------------------------------------------------------

# bench_holds A OP B: prints 1 when "A OP B" holds for decimals A and B (OP: >=, >, <=, <), else 0.
bench_holds() {
  awk -v a="$1" -v op="$2" -v b="$3" \
    'BEGIN { r = op == ">=" ? a >= b : op == ">" ? a > b : op == "<=" ? a <= b : a < b
             print r ? 1 : 0 }'
}

# bench_judge WIDTH LABEL OK SHOWN: one target line, "LABEL PASS (SHOWN)" or FAIL (which sets
# fail=1), or "not judged in --quick" when $quick is set. LABEL is padded to WIDTH.
bench_judge() {
  if ((quick)); then
    printf "%-${1}s not judged in --quick (%s)\n" "$2" "$4"
  elif (($3)); then
    printf "%-${1}s PASS (%s)\n" "$2" "$4"
  else
    printf "%-${1}s FAIL (%s)\n" "$2" "$4"
    fail=1
  fi
}

# ---- results for tools/bench/run ----------------------------------------------------------------

# bench_result NAME RELAY PEER UNIT RATIO TARGET OK: one machine-readable line per figure, the
# last lines of a benchmark's output, which tools/bench/run collects into its table:
#   RESULT name="http big file" relay=2983.6 peer=2519.9 unit=MB/s ratio=1.18 target=">=1.0" pass=1
# RELAY and PEER are the figures in UNIT (no blanks); PEER and RATIO are "-" for a figure without
# a peer (resident memory, a latency target), and then TARGET applies to RELAY itself
# ("<64 MiB"), otherwise to RATIO (relay / peer). TARGET is "-" for a figure reported without a
# target. OK is 1 or 0 (bench_holds), or "-"; pass is "-" under --quick, which judges nothing,
# and where there is no target. NAME and TARGET hold no double quote.
bench_result() {  # name, relay, peer, unit, ratio, target, ok
  local pass=$7
  if ((quick)) || [[ $6 == - ]]; then pass=-; fi
  printf 'RESULT name="%s" relay=%s peer=%s unit=%s ratio=%s target="%s" pass=%s\n' \
    "$1" "$2" "$3" "$4" "$5" "$6" "$pass"
}

# ---- nginx (http.sh: the reference server; storm.sh: the origin) ------------------------------

# Writes $nginx_dir/nginx.conf: nginx in the foreground with its files in $nginx_dir, serving
# $tree with sendfile from 127.0.0.1:$1. The script sets nginx_workers (worker_processes),
# nginx_http (its own lines for the http block, two spaces in: types, logging, limits, TLS),
# nginx_listen (what follows the address in the listen directive: "ssl" or nothing) and
# nginx_about (the rest of the file's first line, after its own name).
write_nginx_conf() {  # port
  {
    echo "# Written by tools/bench/$bench_name$nginx_about"
    # A root master would hand the workers to 'nobody', who cannot read the private work
    # directory; as any other user the workers run as that user and 'user' must be absent.
    (($(id -u) == 0)) && echo "user root root;"
    cat <<EOF
worker_processes $nginx_workers;
daemon off;
pid $nginx_dir/nginx.pid;
error_log $nginx_dir/error.log warn;
events { worker_connections 1024; }
http {
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
$nginx_http
  client_body_temp_path $nginx_dir/tmp/body;
  proxy_temp_path $nginx_dir/tmp/proxy;
  fastcgi_temp_path $nginx_dir/tmp/fastcgi;
  uwsgi_temp_path $nginx_dir/tmp/uwsgi;
  scgi_temp_path $nginx_dir/tmp/scgi;
  server {
    listen 127.0.0.1:$1${nginx_listen:+ $nginx_listen};
    root $tree;
  }
}
EOF
  } >"$nginx_dir/nginx.conf"
}

# A free port cannot be reserved for another process, so try a few random unlisted ones until
# nginx binds one; it is up once $1://127.0.0.1:<port>/$2 answers (curl with the options that
# follow). Sets nginx_pid and nginx_port.
start_nginx() {  # scheme, path, curl options...
  local scheme=$1 path=$2 attempt tenths
  shift 2
  for ((attempt = 0; attempt < 10; attempt++)); do
    nginx_port=$((20000 + RANDOM % 40000))
    ss -Htln "sport = :$nginx_port" | grep -q . && continue
    write_nginx_conf "$nginx_port"
    : >"$nginx_dir/error.log"
    "$nginx" -e "$nginx_dir/error.log" -c "$nginx_dir/nginx.conf" -p "$nginx_dir/" \
      >"$nginx_dir/stdout.log" 2>&1 &
    nginx_pid=$!
    tenths=$((kStartSeconds * 10))
    while ((tenths-- > 0)); do
      kill -0 "$nginx_pid" 2>/dev/null || break
      if curl -s -o /dev/null --max-time 2 "$@" "$scheme://127.0.0.1:$nginx_port/$path"; then
        return 0
      fi
      sleep 0.1
    done
    if kill -0 "$nginx_pid" 2>/dev/null; then stop_nginx; fi
    wait "$nginx_pid" 2>/dev/null || true
    nginx_pid=
    grep -q "Address already in use" "$nginx_dir/error.log" || break
  done
  cat "$nginx_dir/stdout.log" "$nginx_dir/error.log" >&2
  die "nginx did not start; its output above"
}

stop_nginx() {
  [[ -n $nginx_pid ]] || return 0
  local workers
  workers=$(pgrep -P "$nginx_pid" || true)
  kill -QUIT "$nginx_pid" 2>/dev/null || true  # what `nginx -s quit` sends
  if ! wait_gone "$nginx_pid" "$kStopSeconds"; then
    # shellcheck disable=SC2086  # one pid a word
    kill -KILL "$nginx_pid" $workers 2>/dev/null || true
  fi
  wait "$nginx_pid" 2>/dev/null || true
  nginx_pid=
}
