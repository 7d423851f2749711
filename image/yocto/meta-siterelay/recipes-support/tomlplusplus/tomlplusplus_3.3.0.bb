SUMMARY = "TOML config file parser and serializer for C++17"
HOMEPAGE = "https://marzer.github.io/tomlplusplus/"
SECTION = "libs"
LICENSE = "MIT"
# The upstream LICENSE ("Copyright (c) 2019-2020 Mark Gillard", MIT).
LIC_FILES_CHKSUM = "file://LICENSE;md5=1e7d0de69ec94c50e21c19eabb135388"

# The same source Debian 12 builds libtomlplusplus3 from (its .dsc gives this sha256).
SRC_URI = "${DEBIAN_MIRROR}/main/t/tomlplusplus/tomlplusplus_${PV}+ds.orig.tar.xz"
SRC_URI[sha256sum] = "a143f15016090d88d72e018632efa43b1124bb62285d8c72d51d0cdb45ad787b"
S = "${WORKDIR}/tomlplusplus-${PV}"

inherit meson pkgconfig

# The compiled library, as Debian ships it; no tests or examples.
EXTRA_OEMESON = "-Dcompile_library=true -Dbuild_tests=false -Dbuild_examples=false \
                 -Dgenerate_cmake_config=true"

BBCLASSEXTEND = "native nativesdk"
