#!/usr/bin/env bash
# The test suite, from a fresh machine: set-up (apt, Node.js, npm ci, build), then `npm test`.
#   bash scripts/test.sh            on the machine's Node.js
#   bash scripts/test.sh 24 22 20   once per Node.js major (what CI runs), each fetched from the npm
#                                   registry by scripts/node-version.sh and put first on PATH: the
#                                   first runs every test file; the others every file but the long
#                                   scenario suites in SCENARIOS, which drive no Node.js API that the
#                                   files run there do not (CI's time: three full runs take ~90 min)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ $# -gt 0 ] || exec npm test

# Pure JavaScript dependencies (no native addons), so one `npm ci` serves every version; the build
# is redone per version so each is also compiled by the Node it is tested on.
# Node 20 reports in TAP when not on a terminal, Node 22+ with the spec reporter: the counts of
# every version are added up into one plain closing line, so the last line speaks for all runs.
SCENARIOS='faults|drill|snapshots|standby|message-restore|restore-basis|hourly|restore-interrupt|archive-tree'
failed=()
passes=0 fails=0
first=1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for major in "$@"; do
  bin=$(bash scripts/node-version.sh "$major")
  echo "=== tests on Node.js $("$bin/node" --version) ==="
  start=$SECONDS
  if (( first )); then
    what="every test file"
    run() { npm test; }
  else
    what="every test file but the scenario suites ($SCENARIOS)"
    run() { npm run build --silent && node --test --test-concurrency=1 $(ls dist/test/*.test.js | grep -vE "/($SCENARIOS)\.test\.js$"); }
  fi
  first=0
  echo "=== $what ==="
  if PATH="$bin:$PATH" run 2>&1 | tee "$out"; then result=passed; else result=FAILED; failed+=("$major"); fi
  p=$(grep -aE '^(# |ℹ )pass [0-9]+$' "$out" | tail -n 1 | grep -oE '[0-9]+$' || echo 0)
  f=$(grep -aE '^(# |ℹ )fail [0-9]+$' "$out" | tail -n 1 | grep -oE '[0-9]+$' || echo 0)
  passes=$((passes + p)) fails=$((fails + f))
  echo "=== Node.js $major: $result in $(( (SECONDS - start) / 60 )) min ($p passed, $f failed) ==="
done
[ ${#failed[@]} -eq 0 ] || echo "tests failed on Node.js ${failed[*]}" >&2
echo "=== all runs, Node.js $* ==="
echo "total: $passes passed, $fails failed"
[ ${#failed[@]} -eq 0 ]
