#!/usr/bin/env bash
# siterelay dhcp-option: the encodings CONTRACT.md promises, through the real command line.
source "$(dirname "$0")/lib.sh"

expect_eq "last @ separates credentials" 'ftp://PlcmSpIp:%40123$@10.0.0.5' \
  "$("$SITERELAY" dhcp-option 'ftp://PlcmSpIp:@123$@10.0.0.5')"
expect_eq "backslash in DOMAIN\\user" 'https://DOM%5Cuser:pw@relay:8443/prov/' \
  "$("$SITERELAY" dhcp-option 'https://DOM\user:pw@relay:8443/prov/')"
expect_eq "plain URL unchanged" 'ftp://PlcmSpIp:PlcmSpIp@10.1.2.3' \
  "$("$SITERELAY" dhcp-option 'ftp://PlcmSpIp:PlcmSpIp@10.1.2.3')"
err=$("$SITERELAY" dhcp-option 'relay.example' 2>&1); rc=$?
expect_eq "no scheme exit code" 2 "$rc"
expect_contains "no scheme message" "URL needs a scheme" "$err"
finish
