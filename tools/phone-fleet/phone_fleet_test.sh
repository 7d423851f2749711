#!/usr/bin/env bash
# A small boot storm against the real relay: 24 phones over every protocol at once, 2 MiB
# firmware images behind a 200 Mbit/s emulated WAN, a cold cache. Checks what a user of the
# relay would: every phone completed its boot without an error, every phone got its whole image,
# the origin served each image the phones asked for exactly once (single flight across HTTP,
# HTTPS, TFTP, FTP and FTPS), and the relay stopped cleanly.
# usage: phone_fleet_test.sh path/to/phone_fleet path/to/siterelay
set -uo pipefail
FLEET=${1:?usage: $0 phone_fleet siterelay}
RELAY=${2:?usage: $0 phone_fleet siterelay}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/phone-fleet-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

start=$(date +%s)
"$FLEET" --phones 24 --mix http=40,https=15,tftp=15,ftp=15,ftps=15 --firmware-mb 2 --storm \
  --wan-rate-mbit 200 --duration 60 --progress 0 --verify --relay-binary "$RELAY" \
  --work "$WORK/run" --json "$WORK/report.json" > "$WORK/table.txt" 2> "$WORK/stderr.txt"
rc=$?
elapsed=$(($(date +%s) - start))
cat "$WORK/table.txt"
if [[ $rc -ne 0 ]]; then
  echo "FAIL: phone_fleet exited $rc" >&2
  cat "$WORK/stderr.txt" >&2
  [[ -f "$WORK/run/relay.log" ]] && tail -n 40 "$WORK/run/relay.log" >&2
  exit 1
fi

python3 - "$WORK/report.json" "$elapsed" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
elapsed = int(sys.argv[2])
failures = []
def check(what, ok):
    if not ok:
        failures.append(what)
o = r["overall"]
check("24 phones, all completed: %s" % o["completed"], o["phones"] == 24 and o["completed"] == 24)
check("no errors: %s" % o["error_samples"], o["errors"] == 0 and o["ok"] == 24)
check("every protocol booted", sorted({c["protocol"] for c in r["classes"]}) ==
      ["ftp", "ftps", "http", "https", "tftp"])
fw = o["steps"]["firmware"]
check("24 firmware fetches, 2 MiB each: %s bytes" % fw["bytes_served"],
      fw["count"] == 24 and fw["bytes_served"] == 24 * 2 * 1024 * 1024)
firmware = r["origin"]["firmware"]
asked = [p for p, s in firmware.items() if s["get"] > 0]
check("the phones' images were asked of the origin: %s" % asked, len(asked) >= 1)
for path, s in firmware.items():
    if s["get"] == 0 and s["head"] == 0:
        continue
    check("%s served exactly once by the origin: %s" % (path, s),
          s["full"] == 1 and s["partial"] == 0 and s["body_bytes"] == 2 * 1024 * 1024)
check("origin body bytes no more than the images asked for plus small files",
      r["bytes"]["origin_body_bytes"] < (len(asked) + 1) * 2 * 1024 * 1024)
check("the relay was sampled and stopped cleanly: %s" % r["relay"]["failure"],
      r["relay"]["sampled"] and r["relay"]["failure"] == "" and r["relay"]["peak_rss_kib"] > 0)
check("within 30 s (took %d s)" % elapsed, elapsed <= 30)
for f in failures:
    print("FAIL:", f, file=sys.stderr)
print("%d checks failed" % len(failures))
sys.exit(1 if failures else 0)
EOF
