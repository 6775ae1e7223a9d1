#!/usr/bin/env bash
# Lints the deployable shape without a Docker engine or a cluster; exits non-zero on any finding.
#   docker/Dockerfile    dockerfile-utils lint (errors and warnings both fail)
#   docker/compose.yaml  dclint (Compose schema and rules; warnings fail too), and
#                        `docker compose config` where the compose CLI plugin exists
#   k8s/*.yaml           every object validated against the Kubernetes schemas (kubernetes-models)
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/provision-node.sh
set -uo pipefail

bin=node_modules/.bin
# Overridable so the script itself can be checked against broken copies.
dockerfile="${DOCKERFILE:-docker/Dockerfile}"
compose="${COMPOSE_FILE:-docker/compose.yaml}"
k8s_dir="${K8S_DIR:-k8s}"
failed=0
step() { printf '\n== %s\n' "$*"; }

step "dockerfile-utils lint $dockerfile"
out="$("$bin/dockerfile-utils" lint "$dockerfile" 2>&1)"
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
  printf '%s\n' "$out"
  echo "FAIL: $dockerfile has findings"
  failed=1
else
  echo "ok: no findings"
fi

step "dclint $compose"
if "$bin/dclint" "$compose" --max-warnings 0 --no-color; then
  echo "ok: no findings"
else
  echo "FAIL: $compose has findings"
  failed=1
fi

step "docker compose config"
if docker compose version >/dev/null 2>&1; then
  if API_KEYS='read=lint-only-not-a-real-key' docker compose -f "$compose" config --quiet; then
    echo "ok: docker compose config parsed it"
  else
    echo "FAIL: docker compose config"
    failed=1
  fi
else
  echo "skipped: the docker compose plugin is not installed here"
fi

step "k8s manifests against the Kubernetes schemas"
if ! node test/deploy/validate-k8s.mjs "$k8s_dir"/*.yaml; then
  failed=1
fi

echo
if [ $failed -ne 0 ]; then
  echo "lint-deploy: FAILED"
  exit 1
fi
echo "lint-deploy: ok"
