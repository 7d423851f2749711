# Cross-building for 64-bit ARM with Debian's cross toolchain and multiarch arm64 -dev packages
# (image/arm64/build.sh installs them). Tests run through qemu-user (CMAKE_CROSSCOMPILING_EMULATOR),
# with / as the sysroot: libc6:arm64 and the libraries live in /lib and /usr/lib/aarch64-linux-gnu.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static;-L;/)
# The arm64 .pc files only (multiarch), never the build machine's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
