#!/usr/bin/env bash
# import -> cache ls (digests equal sha256sum's) -> corrupt an object -> cache verify exits 1 and
# quarantines it -> cache gc; plus the CLI's config and usage errors.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

mkdir -p tree/models/vvx500 tree/.hidden
printf '<APPLICATION APP_FILE_PATH="sip.ld"/>' > tree/000000000000.cfg
head -c 5000000 /dev/urandom > tree/3111-44500-001.sip.ld
cp tree/3111-44500-001.sip.ld tree/models/vvx500/sip.ld
printf '5.9.7\n' > tree/sip.ver
printf 'x' > tree/.hidden/skip.cfg
printf 'data_dir = "%s/data"\n' "$WORK" > relay.toml

out=$("$SITERELAY" import tree --config relay.toml 2>/dev/null); rc=$?
expect_eq "import exit code" 0 "$rc"
expect_eq "import summary" "imported 4 file(s), 9.5 MiB (3 new object(s), 0 unchanged)" "$out"

ls_out=$("$SITERELAY" cache ls --config relay.toml); rc=$?
expect_eq "cache ls exit code" 0 "$rc"
expect_eq "cache ls lines" 4 "$(printf '%s\n' "$ls_out" | wc -l)"
while IFS=$'\t' read -r path size sha state; do
  expect_eq "sha256 of $path" "$(sha256sum "tree/$path" | cut -d' ' -f1)" "$sha"
  expect_eq "size of $path" "$(stat -c %s "tree/$path")" "$size"
  expect_eq "state of $path" "pinned" "$state"
done <<< "$ls_out"
expect_eq "objects on disk (deduplicated)" 3 "$(find data/objects -type f | wc -l)"

out=$("$SITERELAY" cache verify --config relay.toml 2>/dev/null); rc=$?
expect_eq "verify of a healthy cache" 0 "$rc"
expect_contains "verify summary" "verified 3 object(s)" "$out"

# Damage the firmware image in place, keeping its size.
victim=$(sha256sum tree/3111-44500-001.sip.ld | cut -d' ' -f1)
obj="data/objects/${victim:0:2}/$victim"
printf 'XXXX' | dd of="$obj" bs=1 seek=1000 conv=notrunc status=none
out=$("$SITERELAY" cache verify --config relay.toml 2>/dev/null); rc=$?
expect_eq "verify of a damaged cache" 1 "$rc"
expect_contains "verify names the quarantined object" "quarantined $victim" "$out"
expect_contains "verify names the dropped path" "dropped models/vvx500/sip.ld" "$out"
[[ -f "data/quarantine/$victim" ]] && pass || fail "object not in quarantine/"
[[ ! -e "$obj" ]] && pass || fail "damaged object still under objects/"
expect_eq "entries left after quarantine" 2 "$("$SITERELAY" cache ls --config relay.toml | wc -l)"
"$SITERELAY" cache verify --config relay.toml >/dev/null 2>&1
expect_eq "verify after quarantine is clean" 0 "$?"

# Re-import heals what was dropped.
"$SITERELAY" import tree --config relay.toml >/dev/null 2>&1
expect_eq "re-import exit code" 0 "$?"
expect_eq "entries after re-import" 4 "$("$SITERELAY" cache ls --config relay.toml | wc -l)"

out=$("$SITERELAY" cache gc --config relay.toml 2>&1); rc=$?
expect_eq "gc exit code" 0 "$rc"
expect_contains "gc summary" "removed 0 unreferenced object(s)" "$out"

# Defaults: no config file means ./siterelay-data.
mkdir defaults && (cd defaults && "$SITERELAY" import ../tree >/dev/null 2>&1)
[[ -f defaults/siterelay-data/catalog.db ]] && pass || fail "default data_dir not used"

# A bad config file: one line naming file, key and problem; exit 2.
printf '[cache]\nmax_bytes = "lots"\n' > bad.toml
err=$("$SITERELAY" cache ls --config bad.toml 2>&1); rc=$?
expect_eq "bad config exit code" 2 "$rc"
expect_eq "bad config message" \
  "siterelay: bad.toml:2: cache.max_bytes: expected an integer, got a string" "$err"

err=$("$SITERELAY" import 2>&1); rc=$?
expect_eq "usage error exit code" 2 "$rc"
err=$("$SITERELAY" import nowhere --config relay.toml 2>&1); rc=$?
expect_eq "missing import folder exit code" 2 "$rc"
expect_eq "missing import folder message" "siterelay: nowhere is not a directory" "$err"

# Two writers on one data_dir: the second is refused, naming the first.
mkfifo hold
(exec 3>data/lock; flock -x 3; cat hold >/dev/null) &
holder=$!
sleep 0.2
err=$("$SITERELAY" cache gc --config relay.toml 2>&1); rc=$?
echo > hold; wait "$holder"
expect_eq "locked data_dir exit code" 1 "$rc"
expect_contains "locked data_dir message" "is in use by another siterelay process" "$err"

expect_contains "--version" "siterelay " "$("$SITERELAY" --version)"
expect_contains "--help lists import" "import DIR" "$("$SITERELAY" --help)"
expect_contains "import --help" "usage: siterelay import DIR" "$("$SITERELAY" import --help)"
finish
