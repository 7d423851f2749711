#!/usr/bin/env bash
# The .deb that `cpack` makes from this build tree (issue 10, docs/appliance.md): its Depends
# name every shared library the binary needs (dpkg-shlibdeps), it holds the binary (stripped,
# under the 4 MB footprint goal), the production config as a conffile, the systemd unit pointing
# at that binary and config, and the docs; and the binary it carries runs. The paths follow this
# tree's CMAKE_INSTALL_PREFIX (/usr for the CI build, as for a real package). Then the package is
# installed with apt into a clean Debian 12 made by mmdebstrap (from the Debian mirror; needs
# root), which proves Depends is complete and right, and `siterelay --version` runs there.
# About 35 s.
source "$(dirname "$0")/lib.sh"
SITERELAY=$(realpath "$SITERELAY")
BUILD=$(dirname "$SITERELAY")
readonly kMaxBinaryBytes=$((4 * 1000 * 1000))
cd "$WORK" || exit 1
for tool in cpack dpkg-deb; do
  command -v "$tool" > /dev/null || { echo "FAIL: $tool not found" >&2; exit 1; }
done
# A sanitizer build's package carries the sanitizers' runtime and size: the Release tree's is
# the one that is checked (tools/check runs this test there too).
if sanitizer_build; then
  echo "package_test: $BUILD is a sanitizer build; the package is tested from a Release tree"
  finish
  exit
fi
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
[[ $prefix == /usr ]] && etc=/etc || etc=$prefix/etc

cpack --config "$BUILD/CPackConfig.cmake" -B "$WORK/pkg" > cpack.log 2>&1
expect_eq "cpack exit code" 0 "$?"
deb=$(ls "$WORK"/pkg/siterelay_*.deb 2>/dev/null | head -n 1)
[[ -f $deb ]] && pass || { fail "no .deb made: $(tail -n 5 cpack.log)"; finish; exit; }

depends=$(dpkg-deb -f "$deb" Depends)
# Always linked; the DT_NEEDED check below covers the rest (toml++ is a library or headers only,
# depending on how the build found it).
for lib in libuv1 libcurl4 libssl3 libsqlite3-0 libzstd1 libstdc++6 libc6; do
  expect_contains "Depends names $lib" "$lib " "$depends"
done
# Every library the binary names (DT_NEEDED), package by package, must be in Depends.
for needed in $(objdump -p "$SITERELAY" | awk '$1 == "NEEDED" {print $2}'); do
  so=$(ldd "$SITERELAY" | awk -v n="$needed" '$1 == n {print $3}')
  [[ -n $so ]] || { fail "ldd cannot find $needed"; continue; }
  pkg=$(dpkg -S "$(realpath "$so")" 2>/dev/null || dpkg -S "$so" 2>/dev/null)
  pkg=$(head -n 1 <<< "$pkg" | cut -d: -f1)
  [[ -n $pkg ]] || { fail "no package owns $so"; continue; }
  expect_contains "Depends covers $needed" "$pkg" "$depends"
done

contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for path in "$prefix/bin/siterelay" "$etc/siterelay/siterelay.toml" \
    "$prefix/share/doc/siterelay/README.md" "$prefix/share/doc/siterelay/admin.md"; do
  expect_contains "the package holds $path" ".$path" "$contents"
done
unit=$(grep -o '\./[^ ]*/systemd/system/siterelay.service' <<< "$contents")
[[ -n $unit ]] && pass || fail "no systemd unit in the package"
expect_eq "the config is a conffile" "$etc/siterelay/siterelay.toml" \
  "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)"

mkdir root && dpkg-deb -x "$deb" root
expect_contains "the unit starts the packaged binary with the packaged config" \
  "ExecStart=$prefix/bin/siterelay serve --config $etc/siterelay/siterelay.toml" \
  "$(cat "root/$unit")"
size=$(stat -c %s "root$prefix/bin/siterelay")
((size < kMaxBinaryBytes)) && pass || fail "the packaged binary is $size bytes, over $kMaxBinaryBytes"
readelf -S "root$prefix/bin/siterelay" | grep -q '\.symtab' && fail "the packaged binary is not stripped" ||
  pass
expect_contains "the packaged binary runs" "siterelay 0." "$("root$prefix/bin/siterelay" --version)"
echo "package: $(basename "$deb"), $(stat -c %s "$deb") bytes; binary $size bytes"

# A clean bookworm with nothing but apt: the package and what its Depends pull in.
if ! command -v mmdebstrap > /dev/null; then
  fail "mmdebstrap not found (tools/install-deps installs it)"
elif [[ $(id -u) -ne 0 ]]; then
  fail "the clean-chroot install needs root (mmdebstrap's root mode)"
else
  name=$(basename "$deb")
  timeout 300 mmdebstrap --variant=apt --quiet \
    --customize-hook="copy-in $deb /tmp" \
    --customize-hook="chroot \"\$1\" apt-get install -y -q /tmp/$name" \
    --customize-hook="chroot \"\$1\" siterelay --version > \"$WORK/chroot-version\"" \
    --customize-hook="chroot \"\$1\" dpkg-query -W -f='\${Status}' siterelay > \"$WORK/chroot-status\"" \
    bookworm "$WORK/chroot.tar" > mmdebstrap.log 2>&1
  expect_eq "mmdebstrap with the package installed: exit code" 0 "$?"
  expect_eq "installed in a clean bookworm" "install ok installed" "$(cat chroot-status 2>/dev/null)"
  expect_contains "siterelay --version in the clean bookworm" "siterelay 0." \
    "$(cat chroot-version 2>/dev/null)"
  [[ $FAILURES -eq 0 ]] || tail -n 20 mmdebstrap.log >&2
  rm -f "$WORK/chroot.tar"
fi
finish
