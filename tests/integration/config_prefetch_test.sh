#!/usr/bin/env bash
# Config-aware prefetch (issue 12; files/config_gate.h), against nginx as the origin: 20 phones
# boot on a master config naming old.ld; the origin's config is then switched to name a new
# 100 MB image (sip-6.0.ld), sent at 25 MB/s. While the relay fetches it, every phone that reads the config
# still gets the old one and the old image, byte-exact; the origin is asked for the new image once;
# when the first phone sees the new config the image is already whole at the relay, and after
# that every phone gets the new config and the new image without the origin being asked again.
# Needs /usr/sbin/nginx (or $NGINX), curl and openssl. About 25 s.
source "$(dirname "$0")/lib.sh"
NGINX_DIR=$WORK/nginx
ORIGIN=$WORK/origin
source "$(dirname "$0")/nginx.sh"
SITERELAY=$(realpath "$SITERELAY")
cd "$WORK" || exit 1

PHONES=20
PART=3111-44500-001
UA="FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application"
master() { printf '<APPLICATION APP_FILE_PATH="%s" CONFIG_FILES="site.cfg"/>\n' "$1"; }
master old.ld > "$ORIGIN/000000000000.cfg"
master sip-6.0.ld > new.cfg
echo '<polycomConfig/>' > "$ORIGIN/site.cfg"
head -c 2000000 /dev/urandom > "$ORIGIN/$PART.old.ld"
head -c 100000000 /dev/urandom > "$ORIGIN/$PART.sip-6.0.ld"
old_cfg=$(sha "$ORIGIN/000000000000.cfg")
new_cfg=$(sha new.cfg)
old_image=$(sha "$ORIGIN/$PART.old.ld")
new_image=$(sha "$ORIGIN/$PART.sip-6.0.ld")
NGINX_LOCATIONS=("location ~ \\.ld\$ { limit_rate 25m; }")
start_nginx
write_config relay.toml "[origin]
url = \"http://127.0.0.1:$NGINX_PORT/\"
fresh_for = 5
sync_interval = 0"
start_relay relay.toml
base="http://127.0.0.1:$HTTP_PORT"

# phone I GET PATH: what phone I (its own address, its User-Agent) is sent for PATH, as a sha256,
# or "status N" for anything but a 200.
phone() {
  local out code
  out=$(mktemp -p "$WORK")
  code=$(curl -s --max-time 60 --interface "127.0.1.$1" -A "$UA" -o "$out" -w '%{http_code}' \
    "$base/$2")
  if [[ $code == 200 ]]; then sha "$out"; else echo "status $code"; fi
  rm -f "$out"
}
mac() { printf '0004f2%06x' "$1"; }

# boot I: PHONES.md's boot up to the image; prints "CONFIG_SHA IMAGE_SHA".
boot() {
  local cfg image
  phone "$1" "$(mac "$1").cfg" > /dev/null  # a 404: the shared config next
  cfg=$(mktemp -p "$WORK")
  curl -s --max-time 10 --interface "127.0.1.$1" -A "$UA" -o "$cfg" "$base/000000000000.cfg"
  image=$(sed -n 's/.*APP_FILE_PATH="\([^"]*\)".*/\1/p' "$cfg")
  echo "$(sha "$cfg") $(phone "$1" "$PART.$image")"
  rm -f "$cfg"
}

# all_phones OUT CMD...: runs `CMD... I` for every phone at once, each into OUT.I; then prints them.
all_phones() {
  local out=$1 i pids=()
  shift
  for i in $(seq 1 "$PHONES"); do
    "$@" "$i" > "$out.$i" &
    pids+=($!)
  done
  wait "${pids[@]}"  # not a bare wait: nginx and the relay are children too
  cat "$out".*
  rm -f "$out".*
}
read_config() { phone "$1" 000000000000.cfg; }

# ---- 1. The site boots on the old config --------------------------------------------------------
want="$old_cfg $old_image"
bad=$(all_phones boot boot | grep -cvxF "$want")
expect_eq "phones that booted on anything but the old config and image" 0 "$bad"

# ---- 2. The origin names a new image: the relay holds the config back while it fetches it ------
touch -d "@$(($(date +%s) + 2))" new.cfg  # nginx's ETag is mtime and size: a new one
mv new.cfg "$ORIGIN/000000000000.cfg"
sleep 5.2  # the relay's copy is stale now (fresh_for): the next read asks the origin
during=0 old_reads=0 first_new=
deadline=$((SECONDS + 90))
while ((SECONDS < deadline)); do
  reads=$(all_phones read read_config)
  if grep -qxF "$new_cfg" <<< "$reads"; then
    # The first phone to see the new config: the new image must be whole at the relay already,
    # which the origin's log says (nginx logs a request when its last byte is sent).
    first_new=$(origin_log "$PART.sip-6.0.ld" | grep -c ' 200 .*bytes=100000000 ')
    break
  fi
  old_reads=$((old_reads + $(grep -cxF "$old_cfg" <<< "$reads")))
  if ((during < 3)); then  # a few phones fetch the old image meanwhile, from the cache
    during=$((during + 1))
    expect_eq "the old image during the prefetch" "$old_image" "$(phone "$during" "$PART.old.ld")"
  fi
  sleep 0.3
done
expect_eq "reads of the new config before the deadline" 1 "$([[ -n $first_new ]] && echo 1)"
expect_eq "the new image at the relay when the first phone saw the new config" 1 "$first_new"
if ((old_reads < PHONES)); then
  fail "the hold was not seen: $old_reads reads of the old config after the switch"
else
  pass
fi
expect_contains "the relay's log" "holding the new 000000000000.cfg" "$(cat serve.log)"
expect_contains "the relay's log" "published the new 000000000000.cfg" "$(cat serve.log)"

# ---- 3. After the switch every phone gets the new config and the image, from the relay ----------
want="$new_cfg $new_image"
bad=$(all_phones boot boot | grep -cvxF "$want")
expect_eq "phones that did not boot on the new config and image" 0 "$bad"
expect_eq "origin GETs of the new image" 1 "$(origin_gets "$PART.sip-6.0.ld")"
expect_eq "origin GETs of the plain sip-6.0.ld (the split image was there)" 0 \
  "$(origin_gets sip-6.0.ld)"
# The old image was revalidated while the config was held (304s), sent in full once.
expect_eq "origin GETs of the old image's body" 1 "$(origin_log "$PART.old.ld" | grep -c ' 200 ')"
stop_relay_bounded
expect_eq "relay exit after the run" 0 "$STOP_RC"
finish
