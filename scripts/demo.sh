#!/usr/bin/env bash
# The main job end to end on the built-in sandbox (loopback Storage Box + stand-in mailcow with
# fixture mail): check, backup, a day of mail change, backup again, list, then a lost mailbox
# restored unattended and its hashes compared. --keep (or SANDBOX_KEEP=1): the sandbox stays up
# afterwards and the demo prints the commands to try the restore wizard against it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node dist/scripts/sandbox-demo.js "$@"
