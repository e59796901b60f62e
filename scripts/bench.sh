#!/usr/bin/env bash
# Every benchmark, one after the other. Each prints its figures, its same-run baseline, the
# ratio against its target and the machine load; none asserts anything. Run them on a quiet
# machine (the load average is printed: others' test runs make the figures noisy).
#   scripts/bench.sh [name ...]       (make bench calls this; default: all, ~60 min)
# Names: enqueue_overhead gateway_throughput sync_overhead observability_overhead metrics_scrape
#        worker_cpu worker_concurrency worker_memory history_archive openai_overhead controller_render
#        retrieval peers
# peers (make bench-peers) installs LiteLLM Proxy and LangGraph into .cache/bench-peers/ with uv.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh redis-server redis-tools wrk postgresql
export PATH="$HOME/.local/bin:$PATH"
export LITELLM_LOCAL_MODEL_COST_MAP=True

all=(enqueue_overhead gateway_throughput sync_overhead observability_overhead metrics_scrape
  worker_cpu worker_concurrency worker_memory history_archive openai_overhead controller_render retrieval peers)
if (($# > 0)); then names=("$@"); else names=("${all[@]}"); fi
for name in "${names[@]}"; do
  echo "== bench/$name.py" >&2
  uv run --frozen python "bench/$name.py"
  if [[ "$name" == worker_concurrency ]]; then
    echo "== bench/$name.py --journal-cost" >&2
    uv run --frozen python "bench/$name.py" --n 100 --journal-cost --steps 3 --message 'what is {i}*7?'
  fi
done
