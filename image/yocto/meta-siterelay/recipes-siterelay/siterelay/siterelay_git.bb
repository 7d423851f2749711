SUMMARY = "siterelay: site-local provisioning relay for desk phones"
DESCRIPTION = "Caches firmware and configuration from an upstream provisioning origin and serves \
phones over HTTP, HTTPS, TFTP, FTP and FTPS; takes their uploads and sends logs upstream."
HOMEPAGE = "https://siterelay.invalid/"
SECTION = "net"
LICENSE = "CLOSED"

# Point these at your copy of the repository (local.conf or a bbappend).
SITERELAY_GIT_URI ??= "git://git.siterelay.invalid/siterelay.git;protocol=https;branch=main"
SRC_URI = "${SITERELAY_GIT_URI}"
SRCREV ??= "${AUTOREV}"
PV = "0.1.0+git${SRCPV}"
S = "${WORKDIR}/git"

# Keep in step with CMakeLists.txt's find_package / pkg_check_modules (tests/integration/
# yocto_test.sh checks it): libuv, sqlite3, libzstd, tomlplusplus, OpenSSL, CURL, nlohmann_json.
DEPENDS = "libuv sqlite3 zstd tomlplusplus openssl curl nlohmann-json"

inherit cmake systemd useradd pkgconfig

EXTRA_OECMAKE = "-DSITERELAY_TESTS=OFF -DSITERELAY_SYSTEMD_UNIT_DIR=${systemd_system_unitdir}"

# The unit runs the relay as a DynamicUser; images without nss-systemd get a fixed system user
# instead, through this drop-in.
SRC_URI += "file://yocto-user.conf"
USERADD_PACKAGES = "${PN}"
USERADD_PARAM:${PN} = "--system --home-dir /var/lib/siterelay --no-create-home \
                       --shell /sbin/nologin --user-group siterelay"

SYSTEMD_SERVICE:${PN} = "siterelay.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

do_install:append() {
    install -d ${D}${systemd_system_unitdir}/siterelay.service.d
    install -m 0644 ${WORKDIR}/yocto-user.conf ${D}${systemd_system_unitdir}/siterelay.service.d/
}

FILES:${PN} += "${systemd_system_unitdir}/siterelay.service.d"
CONFFILES:${PN} = "${sysconfdir}/siterelay/siterelay.toml"
