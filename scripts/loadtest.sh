#!/usr/bin/env bash
# Load test: Locust, headless, against the local stack (Redis, simulator, API, one worker).
# Writes an HTML report, Locust's CSVs and the service's own timeline to $OUT, then prints a
# summary (requests, failures, RPS, p50/p90/p99, queue wait p95 from the service's metrics).
#   scripts/loadtest.sh [extra locust options]        (make loadtest calls this)
# Parameters (environment): USERS=50 SPAWN_RATE=10 DURATION=2m LLM_LATENCY=0.5 (seconds per
# simulated LLM call) PORT=8800 OUT=loadtest/out; weights: SYNC_WEIGHT=2 SSE_WEIGHT=1 POLL_WEIGHT=1;
# LOCUST_SHAPE=burst: ramp to USERS, burst to 3x USERS, cool down (for bench/capacity.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh redis-server
export PATH="$HOME/.local/bin:$PATH"
export LITELLM_LOCAL_MODEL_COST_MAP=True

USERS=${USERS:-50}
SPAWN_RATE=${SPAWN_RATE:-10}
DURATION=${DURATION:-2m}
LLM_LATENCY=${LLM_LATENCY:-0.5}
PORT=${PORT:-8800}
OUT=${OUT:-loadtest/out}
mkdir -p "$OUT"
work=$(mktemp -d)
key=$(uv run --frozen python -c 'from agent_service.api.auth import generate_key; print(generate_key())')
printf 'keys:\n  - {tenant: loadtest, key: %s, name: loadtest}\n' "$key" >"$work/keys.yaml"

AGENT_AUTH_KEYS_FILE="$work/keys.yaml" AGENT_LOG_LEVEL=WARNING \
  uv run --frozen agent-service up --port "$PORT" --sim-ttft "$LLM_LATENCY" >"$OUT/stack.log" 2>&1 &
stack=$!
cleanup() {
  kill -TERM "$stack" 2>/dev/null || true
  wait "$stack" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 120); do
  if uv run --frozen python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:$PORT/readyz', timeout=2).status != 200)" 2>/dev/null; then
    break
  fi
  kill -0 "$stack" 2>/dev/null || { echo "the local stack exited:" >&2; tail -30 "$OUT/stack.log" >&2; exit 1; }
  sleep 1
done

echo "load test: $USERS users (+$SPAWN_RATE/s) for $DURATION, simulated LLM call $LLM_LATENCY s" >&2
uv run --frozen locust -f loadtest/locustfile.py --headless --only-summary \
  -H "http://127.0.0.1:$PORT" -u "$USERS" -r "$SPAWN_RATE" -t "$DURATION" \
  --api-key "$key" --sync-weight "${SYNC_WEIGHT:-2}" --sse-weight "${SSE_WEIGHT:-1}" \
  --poll-weight "${POLL_WEIGHT:-1}" --shape "${LOCUST_SHAPE:-fixed}" \
  --csv "$OUT/loadtest" --csv-full-history --html "$OUT/loadtest.html" "$@"
