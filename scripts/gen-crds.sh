#!/usr/bin/env bash
# Regenerate the committed CustomResourceDefinitions from the pydantic models: one file per kind
# in k8s/crds/ and in the chart's crds subchart (charts/agent-service/charts/crds/crds/), each
# exactly `agent-service crd --kind KIND` (tests/controller/test_crd.py checks they are).
#
#   scripts/gen-crds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for kind in AgentConfig Agent MCPServer; do
  file=$(tr '[:upper:]' '[:lower:]' <<<"$kind").yaml
  uv run --frozen agent-service crd --kind "$kind" >"k8s/crds/$file"
  cp "k8s/crds/$file" "charts/agent-service/charts/crds/crds/$file"
  echo "gen-crds: k8s/crds/$file and charts/agent-service/charts/crds/crds/$file" >&2
done
