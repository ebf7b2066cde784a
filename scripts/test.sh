#!/usr/bin/env bash
# The test suite, from a fresh machine: set-up (apt, npm ci, build), then `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm test
