#!/usr/bin/env bash
# Installs what `npm run bench` measures against, when missing: BorgBackup and restic (the peers
# an admin would pick instead), GNU time (CPU time and peak RSS of child processes).
# Debian/Ubuntu, as root (or through sudo). Safe to run again: installs only what is missing.
set -euo pipefail
need=()
command -v borg >/dev/null 2>&1 || need+=(borgbackup)
command -v restic >/dev/null 2>&1 || need+=(restic)
[ -x /usr/bin/time ] || need+=(time)
command -v tc >/dev/null 2>&1 || need+=(iproute2)
command -v sha256sum >/dev/null 2>&1 || need+=(coreutils)
command -v zstd >/dev/null 2>&1 || need+=(zstd)
if [ ${#need[@]} -eq 0 ]; then
  echo "bench-setup: borg, restic, GNU time, tc, zstd present"
  exit 0
fi
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "bench-setup: installing ${need[*]}"
if ! apt-cache policy "${need[@]}" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  $SUDO apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
borg --version
restic version
