#!/usr/bin/env bash
# The project's one entry point on a fresh machine (see README "Quick start"):
#   bash scripts/run.sh start   provision Node 24 locally, install, build, serve (embedded SQLite)
#   bash scripts/run.sh test    the whole test suite, as CI runs it
#   bash scripts/run.sh <npm-script> [args]   any package.json script with the project's Node
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/provision-node.sh
set -euo pipefail

install_deps() {
  # Reinstall when the lockfile changed since the last install (or nothing is installed).
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "installing dependencies" >&2
    # Only from the lock file: `npm ci` never rewrites package-lock.json, so a quick start leaves
    # `git status` clean. The lock covers every platform (scripts/lock-refresh.sh writes it).
    npm ci --no-audit --no-fund >&2
  fi
}

ensure_postgres() {
  # The integration tests use the machine's PostgreSQL at 127.0.0.1:5432 (trust auth, db `test`).
  local url="${PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
  if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
      echo "starting PostgreSQL" >&2
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
      for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
  fi
  export PG_URL="$url"
}

ensure_chromium() {
  # The browser tests (test/ui) drive Debian's Chromium through playwright-core; never a downloaded browser.
  if [ ! -x /usr/bin/chromium ]; then
    echo "installing Debian's chromium for the browser tests" >&2
    apt-get update >&2 && apt-get install -y chromium >&2
  fi
}

cmd="${1:-start}"
shift || true
case "$cmd" in
  start)
    install_deps
    npm run --silent build >&2
    # The heap cap keeps the process well under 1 GB (the live set is a few hundred MB; without a
    # cap V8 lets garbage grow towards its default limit). Same flags as `npm start`.
    exec node --max-old-space-size=576 dist/apps/metering/src/main.js "$@"
    ;;
  test)
    install_deps
    ensure_postgres
    ensure_chromium
    # The Kafka broker jars (Maven Central) are resolved once into a cache outside the repo.
    node scripts/kafka/prefetch.js >&2
    npm run --silent lint:layers >&2
    # The Kafka harness (plain CommonJS + JSDoc, run unbuilt) against its declared API (broker.d.ts).
    npx tsc -p scripts/kafka >&2
    # Dockerfile and compose linters, k8s manifests against the Kubernetes schemas (no Docker needed).
    bash scripts/lint-deploy.sh >&2
    npm run --silent build >&2
    exec npx jest --ci "$@"
    ;;
  *)
    install_deps
    exec npm run "$cmd" -- "$@"
    ;;
esac
