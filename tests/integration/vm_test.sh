#!/usr/bin/env bash
# The branch-office VM (issue 10, image/vm/README.md), booted as an operator would boot it: the
# image is built by image/vm/build.sh from the .deb that `cpack` makes of this build tree, then
# started in qemu-system-x86_64 (q35, UEFI firmware from OVMF, 1 GiB, user networking with the
# relay's ports forwarded to loopback). Checked from outside: /healthz answers, a phone's
# settings upload is served back byte for byte over HTTP and HTTPS, the HTTPS certificate names
# the address the VM took by DHCP, the API wants the password. Checked on the serial console:
# the login banner shows that address, the console URL and root's one-time password; that
# password must be replaced at the first login; the relay's admin password and key were made
# during this boot; no unit failed; the root grew to a disk made larger than the image; and the
# admin password read there opens the API. Then a clean poweroff. The OVA is checked too: its
# layout, its manifest, and that its disk holds the same bytes as the qcow2.
#
# The image is cached in BUILD/vm-image, keyed by the .deb's contents (its files and maintainer
# scripts: cpack's archive itself differs each run by its timestamps) and image/vm's sources;
# a build takes about 1-2 minutes, a boot under TCG (no KVM) under a minute. The VM runs under
# TCG; SITERELAY_VM_ACCEL=kvm asks for KVM (qemu falls back to TCG where it cannot). Needs
# root and the Debian mirror for a build; qemu-system-x86, qemu-utils, ovmf, mtools, fdisk.
source "$(dirname "$0")/lib.sh"
SITERELAY=$(realpath "$SITERELAY")
BUILD=$(dirname "$SITERELAY")
SOURCE=$(cd "$(dirname "$0")/../.." && pwd)
readonly kBootTimeoutSeconds=240
readonly kGuestAddress=10.0.2.15  # what qemu's user network hands the first guest by DHCP
readonly kOvmfCode=/usr/share/OVMF/OVMF_CODE_4M.fd
readonly kOvmfVars=/usr/share/OVMF/OVMF_VARS_4M.fd
cd "$WORK" || exit 1
t0=$SECONDS

for tool in cpack dpkg-deb mmdebstrap qemu-system-x86_64 qemu-img mformat sfdisk openssl; do
  command -v "$tool" > /dev/null || { echo "FAIL: $tool not found (tools/install-deps)" >&2; exit 1; }
done
[[ -f $kOvmfCode ]] || { echo "FAIL: no $kOvmfCode (package ovmf)" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "FAIL: building the image needs root (mmdebstrap)" >&2; exit 1; }
# A sanitizer build's package is not an appliance (and its binary not what a VM would run under
# the unit's system call filter); tools/check boots the VM from its GCC Release tree.
if sanitizer_build; then
  echo "vm_test: $BUILD is a sanitizer build; the VM is tested from a Release tree"
  finish
  exit
fi

# --- the image: built from this tree's package, or the cached one of the same contents --------
cpack --config "$BUILD/CPackConfig.cmake" -B "$WORK/pkg" > cpack.log 2>&1 ||
  { echo "FAIL: cpack: $(tail -n 5 cpack.log)" >&2; exit 1; }
deb=$(ls "$WORK"/pkg/siterelay_*.deb | head -n 1)
mkdir debx && dpkg-deb -R "$deb" debx
key=$( (cd debx && find . -printf '%p %m %U %G %l\n' | LC_ALL=C sort &&
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum &&
        cd "$SOURCE/image/vm" && find . -type f -print0 | LC_ALL=C sort -z |
          xargs -0 sha256sum) | sha256sum | cut -c1-64)
version=$(dpkg-deb -f "$deb" Version)
cache=$BUILD/vm-image
qcow2=$cache/siterelay-$version.qcow2
ova=$cache/siterelay-$version.ova
if [[ -f $cache/key && $(cat "$cache/key") == "$key" && -f $qcow2 && -f $ova ]]; then
  echo "image: cached in $cache (key ${key:0:12})"
else
  rm -rf "$cache"
  build_start=$SECONDS
  if ! "$SOURCE/image/vm/build.sh" --formats qcow2,ova "$deb" "$cache" > build.log 2>&1; then
    tail -n 30 build.log >&2
    fail "image/vm/build.sh failed"
    finish
    exit
  fi
  echo "$key" > "$cache/key"
  echo "image: built in $((SECONDS - build_start)) s"
  sed -n '/^  /p' build.log
fi
pass

# --- the OVA: descriptor first, then the manifest, then the disk; the manifest right; the disk
# the same bytes as the qcow2 -------------------------------------------------------------------
expect_eq "OVA members, descriptor first" \
  "siterelay-$version.ovf siterelay-$version.mf siterelay-$version-disk1.vmdk" \
  "$(tar -tf "$ova" | xargs)"
mkdir ova && tar -C ova -xf "$ova"
while read -r line; do
  file=$(sed -n 's/^SHA256(\(.*\))= .*/\1/p' <<< "$line")
  expect_eq "OVA manifest: sha256 of $file" "${line##*= }" \
    "$(sha256sum "ova/$file" | cut -c1-64)"
done < "ova/siterelay-$version.mf"
expect_contains "the OVF names the VMDK with its size" \
  "ovf:href=\"siterelay-$version-disk1.vmdk\" ovf:id=\"file1\" ovf:size=\"$(stat -c %s \
    "ova/siterelay-$version-disk1.vmdk")\"" "$(cat "ova/siterelay-$version.ovf")"
expect_contains "the VMDK is streamOptimized" "streamOptimized" \
  "$(qemu-img info "ova/siterelay-$version-disk1.vmdk")"
expect_eq "the OVA's disk holds the qcow2's bytes" "Images are identical." \
  "$(qemu-img compare -q "ova/siterelay-$version-disk1.vmdk" "$qcow2" && echo "Images are identical.")"
rm -rf ova

# --- boot ----------------------------------------------------------------------------------------
# A throwaway overlay, 2 GiB larger than the image: every run is a first boot, and the root must
# grow into the new room (systemd-repart and x-systemd.growfs).
image_bytes=$(qemu-img info --output=json "$qcow2" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')
qemu-img create -q -f qcow2 -b "$qcow2" -F qcow2 disk.qcow2 $((image_bytes + 2 * 1024 ** 3))
cp "$kOvmfVars" vars.fd
mkfifo serial.in serial.out
exec 4<> serial.in 5<> serial.out
cat <&5 > console.log &
CAT_PID=$!
QEMU_PID=
cleanup() {
  [[ -n $QEMU_PID ]] && kill "$QEMU_PID" 2> /dev/null
  kill "$CAT_PID" 2> /dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# console_text: what the console printed, without carriage returns and terminal escapes.
console_text() { tr -d '\r' < console.log | sed 's/\x1b\[[?0-9;]*[a-zA-Z]//g'; }
# wait_console REGEX SECONDS: until the console has printed REGEX (bounded); 1 if it did not.
wait_console() {
  local deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    console_text | grep -aqE "$1" && return 0
    sleep 1
  done
  return 1
}
send() { printf '%s\r' "$1" >&4; }
# run_console CMD: runs CMD in the root shell and prints what it printed, between markers that
# the echo of the typed line cannot match (the shell expands $((...)) only in the output). The
# tag is this subshell's pid: unique per call.
run_console() {
  local tag=$BASHPID
  send "echo @@begin:$tag:\$((6*7)); $1; echo @@end:$tag:\$((6*7))"
  wait_console "^@@end:$tag:42\$" 60 || { echo "(no answer to: $1)"; return; }
  console_text | sed -n "/^@@begin:$tag:42\$/,/^@@end:$tag:42\$/p" | sed '1d;$d'
}

# TCG unless asked for KVM: a /dev/kvm can be there and still not run a guest (this project's
# machines have a nested one on which OVMF's first instructions end in "KVM internal error").
accel=(-accel tcg)
[[ ${SITERELAY_VM_ACCEL:-} == kvm ]] && accel=(-accel kvm -accel tcg)
# Ports for the forwards: free now; qemu fails at start if one is taken since, and is retried.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<> "/dev/tcp/127.0.0.1/$p") 2> /dev/null || { echo "$p"; return; }
  done
}
for _ in 1 2 3; do
  http_port=$(free_port) https_port=$(free_port) admin_port=$(free_port)
  boot_start=$SECONDS
  qemu-system-x86_64 "${accel[@]}" -machine q35 -m 1024 -smp 2 -no-user-config -display none \
    -monitor none -serial pipe:serial \
    -drive if=pflash,format=raw,unit=0,readonly=on,file="$kOvmfCode" \
    -drive if=pflash,format=raw,unit=1,file=vars.fd \
    -drive if=virtio,format=qcow2,file=disk.qcow2 \
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$http_port-:80,hostfwd=tcp:127.0.0.1:$https_port-:8443,hostfwd=tcp:127.0.0.1:$admin_port-:5050" \
    -device virtio-net-pci,netdev=n0 < /dev/null > qemu.log 2>&1 &
  QEMU_PID=$!
  sleep 1
  kill -0 "$QEMU_PID" 2> /dev/null && break
  wait "$QEMU_PID"
  QEMU_PID=
  grep -q 'host forwarding' qemu.log || break
done
[[ -n $QEMU_PID ]] || { fail "qemu did not start: $(cat qemu.log)"; finish; exit; }
grep -q 'failed to initialize kvm' qemu.log && accel=(-accel tcg)
accel_used=${accel[1]}

base=http://127.0.0.1:$http_port
admin=http://127.0.0.1:$admin_port
healthz=
while ((SECONDS - boot_start < kBootTimeoutSeconds)) && kill -0 "$QEMU_PID" 2> /dev/null; do
  healthz=$(curl -s -m 2 "$admin/healthz")
  [[ $healthz == ok* ]] && break
  sleep 1
done
boot_seconds=$((SECONDS - boot_start))
if [[ $healthz != ok* ]]; then
  fail "no /healthz from the VM within ${kBootTimeoutSeconds} s ($accel_used); console:"
  console_text | tail -n 40 >&2
  finish
  exit
fi
pass
echo "boot: /healthz after $boot_seconds s ($accel_used)"

# --- from outside: a phone's settings upload, served back over HTTP and HTTPS ------------------
printf '<PHONE_CONFIG><OVERRIDES device.set="1" vm.test="%s"/></PHONE_CONFIG>\n' "$RANDOM" > phone.cfg
expect_eq "PUT a phone's settings into the VM" 201 \
  "$(curl -s -o /dev/null -w '%{http_code}' -T phone.cfg "$base/0004f2000001-phone.cfg")"
curl -s -o got.cfg "$base/0004f2000001-phone.cfg"
cmp -s got.cfg phone.cfg && pass || fail "the settings read back over HTTP differ"
curl -sk -o got-tls.cfg "https://127.0.0.1:$https_port/0004f2000001-phone.cfg"
cmp -s got-tls.cfg phone.cfg && pass || fail "the settings read back over HTTPS differ"
# The self-signed certificate names every address of the host it was made on: the VM's own,
# from DHCP, so it was made in the VM.
san=$(openssl s_client -connect "127.0.0.1:$https_port" < /dev/null 2> /dev/null |
  openssl x509 -noout -ext subjectAltName 2> /dev/null)
expect_contains "the certificate names the VM's DHCP address" "IP Address:$kGuestAddress" "$san"
expect_contains "the certificate names the VM's host name" "DNS:siterelay" "$san"
expect_eq "the API without the password" 401 \
  "$(curl -s -o /dev/null -w '%{http_code}' "$admin/api/v1/status")"

# --- the serial console ------------------------------------------------------------------------
wait_console 'siterelay login:' 60 || fail "no login prompt on the serial console"
banner=$(console_text)
expect_contains "the banner shows the DHCP address" "Address:        $kGuestAddress" "$banner"
expect_contains "the banner shows the console URL" "http://$kGuestAddress:5050/" "$banner"
expect_contains "the banner says where the admin password is" \
  "/var/lib/siterelay/admin-password" "$banner"
one_time=$(grep -ao 'one-time password [A-Za-z0-9]*' <<< "$banner" | tail -n 1 | awk '{print $3}')
expect_eq "the banner shows a 16-character one-time root password" 16 "${#one_time}"

new_password="vm-test-$RANDOM-$RANDOM-$RANDOM"
send root
wait_console 'Password: *$' 30
send "$one_time"
wait_console 'required to change your password' 30 && pass ||
  fail "the first login did not demand a new password"
wait_console 'Current password: *$' 10 && send "$one_time"
wait_console 'New password: *$' 10 && send "$new_password"
wait_console 'Retype new password: *$' 10 && send "$new_password"
wait_console 'root@siterelay:~# *$' 30 || fail "no root shell after the password change"
send "stty cols 250; bind 'set enable-bracketed-paste off'; export SYSTEMD_PAGER= SYSTEMD_COLORS=0"

expect_eq "systemctl is-system-running" running \
  "$(run_console 'systemctl is-system-running --wait')"
expect_eq "failed units" "" "$(run_console 'systemctl --failed --plain --no-legend')"
expect_eq "the one-time password is off the banner after the first login" gone \
  "$(run_console 'test -e /etc/issue.d/50-siterelay-root.issue && echo there || echo gone')"
# Made during this boot, so not carried by the image: mtime after the kernel's boot time.
expect_eq "the admin password and TLS key were made during this boot" "made at boot" \
  "$(run_console 'b=$(awk "/^btime/ {print \$2}" /proc/stat); for f in /var/lib/private/siterelay/admin-password /var/lib/private/siterelay/tls/*; do [ $(stat -c %Y "$f") -ge $b ] || echo "$f is older than the boot"; done; echo made at boot')"
machine_id=$(run_console 'cat /etc/machine-id')
[[ $machine_id =~ ^[0-9a-f]{32}$ ]] && pass ||
  fail "the first boot made no machine-id: [$machine_id]"
root_bytes=$(run_console 'findmnt -bno SIZE /')
((root_bytes > image_bytes)) && pass ||
  fail "the root did not grow into the larger disk: $root_bytes bytes, image $image_bytes"
admin_password=$(run_console 'cat /var/lib/siterelay/admin-password')
expect_eq "the API with the admin password read on the console" 200 \
  "$(curl -s -o status.json -w '%{http_code}' -u "admin:$admin_password" "$admin/api/v1/status")"
expect_contains "the status lists the HTTP listener" '"0.0.0.0:80"' "$(cat status.json)"

# --- a clean poweroff ---------------------------------------------------------------------------
send 'systemctl poweroff'
for _ in $(seq 1 60); do kill -0 "$QEMU_PID" 2> /dev/null || break; sleep 1; done
if kill -0 "$QEMU_PID" 2> /dev/null; then
  fail "the VM did not power off within 60 s"
else
  wait "$QEMU_PID"
  expect_eq "qemu's exit code after the poweroff" 0 "$?"
  QEMU_PID=
  expect_contains "the kernel powered down" "reboot: Power down" "$(console_text)"
fi
echo "vm_test: $((SECONDS - t0)) s in all, boot to /healthz $boot_seconds s ($accel_used)"
[[ $FAILURES -eq 0 ]] || { echo "--- console (last 40 lines)"; console_text | tail -n 40; } >&2
finish
