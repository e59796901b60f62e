#!/usr/bin/env bash
# Check the Prometheus alert rules in alerts/: promtool's syntax check, then the rule unit tests
# in alerts/tests/. tests/unit/test_alerts.py runs the same two commands and also checks metric
# names, labels and runbook links.
#   scripts/check-alerts.sh      needs promtool (Debian: apt-get install prometheus) or PROMTOOL
set -euo pipefail
cd "$(dirname "$0")/.."

promtool=${PROMTOOL:-$(command -v promtool || true)}
if [[ -z $promtool ]]; then
  echo "check-alerts: promtool not found: apt-get install prometheus, or set PROMTOOL" >&2
  exit 1
fi

shopt -s nullglob
rules=(alerts/*.yaml)
tests=(alerts/tests/*.yaml)
if ((${#rules[@]} == 0 || ${#tests[@]} == 0)); then
  echo "check-alerts: no rule files or no rule tests under alerts/" >&2
  exit 1
fi
"$promtool" check rules "${rules[@]}"
"$promtool" test rules "${tests[@]}"
