#!/usr/bin/env bash
# The chart through the real Helm binary, for every value profile: the chart's
# charts/agent-service/ci/*-values.yaml and the example values k8s/production-values.yaml and
# k8s/kind-values.yaml. For each: `helm lint --strict`, then `helm template` with --api-versions
# for the optional APIs (CRDs) the profile's cluster serves, written to OUT_DIR/<profile>.yaml,
# and a second time: the two renders must be byte-identical (nothing is generated at render
# time, so a GitOps tool never sees a new password; differences are printed).
# tests/chart/test_helm_cli.py validates those renders and compares them with the Helm SDK's
# (AGENT_TEST_HELM_RENDERS=OUT_DIR); .github/workflows/chart.yml runs both.
#
#   scripts/chart-check.sh [OUT_DIR]        (default: a new temporary directory)
#   make chart-check
#
# Needs helm 3.14 or later (or 4). Environment: KUBE_VERSION, the Kubernetes version linted and
# rendered for (default 1.29.0, the chart's kubeVersion floor: APIs deprecated there are flagged).
set -euo pipefail
cd "$(dirname "$0")/.."

chart=charts/agent-service
out=${1:-$(mktemp -d)}
KUBE_VERSION=${KUBE_VERSION:-1.29.0}
command -v helm >/dev/null || {
  echo "chart-check: helm is not installed" >&2
  exit 1
}
mkdir -p "$out"

# The APIs of the chart's optional objects (Chart.yaml's agent-service/optional-apis): the ci
# profiles are rendered as on a cluster serving all of them. The example profiles get the APIs
# of their cluster, as tests/chart/manifests.py EXAMPLE_PROFILES says (a test keeps them equal).
all_apis=(monitoring.coreos.com/v1 keda.sh/v1alpha1 gateway.networking.k8s.io/v1 opentelemetry.io/v1beta1 external-secrets.io/v1 postgresql.cnpg.io/v1)
production_apis=(monitoring.coreos.com/v1 keda.sh/v1alpha1 opentelemetry.io/v1beta1)
kind_apis=(monitoring.coreos.com/v1 keda.sh/v1alpha1)

# check NAME VALUES_FILE API...: lint, then render to $out/NAME.yaml.
check() {
  local name=$1 values=$2 api json
  shift 2
  local api_flags=()
  for api in "$@"; do api_flags+=(--api-versions "$api"); done
  json=$(printf '"%s",' "$@")
  echo "== $name ($values; APIs: $*)" >&2
  # helm lint has no --api-versions: the chart's apiVersions value stands in for them.
  helm lint "$chart" --strict --quiet --namespace agent-service --kube-version "$KUBE_VERSION" \
    --values "$values" --set-json "apiVersions=[${json%,}]"
  local render=(helm template agent-service "$chart" --namespace agent-service
    --kube-version "$KUBE_VERSION" --values "$values" "${api_flags[@]}")
  "${render[@]}" >"$out/$name.yaml"
  if ! "${render[@]}" | diff -u "$out/$name.yaml" - >&2; then
    echo "chart-check: two renders of $name differ: something is generated at render time" >&2
    exit 1
  fi
}

for values in "$chart"/ci/*-values.yaml; do
  check "$(basename "$values" -values.yaml)" "$values" "${all_apis[@]}"
done
check k8s-production k8s/production-values.yaml "${production_apis[@]}"
check k8s-kind k8s/kind-values.yaml "${kind_apis[@]}"
echo "chart-check: every profile lints and renders, twice identically; renders in $out" >&2
