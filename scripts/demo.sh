#!/usr/bin/env bash
# The main job end to end on the built-in sandbox (loopback Storage Box + stand-in mailcow with
# fixture mail): check, backup, a day of mail change, backup again, list.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node dist/scripts/sandbox-demo.js
