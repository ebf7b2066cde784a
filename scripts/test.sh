#!/usr/bin/env bash
# The test suite, from a fresh machine: set-up (apt, Node.js, npm ci, build), then `npm test`.
#   bash scripts/test.sh            on the machine's Node.js
#   bash scripts/test.sh 20 22 24   once per Node.js major (what CI runs), each fetched from the npm
#                                   registry by scripts/node-version.sh and put first on PATH
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ $# -gt 0 ] || exec npm test

# Pure JavaScript dependencies (no native addons), so one `npm ci` serves every version; the build
# is redone per version so each is also compiled by the Node it is tested on.
failed=()
for major in "$@"; do
  bin=$(bash scripts/node-version.sh "$major")
  echo "=== tests on Node.js $("$bin/node" --version) ==="
  start=$SECONDS
  if PATH="$bin:$PATH" npm test; then result=passed; else result=FAILED; failed+=("$major"); fi
  echo "=== Node.js $major: $result in $(( (SECONDS - start) / 60 )) min ==="
done
[ ${#failed[@]} -eq 0 ] || { echo "tests failed on Node.js ${failed[*]}" >&2; exit 1; }
