# An nginx origin for the integration scripts: one worker on a loopback port serving $ORIGIN,
# with an access log that says what a pull-through relay asked. Source it after lib.sh, with
# NGINX_DIR (scratch for nginx) and ORIGIN (the tree) set; NGINX_LOCATIONS (an array of
# directives for the origin's server block, each with its ';': locations, but also e.g.
# "client_max_body_size 16m;" for PUT uploads or "access_log off;") is read when nginx starts.
# Sets NGINX (the binary: $NGINX or /usr/sbin/nginx), NGINX_PID and NGINX_PORT. Used by the tests
# here and by tools/soak/kill9.sh.
# Installs traps that stop the relay (RELAY_PID) and nginx however the script ends; KEEP_WORK=1
# keeps the scratch directory. The EXIT trap calls `cleanup` by name when the script ends, so a
# script with more to undo (a mount, a process of its own) defines its own cleanup after sourcing
# this one, built from stop_origin_and_relay and remove_work.
NGINX=${NGINX:-/usr/sbin/nginx}
if [[ ! -x $NGINX ]]; then
  echo "FAIL: $NGINX not found (apt-get install nginx-light); this test needs a real origin" >&2
  exit 1
fi
NGINX_PID=
RELAY_PID=
NGINX_LOCATIONS=()
mkdir -p "$NGINX_DIR/tmp" "$ORIGIN"

# kill_nginx_hard: SIGKILL to the master and its workers at once (the master first, so it cannot
# start new workers), as a crashed or power-cut origin.
kill_nginx_hard() {
  [[ -n $NGINX_PID ]] || return 0
  local workers
  workers=$(pgrep -P "$NGINX_PID" || true)
  # shellcheck disable=SC2086  # one pid a word
  kill -9 "$NGINX_PID" $workers 2>/dev/null
  wait "$NGINX_PID" 2>/dev/null
  NGINX_PID=
}

# stop_nginx: graceful stop (QUIT), bounded; SIGKILL past 10 s.
stop_nginx() {
  [[ -n $NGINX_PID ]] || return 0
  kill -QUIT "$NGINX_PID" 2>/dev/null
  for _ in $(seq 1 100); do
    kill -0 "$NGINX_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$NGINX_PID" 2>/dev/null; then
    kill_nginx_hard
  else
    wait "$NGINX_PID" 2>/dev/null
    NGINX_PID=
  fi
}

# nginx_server PORT ROOT LOG [LISTEN_FLAGS [DIRECTIVE...]]: one server block on 127.0.0.1:PORT
# serving ROOT, logging (format origin) to $NGINX_DIR/LOG; LISTEN_FLAGS e.g. "ssl http2", each
# DIRECTIVE a line as nginx wants it (with its ';').
nginx_server() {
  local port=$1 root=$2 log=$3 flags=${4:-}
  shift $(($# < 4 ? $# : 4))
  echo "  server {"
  echo "    listen 127.0.0.1:$port${flags:+ $flags};"
  echo "    root $root;"
  echo "    access_log $NGINX_DIR/$log origin;"
  local directive
  for directive in "$@"; do echo "    $directive"; done
  echo "  }"
}

# write_nginx_conf PORT [SERVER...]: one worker, the origin tree as root on PORT (log access.log,
# NGINX_LOCATIONS in its server block). Any SERVER (nginx_server's text) is added. The access log has the request line, the status, the
# headers a pull-through relay sends, the protocol it spoke and the Basic-auth user it sent.
write_nginx_conf() {
  local port=$1
  shift
  {
    (($(id -u) == 0)) && echo "user root root;"  # the workers must read the private $WORK
    cat <<EOF
worker_processes 1;
daemon off;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 1024; }
http {
  default_type application/octet-stream;
  log_format origin '"\$request" \$status range="\$http_range" if_range="\$http_if_range" '
                    'inm="\$http_if_none_match" ims="\$http_if_modified_since" '
                    'bytes=\$body_bytes_sent proto=\$server_protocol user="\$remote_user"';
  sendfile on;
  client_body_temp_path $NGINX_DIR/tmp/body;
  proxy_temp_path $NGINX_DIR/tmp/proxy;
  fastcgi_temp_path $NGINX_DIR/tmp/fastcgi;
  uwsgi_temp_path $NGINX_DIR/tmp/uwsgi;
  scgi_temp_path $NGINX_DIR/tmp/scgi;
EOF
    nginx_server "$port" "$ORIGIN" access.log "" ${NGINX_LOCATIONS[@]+"${NGINX_LOCATIONS[@]}"}
    local server
    for server in "$@"; do echo "$server"; done
    echo "}"
  } > "$NGINX_DIR/nginx.conf"
}

# launch_nginx PORT [SERVER...]: starts nginx (write_nginx_conf's arguments) in the background and
# waits (5 s at most) until it answers on PORT; the master binds every listener before a worker
# answers, so the other servers are up too. Returns 1 when it did not start (e.g. a port is taken).
launch_nginx() {
  write_nginx_conf "$@"
  : > "$NGINX_DIR/error.log"
  "$NGINX" -e "$NGINX_DIR/error.log" -c "$NGINX_DIR/nginx.conf" -p "$NGINX_DIR/" \
    > "$NGINX_DIR/stdout.log" 2>&1 &
  NGINX_PID=$!
  local code
  for _ in $(seq 1 100); do
    kill -0 "$NGINX_PID" 2>/dev/null || break
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$1/ping")
    [[ $code == 404 ]] && return 0
    sleep 0.05
  done
  kill_nginx_hard
  return 1
}

# start_nginx [STATUS]: on a free port (a few tries), sets NGINX_PORT; when nginx does not start,
# prints its logs and exits with STATUS (1). The readiness probe's 404 for /ping is the only line
# in access.log before the cases run; each case counts its own paths.
start_nginx() {
  for _ in $(seq 1 10); do
    NGINX_PORT=$(pick_port)
    launch_nginx "$NGINX_PORT" && return 0
  done
  echo "nginx did not start:" >&2
  cat "$NGINX_DIR/stdout.log" "$NGINX_DIR/error.log" >&2
  exit "${1:-1}"
}

# origin_log PATH [LOG]: the origin's access-log lines (access.log or LOG) for one path.
origin_log() { grep -F "\"GET /$1 HTTP/" "$NGINX_DIR/${2:-access.log}"; }
origin_gets() { origin_log "$@" | wc -l; }
# sha256 of stdin / of a file (openssl's SHA-NI code: 100 clients hash 10 GB in case 1).
digest() { openssl dgst -sha256 -r | cut -c1-64; }
sha() { digest < "$1"; }

# stop_relay_bounded: lib.sh's stop_relay with a bound: SIGTERM, 15 s to exit (the contract
# gives it 10 s), then SIGKILL and a failure. Sets STOP_RC.
stop_relay_bounded() {
  [[ -n $RELAY_PID ]] || return 0
  kill -TERM "$RELAY_PID" 2>/dev/null
  for _ in $(seq 1 150); do kill -0 "$RELAY_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$RELAY_PID" 2>/dev/null; then
    fail "the relay did not exit within 15 s of SIGTERM"
    kill -9 "$RELAY_PID" 2>/dev/null
  fi
  STOP_RC=0
  wait "$RELAY_PID" || STOP_RC=$?
  RELAY_PID=
}

# stop_origin_and_relay: stops the relay (stop_relay_bounded; a script that has already killed
# it clears RELAY_PID) and nginx (kill_nginx_hard), then SIGKILLs every other background job of
# the script and reaps them all. A process the script wants stopped more gently (SIGTERM to a
# collector) it stops before calling this.
stop_origin_and_relay() {
  stop_relay_bounded 2>/dev/null
  kill_nginx_hard
  local job
  for job in $(jobs -p); do kill -9 "$job" 2>/dev/null; done
  wait 2>/dev/null
}

# remove_work: removes the scratch directory, or with KEEP_WORK=1 says where it was kept.
remove_work() {
  if [[ -n ${KEEP_WORK:-} ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}

# cleanup: the EXIT trap's work. Redefined by a script with more to undo (see the top).
cleanup() {
  stop_origin_and_relay
  remove_work
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM  # ctest's timeout: still stop nginx and the relay
