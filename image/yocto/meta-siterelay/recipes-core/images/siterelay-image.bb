SUMMARY = "A small image for a branch-office siterelay box"
DESCRIPTION = "core-image-minimal with systemd, networking by DHCP and siterelay enabled: the \
phones' provisioning server on the branch LAN."
LICENSE = "MIT"

require recipes-core/images/core-image-minimal.bb

IMAGE_INSTALL:append = " siterelay ca-certificates tzdata"
IMAGE_FEATURES:append = " ssh-server-dropbear"

# siterelay's unit is systemd-only (Type=notify, its watchdog, the hardening).
REQUIRED_DISTRO_FEATURES = "systemd"
inherit features_check

# Room for the cache: firmware images are 30-300 MB each.
IMAGE_ROOTFS_EXTRA_SPACE = "2097152"
