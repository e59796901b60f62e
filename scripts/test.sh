#!/usr/bin/env bash
# Run every check and every test: lint, format, types, layer contracts, then pytest
# (unit, integration with real Redis/Celery/HTTP, end to end). Installs what it needs.
#   scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(redis-server redis-sentinel postgresql prometheus prometheus-alertmanager)
# Node and npm run the npm OpenAI clients (tests/openai_js): Debian's, unless some are installed.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then packages+=(nodejs npm); fi
# The container tests need a Docker engine: Debian's docker.io when no docker is installed at all
# (a docker-ce or Docker Desktop install is left alone), started when it is installed but stopped.
# Without a running engine they skip, except under CI=true, where they fail.
command -v docker >/dev/null || packages+=(docker.io)
scripts/bootstrap.sh "${packages[@]}"
scripts/docker-engine.sh
export PATH="$HOME/.local/bin:$PATH"
export LITELLM_LOCAL_MODEL_COST_MAP=True

step() { echo "== $*" >&2; }
step "ruff check";   uv run --frozen ruff check src tests bench scripts loadtest
step "ruff format";  uv run --frozen ruff format --check src tests bench scripts loadtest
step "mypy";         uv run --frozen mypy
step "import-linter"; uv run --frozen lint-imports
# The chart through the real Helm binary (helm-binary, a dev dependency): lint --strict and
# template every value profile; tests/chart/test_helm_cli.py checks those renders.
step "helm lint + template"
helm_renders="$(mktemp -d)"
trap 'rm -rf "$helm_renders"' EXIT
uv run --frozen scripts/chart-check.sh "$helm_renders"
export AGENT_TEST_HELM_RENDERS="$helm_renders"
step "pytest"
set +e
uv run --frozen pytest "$@"
status=$?
set -e
if ((status == 5)); then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
