#!/usr/bin/env bash
# Installs what the tool, its tests and its sandbox need on a fresh Debian/Ubuntu machine:
# the Debian packages (only those missing), the npm packages (npm ci), and the compiled JS.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_updated=""
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if [ -z "$apt_updated" ]; then $sudo apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need=()
for pair in sshd:openssh-server ssh:openssh-client sftp:openssh-client rsync:rsync zstd:zstd tmux:tmux logrotate:logrotate openssl:openssl systemd-analyze:systemd age:age doveadm:dovecot-core mariadbd:mariadb-server mariabackup:mariadb-backup redis-server:redis-server; do
  cmd=${pair%%:*} pkg=${pair#*:}
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then need+=("$pkg"); fi
done
[ -x /usr/lib/openssh/sftp-server ] || need+=(openssh-sftp-server)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  apt_install "${need[@]}"
fi

# Node.js: the minimum is package.json's engines field (the installer reads the same). Debian's
# package where it is new enough (Debian 13: 20.19), otherwise the Node binary from the npm registry
# (Debian 12 and Ubuntu ship 18 or older), fetched by the npm client into NODE_PREFIX (bin/node, bin/npm).
min_node=$(sed -n 's/.*"node": *">=\([0-9.]*\)".*/\1/p' package.json)
node_major=${NODE_MAJOR:-24}
prefix=${NODE_PREFIX:-/usr/local}
at_least() { [ "$(printf '%s\n%s\n' "$min_node" "$1" | sort -V | head -1)" = "$min_node" ]; }
node_ok() {
  hash -r
  local v
  v=$(node -p process.versions.node 2>/dev/null) && at_least "$v"
}
if ! node_ok; then
  echo "Node.js $min_node or newer is needed (found $(node --version 2>/dev/null || echo none)); setting it up"
  apt_candidate=$(apt-cache policy nodejs 2>/dev/null | awk '/Candidate:/ {print $2}' | sed -E 's/^[0-9]+://; s/[^0-9.].*//')
  if [ -n "$apt_candidate" ] && at_least "$apt_candidate"; then
    echo "installing Debian's nodejs $apt_candidate"
    if command -v npm >/dev/null 2>&1; then apt_install nodejs; else apt_install nodejs npm; fi
  fi
  if ! node_ok; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "installing Debian's npm to fetch Node.js $node_major from the npm registry"
      apt_install npm
    fi
    echo "installing Node.js $node_major and npm from the npm registry into $prefix"
    bash scripts/node-version.sh "$node_major" "$prefix" >/dev/null
  fi
  if ! node_ok; then
    echo "Node.js $min_node or newer is still not the first node on PATH (found $(command -v node || echo none): $(node --version 2>/dev/null || echo none)); put $prefix/bin first on PATH" >&2
    exit 1
  fi
  echo "Node.js $(node --version) at $(command -v node)"
fi
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
