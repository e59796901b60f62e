#!/usr/bin/env bash
# Run the whole local stack (Redis, Postgres for the run history, LLM simulator, API, worker)
# in the foreground; installs redis-server and postgresql when missing.
#   scripts/up.sh [--with-monitoring] [agent-service up options]   Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
apt=()
if [[ -z "${AGENT_REDIS_URL:-}" ]]; then apt+=(redis-server); fi
if [[ -z "${AGENT_HISTORY_URL:-}" ]]; then apt+=(postgresql); fi
for arg in "$@"; do
  if [[ "$arg" == "--with-monitoring" ]]; then apt+=(prometheus prometheus-alertmanager); fi
done
scripts/bootstrap.sh "${apt[@]}"
export PATH="$HOME/.local/bin:$PATH"
export LITELLM_LOCAL_MODEL_COST_MAP=True
exec uv run --frozen agent-service up "$@"
