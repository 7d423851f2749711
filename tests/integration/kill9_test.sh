#!/usr/bin/env bash
# kill -9, the CI mode of tools/soak/kill9.sh (issue 11; DESIGN.md "On disk": an acknowledged
# upload survives kill -9; restart needs no repair beyond start-up's own). Seven iterations with
# one data_dir, each phase once — a pull-through download, phone uploads (logs and settings), a
# `siterelay import`, a manifest pass from the admin API, a relay still starting, log shipping to
# a failing collector, a `siterelay sync` — killed with SIGKILL at a random moment; after each:
# new objects hash to their names, `cache verify` passes, a manifest set is whole or absent, and
# the restarted relay serves every acknowledged upload and download byte for byte; at the end the
# collector holds every acknowledged log line once and the origin every acknowledged settings
# file. Then the checks' own test: the same soak, told to lose 10 acknowledged bytes of a log and
# flip a byte of an object after its last kill, must fail and name both.
# Needs nginx (the origin) and tests/log_collector. About 25 s (Release).
source "$(dirname "$0")/lib.sh"
SOAK=$(dirname "$0")/../../tools/soak/kill9.sh
export TMPDIR=$WORK  # the soak's scratch directories go with this test's

rc=0
bash "$SOAK" --short --binary "$SITERELAY" > "$WORK/soak.out" 2>&1 || rc=$?
cat "$WORK/soak.out"
expect_eq "the soak's exit code" 0 "$rc"
figures=$(grep ' iterations in ' "$WORK/soak.out")
expect_contains "the soak ran its 7 iterations" "kill9: 7 iterations in" "$figures"
expect_contains "nothing lost, corrupt or crashed" "data lost 0, corrupt 0, crashes 0" "$figures"
kills=$(sed -n 's/.*: \([0-9]*\) kills (.*/\1/p' <<< "$figures")
((${kills:-0} >= 5)) && pass || fail "only ${kills:-0} kills landed (want 5 of the 7 phases at least)"
checked=$(sed -n 's/.*; \([0-9]*\) acknowledged uploads checked.*/\1/p' <<< "$figures")
((${checked:-0} > 0)) && pass || fail "no acknowledged upload was checked: [$figures]"

rc=0
bash "$SOAK" --short --iterations 2 --tamper --binary "$SITERELAY" > "$WORK/tamper.out" 2>&1 || rc=$?
expect_eq "tampered: the soak fails" 1 "$rc"
tampered=$(cat "$WORK/tamper.out")
expect_contains "tampered: the lost log bytes are found" "LOST: 0004f2" "$tampered"
expect_contains "tampered: the flipped object is found" "does not hash to its name" "$tampered"
expect_contains "tampered: cache verify fails too" "cache verify exit 1" "$tampered"
((FAILURES == 0)) || cat "$WORK/tamper.out" >&2
finish
