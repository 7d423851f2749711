# Shared helpers for the integration scripts: a scratch directory and assertions that say what
# differed. Source it; $1 of the script is the siterelay binary.
set -uo pipefail
SITERELAY=${1:?usage: $0 path/to/siterelay}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/siterelay-it.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FAILURES=0
CHECKS=0

fail() { echo "FAIL: $*" >&2; FAILURES=$((FAILURES + 1)); }
pass() { CHECKS=$((CHECKS + 1)); }

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  if [[ "$2" == "$3" ]]; then pass; else fail "$1: expected [$2], got [$3]"; fi
}

# expect_contains WHAT NEEDLE HAYSTACK
expect_contains() {
  if [[ "$3" == *"$2"* ]]; then pass; else fail "$1: [$2] not in [$3]"; fi
}

finish() {
  echo "$CHECKS checks passed, $FAILURES failed"
  [[ $FAILURES -eq 0 ]]
}
