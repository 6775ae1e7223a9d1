#!/usr/bin/env bash
# Regenerates package-lock.json so that `npm ci` accepts it on a clean clone, on every platform.
#
#   bash scripts/lock-refresh.sh                  after a change to package.json (keeps the locked
#                                                 versions that still satisfy it)
#   bash scripts/lock-refresh.sh --from-scratch   resolve everything anew (newest versions in range)
#
# Why: npm 11 writes the lock from the tree it has on disk. Run `npm install` in a checkout with a
# node_modules and it prunes other platforms' optional packages (@swc/core-darwin-arm64,
# @esbuild/win32-x64, ...) from the lock; `npm ci` on a clean clone then refuses it ("Missing: ...
# from lock file"). Resolving the lock in an empty folder (package.json and the old lock only, no
# node_modules, `--package-lock-only`) keeps every platform's optional packages.
#
# Then it proves the result: a clean copy of package.json and the new lock must pass
# `npm ci --dry-run` (the same lock validation as `npm ci`), and every optional dependency named in
# the lock must be in the lock. Commit package.json and package-lock.json together.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/provision-node.sh
set -euo pipefail

from_scratch=0
[ "${1:-}" = "--from-scratch" ] && from_scratch=1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp package.json "$work/"
[ "$from_scratch" = 1 ] || cp package-lock.json "$work/" 2>/dev/null || true
# The client package is published on its own and has no dependencies of its own to lock.
echo "resolving the lock in $work (no node_modules)" >&2
(cd "$work" && npm install --package-lock-only --ignore-scripts --no-audit --no-fund >&2)

echo "checking it: npm ci --dry-run on a clean copy" >&2
check="$(mktemp -d)"
trap 'rm -rf "$work" "$check"' EXIT
cp package.json "$check/"
cp "$work/package-lock.json" "$check/"
(cd "$check" && npm ci --dry-run --ignore-scripts --no-audit --no-fund >/dev/null)
node scripts/lock-check.js "$check/package-lock.json"

cp "$work/package-lock.json" package-lock.json
echo "package-lock.json refreshed; run 'npm ci' to install from it" >&2
