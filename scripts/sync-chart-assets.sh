#!/usr/bin/env bash
# Copy the project's alert rules and Grafana dashboards into the Helm chart, which embeds them
# with .Files (a chart cannot read files outside its directory), and regenerate the chart
# README's parameter table from the `## @param` comments of values.yaml.
#
#   scripts/sync-chart-assets.sh           # copy and regenerate
#   scripts/sync-chart-assets.sh --check   # exit 1 (and say what differs) when out of sync
#
# Sources: alerts/*.yaml -> charts/agent-service/files/alerts/
#          dashboards/*.json -> charts/agent-service/files/dashboards/
# tests/chart/test_assets.py fails when the copies differ from the sources.
set -euo pipefail
cd "$(dirname "$0")/.."

chart=charts/agent-service
check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

status=0

# sync SOURCE_DIR PATTERN DEST_DIR: make DEST_DIR hold exactly the SOURCE_DIR files matching PATTERN.
sync() {
  local src=$1 pattern=$2 dest=$3 file name
  mkdir -p "$dest"
  shopt -s nullglob
  for file in "$src"/$pattern; do
    name=$(basename "$file")
    if ! cmp -s "$file" "$dest/$name"; then
      if $check; then
        echo "out of sync: $dest/$name (source $file)" >&2
        status=1
      else
        cp "$file" "$dest/$name"
        echo "copied $file -> $dest/$name"
      fi
    fi
  done
  for file in "$dest"/$pattern; do
    name=$(basename "$file")
    if [[ ! -e "$src/$name" ]]; then
      if $check; then
        echo "stale copy: $file (no $src/$name)" >&2
        status=1
      else
        rm -- "$file"
        echo "removed stale $file"
      fi
    fi
  done
  shopt -u nullglob
}

sync alerts '*.yaml' "$chart/files/alerts"
sync dashboards '*.json' "$chart/files/dashboards"

if $check; then
  uv run --frozen python -m tests.chart.values_doc --check || status=1
else
  uv run --frozen python -m tests.chart.values_doc --write
fi
exit "$status"
