#!/usr/bin/env bash
# Cross-builds siterelay for arm64 (aarch64) with Debian's cross toolchain and the arm64 -dev
# packages (multiarch), runs the unit tests under qemu-user, and prints the figures
# docs/appliance.md records: the stripped binary's size and the relay's resident memory when
# idle and after serving, measured under qemu-user (whose own memory is included: an upper
# bound). Installs what it needs (dpkg --add-architecture arm64; root or sudo).
#
# usage: image/arm64/build.sh [BUILD_DIR]     (default build-arm64)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-arm64}
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)

packages=(g++-aarch64-linux-gnu qemu-user-static libuv1-dev:arm64 libssl-dev:arm64
  libcurl4-openssl-dev:arm64 libsqlite3-dev:arm64 libzstd-dev:arm64 libtomlplusplus-dev:arm64
  libgtest-dev:arm64 libgmock-dev:arm64)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "arm64: installing ${missing[*]}"
  dpkg --print-foreign-architectures | grep -qx arm64 || "${sudo[@]}" dpkg --add-architecture arm64
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
fi

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSITERELAY_WERROR=ON \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchain-aarch64-linux-gnu.cmake"
cmake --build "$build"
file_type=$(readelf -h "$build/siterelay" | sed -n 's/.*Machine: *//p')
echo "arm64: built $build/siterelay ($file_type)"

# The unit tests (GoogleTest) under qemu-user; the integration scripts drive the binary with
# amd64 tools and need binfmt_misc, which a container may not have.
ctest --test-dir "$build" -j"$(nproc)" --timeout 600 -E '^(integration|browser)\.' \
  --output-on-failure | tail -n 5

aarch64-linux-gnu-strip -o "$build/siterelay.stripped" "$build/siterelay"
size=$(stat -c %s "$build/siterelay.stripped")
echo "arm64: stripped binary $size bytes"

# Resident memory: the relay on its defaults with a fresh data_dir, idle, then after 200 reads.
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
printf '<APPLICATION APP_FILE_PATH="sip.ld"/>\n' > "$work/000000000000.cfg"
cat > "$work/relay.toml" <<TOML
data_dir = "$work/data"
[http]
listen = ["127.0.0.1:0"]
[https]
listen = []
[tftp]
listen = []
[ftp]
listen = []
implicit_tls_listen = []
[admin]
listen = ["127.0.0.1:0"]
TOML
mkdir "$work/tree" && cp "$work/000000000000.cfg" "$work/tree/"
qemu-aarch64-static -L / "$build/siterelay" import "$work/tree" --config "$work/relay.toml" > /dev/null
qemu-aarch64-static -L / "$build/siterelay" serve --config "$work/relay.toml" 2> "$work/serve.log" &
pid=$!
for _ in $(seq 1 200); do grep -q 'admin: http://' "$work/serve.log" && break; sleep 0.1; done
port=$(sed -n 's|.*phones: http://[^ ]*:\([0-9]*\)/ .*|\1|p' "$work/serve.log" | head -n 1)
[[ -n $port ]] || { cat "$work/serve.log" >&2; exit 1; }
sleep 2
idle=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
for _ in $(seq 1 200); do curl -sf -o /dev/null "http://127.0.0.1:$port/000000000000.cfg"; done
served=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
echo "arm64: resident under qemu-user: idle ${idle} KiB, peak after 200 reads ${served} KiB"
