#!/usr/bin/env bash
# The Yocto layer (image/yocto/meta-siterelay) against the build it packages. Nothing here can run
# bitbake, so this keeps what bitbake would trip over in step with CMakeLists.txt: the recipe's
# DEPENDS is exactly the Yocto names of the libraries CMake looks for (a library added to
# CMakeLists.txt without a recipe entry fails here, and the reverse), each of them comes from
# openembedded-core, meta-oe or this layer, the recipe inherits cmake systemd useradd pkgconfig,
# its -D options are ones CMakeLists.txt reads, and layer.conf is compatible with kirkstone and
# scarthgap. Under a second.
source "$(dirname "$0")/lib.sh"
SOURCE=$(realpath "$(dirname "$0")/../..")
LAYER=$SOURCE/image/yocto/meta-siterelay
RECIPE=$LAYER/recipes-siterelay/siterelay/siterelay_git.bb
cd "$WORK" || exit 1

# CMake's name for a dependency -> the Yocto recipe that provides it ("-": nothing to build).
declare -A yocto=(
  [libuv]=libuv [sqlite3]=sqlite3 [libzstd]=zstd [tomlplusplus]=tomlplusplus
  [OpenSSL]=openssl [CURL]=curl [nlohmann_json]=nlohmann-json
  [Threads]=- [PkgConfig]=-  # libc; the pkgconfig class
)
# Where each recipe comes from when this layer does not carry it.
declare -A upstream=(
  [openssl]=openembedded-core [curl]=openembedded-core [sqlite3]=openembedded-core
  [zstd]=openembedded-core [libuv]=meta-oe [nlohmann-json]=meta-oe
)

cmake_deps=$(grep -v '^\s*#' "$SOURCE/CMakeLists.txt" |
  sed -n -e 's/^\s*pkg_check_modules([A-Z0-9_]* REQUIRED IMPORTED_TARGET \([A-Za-z0-9_+-]*\).*/\1/p' \
         -e 's/^\s*find_package(\([A-Za-z0-9_]*\).*/\1/p' | sort -u)
[[ -n $cmake_deps ]] && pass || fail "found no dependencies in CMakeLists.txt"
want=()
for dep in $cmake_deps; do
  if [[ -z ${yocto[$dep]+set} ]]; then
    fail "CMakeLists.txt needs $dep: add its Yocto recipe to the recipe's DEPENDS and to this map"
  elif [[ ${yocto[$dep]} != - ]]; then
    want+=("${yocto[$dep]}")
  fi
done

depends=$(sed -n 's/^DEPENDS = "\(.*\)"$/\1/p' "$RECIPE")
expect_eq "the recipe's DEPENDS is what CMakeLists.txt looks for" \
  "$(printf '%s\n' "${want[@]}" | sort | xargs)" "$(printf '%s\n' $depends | sort | xargs)"
for r in $depends; do
  if compgen -G "$LAYER/recipes-*/*/${r}_*.bb" > /dev/null; then
    pass
  elif [[ -n ${upstream[$r]+set} ]]; then
    pass
  else
    fail "no layer provides $r: add a recipe to meta-siterelay or say where it comes from"
  fi
done

expect_contains "the recipe inherits" "inherit cmake systemd useradd pkgconfig" "$(cat "$RECIPE")"
for opt in $(grep -o -- '-D[A-Z_]*' <<< "$(sed -n 's/^EXTRA_OECMAKE = "\(.*\)"$/\1/p' "$RECIPE")"); do
  name=${opt#-D}
  grep -q "$name" "$SOURCE/CMakeLists.txt" && pass || fail "EXTRA_OECMAKE sets $name, which CMakeLists.txt never reads"
done
expect_contains "the unit is the recipe's service" 'SYSTEMD_SERVICE:${PN} = "siterelay.service"' \
  "$(cat "$RECIPE")"
grep -q 'image/systemd/siterelay.toml DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/siterelay' \
  "$SOURCE/CMakeLists.txt" && pass || fail "the config is no longer installed where CONFFILES says"
expect_contains "the config is a conffile" 'CONFFILES:${PN} = "${sysconfdir}/siterelay/siterelay.toml"' \
  "$(cat "$RECIPE")"

compat=$(sed -n 's/^LAYERSERIES_COMPAT_siterelay = "\(.*\)"$/\1/p' "$LAYER/conf/layer.conf")
for series in kirkstone scarthgap; do
  expect_contains "layer.conf is compatible with $series" "$series" "$compat"
done
image=$(cat "$LAYER/recipes-core/images/siterelay-image.bb")
expect_contains "the image is core-image-minimal" "require recipes-core/images/core-image-minimal.bb" "$image"
expect_contains "the image installs siterelay" 'IMAGE_INSTALL:append = " siterelay' "$image"
finish
