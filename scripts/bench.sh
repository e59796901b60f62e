#!/usr/bin/env bash
# Every benchmark, one after the other. Each prints its figures, its same-run baseline, the
# ratio against its target and the machine load; none asserts anything. Run them on a quiet
# machine (the load average is printed: others' test runs make the figures noisy).
#   scripts/bench.sh [name ...]       (make bench calls this; default: all, ~45 min)
# Names: enqueue_overhead gateway_throughput sync_overhead observability_overhead metrics_scrape
#        worker_cpu worker_concurrency worker_memory retrieval
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh redis-server redis-tools wrk
export PATH="$HOME/.local/bin:$PATH"
export LITELLM_LOCAL_MODEL_COST_MAP=True

all=(enqueue_overhead gateway_throughput sync_overhead observability_overhead metrics_scrape
  worker_cpu worker_concurrency worker_memory retrieval)
if (($# > 0)); then names=("$@"); else names=("${all[@]}"); fi
for name in "${names[@]}"; do
  echo "== bench/$name.py" >&2
  uv run --frozen python "bench/$name.py"
done
