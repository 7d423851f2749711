#!/usr/bin/env bash
# Builds the siterelay branch-office VM (issue 10, image/vm/README.md) from a siterelay .deb:
# Debian 12 made by mmdebstrap from Debian's packages (the kernel, systemd with networkd and
# resolved, systemd-boot, the .deb with what its Depends pull in), on a GPT disk with an EFI
# system partition and an ext4 root, written as
#   OUT_DIR/siterelay-VERSION.qcow2   QEMU/KVM, Proxmox, libvirt (compressed)
#   OUT_DIR/siterelay-VERSION.ova     VMware (OVF 1.0 + streamOptimized VMDK; pvscsi, vmxnet3, EFI)
#   OUT_DIR/siterelay-VERSION.vhdx    Hyper-V generation 2 (Secure Boot off)
# and OUT_DIR/SHA256SUMS. Nothing is mounted and no loop device is used (containers have
# neither): sfdisk lays out the disk image, and the EFI partition (mtools) and the ext4 root
# (`mkfs.ext4 -d`) are written into it at their offsets. The image carries no password, key or
# machine-id: root is locked, and the relay's admin password and TLS key are made at the VM's
# first boot.
#
# usage: image/vm/build.sh [--disk-size 8G] [--formats qcow2,ova,vhdx]
#                          [--kernel linux-image-cloud-amd64] [--mirror http://deb.debian.org]
#                          DEB OUT_DIR
# Needs root (mmdebstrap's root mode, file ownership in the image), the Debian mirror, and
# mmdebstrap, mtools, fdisk (sfdisk), e2fsprogs, qemu-utils (tools/install-deps has them).
# About 2 minutes and 2 GB of scratch space under OUT_DIR.
set -euo pipefail

usage() {
  sed -n '/^# usage:/,/^#  *DEB OUT_DIR/s/^# \{0,1\}//p' "$0" >&2
  exit 2
}
disk_size=8G
formats=qcow2,ova,vhdx
# The cloud flavour has the virtio, VMware (pvscsi, vmxnet3) and Hyper-V drivers at a quarter of
# the generic kernel's size; it lacks AHCI and e1000, so VirtualBox users build with
# --kernel linux-image-amd64.
kernel=linux-image-cloud-amd64
mirror=${MIRROR:-http://deb.debian.org}
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --disk-size) disk_size=${2:?}; shift 2 ;;
    --formats) formats=${2:?}; shift 2 ;;
    --kernel) kernel=${2:?}; shift 2 ;;
    --mirror) mirror=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done
[[ $# -eq 2 ]] || usage
deb=$(realpath "$1")
out=$2
here=$(cd "$(dirname "$0")" && pwd)

die() { echo "build.sh: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (mmdebstrap's root mode; the image's files belong to root)"
for tool in mmdebstrap dpkg-deb mkfs.ext4 mformat mmd mcopy sfdisk qemu-img; do
  command -v "$tool" > /dev/null || die "$tool not found (tools/install-deps installs it)"
done
[[ -f $deb ]] || die "no such .deb: $deb"
[[ $(dpkg-deb -f "$deb" Package) == siterelay ]] || die "$deb is not the siterelay package"
version=$(dpkg-deb -f "$deb" Version)
name=siterelay-$version
mkdir -p "$out"
out=$(realpath "$out")
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
step() { printf '[%4ds] %s\n' "$SECONDS" "$*"; }

# Sizes: the EFI system partition holds systemd-boot and two kernels with their initrds (the
# running one and an update: about 40 MiB a pair with the cloud kernel); the root takes the rest.
disk_bytes=$(numfmt --from=iec "${disk_size%B}")
readonly kMiB=$((1024 * 1024))
readonly kEspMiB=256
root_start_mib=$((1 + kEspMiB))
# 1 MiB at the end for the backup GPT.
root_mib=$((disk_bytes / kMiB - root_start_mib - 1))
((root_mib >= 1024)) || die "--disk-size $disk_size leaves under 1 GiB for the root"
root_uuid=$(cat /proc/sys/kernel/random/uuid)
esp_serial=$(tr -d - < /proc/sys/kernel/random/uuid | cut -c1-8 | tr a-f A-F)
esp_uuid=${esp_serial:0:4}-${esp_serial:4:4}

step "mmdebstrap: Debian 12 ($kernel, systemd, networkd, systemd-boot) and $(basename "$deb")"
packages=(
  systemd-sysv udev dbus  # init; dbus for networkctl, hostnamectl, timedatectl
  "$kernel" systemd-boot  # kernel-install keeps the EFI partition's kernels in step with apt
  systemd-resolved systemd-timesyncd  # DNS for the origin's name; time for its certificate
  ca-certificates  # libcurl checks the origin's certificate against these
  iproute2 iputils-ping procps curl nano  # what an operator reaches for on the console
)
# systemd-resolved points /etc/resolv.conf at its stub, which does not run in the chroot: the
# host's resolver serves the .deb's install (the image gets the stub link back below).
mmdebstrap --variant=minbase --quiet \
  --include="$(IFS=,; echo "${packages[*]}")" \
  --customize-hook='rm -f "$1/etc/resolv.conf" && cp /etc/resolv.conf "$1/etc/resolv.conf"' \
  --customize-hook="copy-in $deb /tmp" \
  --customize-hook="chroot \"\$1\" apt-get install -y -q /tmp/$(basename "$deb")" \
  --customize-hook="rm \"\$1/tmp/$(basename "$deb")\"" \
  --customize-hook="chroot \"\$1\" apt-get clean" \
  bookworm "$root" \
  "deb $mirror/debian bookworm main" \
  "deb $mirror/debian bookworm-updates main" \
  "deb $mirror/debian-security bookworm-security main" > "$work/mmdebstrap.log" 2>&1 ||
  { tail -n 30 "$work/mmdebstrap.log" >&2; die "mmdebstrap failed"; }

step "configure: network, banner, first boot, fstab, kernel command line"
# The relay's state (admin password, TLS key, cache) must be made on the VM, never here.
for state in var/lib/siterelay var/lib/private/siterelay; do
  [[ ! -e $root/$state ]] || die "the image holds /$state: it must be made at first boot"
done
cp -rT --no-preserve=ownership "$here/rootfs" "$root"
chown -R 0:0 "$root/etc/systemd" "$root/etc/issue.d" "$root/etc/profile.d" "$root/etc/repart.d" \
  "$root/etc/kernel" "$root/usr/lib/siterelay-vm"
# "uninitialized": systemd makes a new machine-id at the first boot and treats that boot as the
# first (ConditionFirstBoot, siterelay-firstboot.service). Seeds and secrets that would be
# the same in every VM made from this image go.
printf 'uninitialized\n' > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root/var/lib/systemd/random-seed" \
  "$root/var/lib/systemd/credential.secret"
echo siterelay > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tsiterelay\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
  > "$root/etc/hosts"
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
cat > "$root/etc/fstab" <<EOF
# <file system>  <mount point>  <type>  <options>  <dump>  <pass>
# The root grows to the end of the disk at boot (systemd-repart, /etc/repart.d/50-root.conf).
UUID=$root_uuid  /  ext4  errors=remount-ro,x-systemd.growfs  0  1
# The EFI system partition: systemd-boot, and the kernels that kernel-install copies there.
UUID=$esp_uuid  /boot/efi  vfat  umask=0077  0  0
EOF
mkdir -p "$root/boot/efi"
# The kernel command line, for the image's boot entry and for kernel-install's later ones. The
# console is the hypervisor's screen (tty0, last: systemd's prompts go there) and the first
# serial port (kernel messages and a login, for headless hosts and the boot test).
cmdline="root=UUID=$root_uuid ro console=ttyS0,115200 console=tty0"
echo "$cmdline" > "$root/etc/kernel/cmdline"
# systemd-firstboot would stop the first boot to ask for a locale, a time zone and a root
# password on the console; the appliance boots unattended (siterelay-firstboot.service instead).
systemctl --root="$root" --quiet mask systemd-firstboot.service
systemctl --root="$root" --quiet enable systemd-networkd.service systemd-resolved.service \
  systemd-timesyncd.service siterelay-firstboot.service
[[ -L $root/etc/systemd/system/multi-user.target.wants/siterelay.service ]] ||
  die "the package did not enable siterelay.service"
# No password and no key in the image: root is locked, there is no SSH server (and so no host key).
[[ $(awk -F: '$1 == "root" {print $2}' "$root/etc/shadow") == [*!]* ]] ||
  die "root has a password in the image"
! compgen -G "$root/etc/ssh/ssh_host_*" > /dev/null || die "the image holds SSH host keys"

kernels=("$root"/boot/vmlinuz-*)
[[ ${#kernels[@]} -eq 1 && -f ${kernels[0]} ]] || die "expected one kernel in /boot: ${kernels[*]}"
kver=${kernels[0]##*/vmlinuz-}
[[ -f $root/boot/initrd.img-$kver ]] || die "no initrd for $kver"

step "disk: GPT, $disk_size"
# Both file systems are written straight into the disk image at their partitions' offsets
# (mtools' IMAGE@@OFFSET, mke2fs's -E offset=): no copy of a partition, no mount.
raw=$work/disk.raw
truncate -s "$disk_bytes" "$raw"
# The root has the x86-64 root type (Discoverable Partitions Specification), which
# /etc/repart.d/50-root.conf matches.
sfdisk --quiet "$raw" <<EOF
label: gpt
start=1MiB, size=${kEspMiB}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp
start=${root_start_mib}MiB, size=${root_mib}MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=root
EOF

step "EFI system partition: systemd-boot, kernel $kver"
# The layout `bootctl install` and kernel-install (entry token "siterelay") make, so that apt's
# kernel updates land next to this one and `bootctl update` finds systemd-boot.
esp=$raw@@1M
mformat -i "$esp" -T $((kEspMiB * kMiB / 512)) -F -v ESP -N "$esp_serial" ::
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/EFI/systemd ::/loader ::/loader/entries ::/siterelay \
  "::/siterelay/$kver"
efi=$root/usr/lib/systemd/boot/efi/systemd-bootx64.efi
mcopy -i "$esp" "$efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$efi" ::/EFI/systemd/systemd-bootx64.efi
# editor no: the kernel command line cannot be edited at the boot menu (init=/bin/sh would be
# root without a password). The menu stays 3 s, to pick the previous kernel after an update.
printf 'timeout 3\neditor no\n' > "$work/loader.conf"
mcopy -i "$esp" "$work/loader.conf" ::/loader/loader.conf
# The entry kernel-install writes for this kernel (it rewrites this file when apt updates it),
# with the relay's name in the title; the sort key is kernel-install's, so that the newest
# kernel comes first and is the default.
cat > "$work/entry.conf" <<EOF
title      siterelay $version (Debian 12)
version    $kver
sort-key   debian
options    $cmdline
linux      /siterelay/$kver/linux
initrd     /siterelay/$kver/initrd.img-$kver
EOF
mcopy -i "$esp" "$work/entry.conf" "::/loader/entries/siterelay-$kver.conf"
mcopy -i "$esp" "${kernels[0]}" "::/siterelay/$kver/linux"
mcopy -i "$esp" "$root/boot/initrd.img-$kver" "::/siterelay/$kver/initrd.img-$kver"

step "root file system: ext4, $root_mib MiB"
mkfs.ext4 -q -F -L siterelay-root -U "$root_uuid" -E offset=$((root_start_mib * kMiB)) \
  -d "$root" "$raw" "${root_mib}M"
root_used=$(du -sm "$root" | cut -f1)
rm -rf "$root"

outputs=()
IFS=, read -ra wanted <<< "$formats"
for format in "${wanted[@]}"; do
  case $format in
    qcow2)
      step "qcow2"
      qemu-img convert -c -O qcow2 "$raw" "$work/$name.qcow2"
      outputs+=("$name.qcow2")
      ;;
    vhdx)
      step "vhdx"
      # 1 MiB blocks, as Microsoft advises for Linux guests (and a third smaller than the 32 MiB
      # default).
      qemu-img convert -O vhdx -o subformat=dynamic,block_size=1M "$raw" "$work/$name.vhdx"
      outputs+=("$name.vhdx")
      ;;
    ova)
      step "ova: OVF 1.0 descriptor, streamOptimized VMDK, manifest"
      mkdir "$work/ova"
      vmdk=$name-disk1.vmdk
      qemu-img convert -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic \
        "$raw" "$work/ova/$vmdk"
      sed -e "s|@NAME@|$name|g" -e "s|@VERSION@|$version|g" -e "s|@VMDK@|$vmdk|g" \
        -e "s|@VMDK_BYTES@|$(stat -c %s "$work/ova/$vmdk")|g" \
        -e "s|@CAPACITY_BYTES@|$disk_bytes|g" \
        -e "s|@POPULATED_BYTES@|$((root_used * kMiB))|g" \
        "$here/siterelay.ovf.in" > "$work/ova/$name.ovf"
      (cd "$work/ova" && for f in "$name.ovf" "$vmdk"; do
         echo "SHA256($f)= $(sha256sum "$f" | cut -c1-64)"; done) > "$work/ova/$name.mf"
      # An OVA is a ustar archive with the descriptor first, then the manifest, then the disks
      # in the order the descriptor names them (OVF 1.0, section 5.3).
      tar -C "$work/ova" --format=ustar --owner=0 --group=0 --mode=0644 \
        -cf "$work/$name.ova" "$name.ovf" "$name.mf" "$vmdk"
      rm -rf "$work/ova"
      outputs+=("$name.ova")
      ;;
    *) die "unknown format $format (qcow2, ova, vhdx)" ;;
  esac
done
rm -f "$raw"

(cd "$work" && sha256sum "${outputs[@]}") > "$work/SHA256SUMS"
for f in "${outputs[@]}" SHA256SUMS; do mv -f "$work/$f" "$out/$f"; done
step "done: $out"
for f in "${outputs[@]}"; do
  printf '  %-32s %6s MiB\n' "$f" "$(($(stat -c %s "$out/$f") / kMiB))"
done
echo "  root file system: $root_used MiB used of $root_mib MiB; kernel $kver"
