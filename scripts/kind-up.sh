#!/usr/bin/env bash
# The whole stack on a local kind cluster, the way the e2e workflow (.github/workflows/e2e-kind.yml)
# builds it: kind cluster, metrics-server, kube-prometheus-stack and KEDA (pinned chart versions,
# values in k8s/), the image built from this checkout and loaded into the nodes, the chart
# installed with k8s/kind-values.yaml (`helm upgrade -i --wait`), `helm test`, then the
# port-forward commands to reach the API, Grafana, Prometheus and Alertmanager.
#
#   scripts/kind-up.sh               # every step below, in order (make kind-up)
#   scripts/kind-up.sh STEP...       # only these steps, e.g. `image install` after a code change
#   scripts/kind-up.sh down          # delete the cluster (make kind-down)
#
# Steps: cluster, addons, image, install, test, urls. Every step can be re-run: an existing
# cluster is kept, Helm releases are upgraded, and a new image tag (from the checkout's state)
# rolls the pods only when the code changed.
#
# Needs docker, kind, helm (3.14 or later, or 4) and kubectl; the cluster needs about 4 CPUs and
# 8 GiB. Everything talks to the context kind-$CLUSTER_NAME, never to the current one.
# Environment (all optional):
#   CLUSTER_NAME          kind cluster                     (agent-service)
#   NAMESPACE, RELEASE    the agent-service release        (agent-service, agent-service)
#   MONITORING_NAMESPACE  kube-prometheus-stack namespace  (monitoring)
#   KEDA_NAMESPACE        KEDA namespace                   (keda)
#   IMAGE_REPOSITORY      image name in the kind nodes     (agent-service)
#   IMAGE_TAG             image tag                        (dev-<commit>[-<hash of local changes>])
#   HELM_TIMEOUT          --timeout of each helm install   (10m)
#   KPS_VERSION, KEDA_VERSION, METRICS_SERVER_VERSION      chart versions (pinned below)
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned chart versions: skaffold.yaml's `stack` profile uses the same (tests/unit/test_repo_lint.py
# keeps them equal).
KPS_VERSION=${KPS_VERSION:-88.5.3}
KEDA_VERSION=${KEDA_VERSION:-2.20.2}
METRICS_SERVER_VERSION=${METRICS_SERVER_VERSION:-3.13.0}

CLUSTER_NAME=${CLUSTER_NAME:-agent-service}
NAMESPACE=${NAMESPACE:-agent-service}
RELEASE=${RELEASE:-agent-service}
MONITORING_NAMESPACE=${MONITORING_NAMESPACE:-monitoring}
KEDA_NAMESPACE=${KEDA_NAMESPACE:-keda}
IMAGE_REPOSITORY=${IMAGE_REPOSITORY:-agent-service}
HELM_TIMEOUT=${HELM_TIMEOUT:-10m}
# The kube-prometheus-stack release name: k8s/kind-values.yaml labels the monitors and rules for it.
KPS_RELEASE=kps

KUBE_CONTEXT="kind-$CLUSTER_NAME"
# Helm reads its context from here; kubectl gets --context (the `kube` function).
export HELM_KUBECONTEXT=$KUBE_CONTEXT

# The chart's object prefix: the release name when it contains the chart name.
if [[ $RELEASE == *agent-service* ]]; then FULLNAME=$RELEASE; else FULLNAME=$RELEASE-agent-service; fi

log() { printf 'kind-up: %s\n' "$*" >&2; }
fail() {
  log "error: $*"
  exit 1
}
kube() { kubectl --context "$KUBE_CONTEXT" "$@"; }

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (needed: docker, kind, helm, kubectl)"
  done
}

# A tag that changes with the code: the commit, plus a hash of uncommitted changes (tracked
# diffs and untracked files' contents) if any. Git does the hashing: no sha256sum on macOS.
default_image_tag() {
  local commit changes
  commit=$(git rev-parse --short=12 HEAD 2>/dev/null) || {
    echo dev
    return
  }
  changes=$(
    git diff HEAD
    git ls-files -z --others --exclude-standard | xargs -0 git hash-object --
  )
  if [[ -z $changes ]]; then
    echo "dev-$commit"
  else
    echo "dev-$commit-$(git hash-object --stdin <<<"$changes" | cut -c1-8)"
  fi
}
IMAGE_TAG=${IMAGE_TAG:-$(default_image_tag)}

step_cluster() {
  need docker kind
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
    log "kind cluster $CLUSTER_NAME exists: kept"
  else
    log "creating kind cluster $CLUSTER_NAME (k8s/kind-cluster.yaml)"
    kind create cluster --name "$CLUSTER_NAME" --config k8s/kind-cluster.yaml --wait 180s
  fi
  # (Re)writes the context kind-$CLUSTER_NAME into the kubeconfig.
  kind export kubeconfig --name "$CLUSTER_NAME" >/dev/null
  kube cluster-info >/dev/null
}

step_addons() {
  need helm kubectl
  helm repo add metrics-server https://kubernetes-sigs.github.io/metrics-server/ --force-update >/dev/null
  helm repo add kedacore https://kedacore.github.io/charts --force-update >/dev/null

  log "metrics-server $METRICS_SERVER_VERSION (the api's CPU autoscaler reads it)"
  helm upgrade -i metrics-server metrics-server/metrics-server --version "$METRICS_SERVER_VERSION" \
    --namespace kube-system --values k8s/metrics-server-values.yaml --wait --timeout "$HELM_TIMEOUT"

  # Before KEDA: KEDA's ServiceMonitor (k8s/keda-values.yaml) needs the Prometheus Operator CRDs.
  log "kube-prometheus-stack $KPS_VERSION in $MONITORING_NAMESPACE"
  helm upgrade -i "$KPS_RELEASE" oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack \
    --version "$KPS_VERSION" --namespace "$MONITORING_NAMESPACE" --create-namespace \
    --values k8s/kube-prometheus-stack-values.yaml --wait --timeout "$HELM_TIMEOUT"

  log "KEDA $KEDA_VERSION in $KEDA_NAMESPACE"
  helm upgrade -i keda kedacore/keda --version "$KEDA_VERSION" \
    --namespace "$KEDA_NAMESPACE" --create-namespace \
    --values k8s/keda-values.yaml --wait --timeout "$HELM_TIMEOUT"

  # ScaledObjects act only once KEDA's external metrics API answers, the CPU HPA once
  # metrics-server's resource metrics API does.
  kube wait --for=condition=Available apiservice/v1beta1.external.metrics.k8s.io --timeout=180s
  kube wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=180s
}

step_image() {
  need docker kind
  local image="$IMAGE_REPOSITORY:$IMAGE_TAG"
  log "building $image"
  IMAGE=$image scripts/build-image.sh
  log "loading $image into the nodes of $CLUSTER_NAME"
  kind load docker-image "$image" --name "$CLUSTER_NAME"
}

step_install() {
  need helm kubectl
  log "installing release $RELEASE (image $IMAGE_REPOSITORY:$IMAGE_TAG) in $NAMESPACE"
  helm upgrade -i "$RELEASE" charts/agent-service --namespace "$NAMESPACE" --create-namespace \
    --values k8s/kind-values.yaml \
    --set "image.repository=$IMAGE_REPOSITORY" --set-string "image.tag=$IMAGE_TAG" \
    --wait --timeout "$HELM_TIMEOUT"
  kube -n "$NAMESPACE" get deployments,scaledobjects,hpa,servicemonitors,prometheusrules
}

step_test() {
  need helm
  helm test "$RELEASE" --namespace "$NAMESPACE" --logs --timeout 5m
}

step_urls() {
  local k="kubectl --context $KUBE_CONTEXT"
  cat <<EOF

agent-service is running on kind cluster $CLUSTER_NAME. Reach it with port-forwards (one terminal each):

  API           $k -n $NAMESPACE port-forward svc/$FULLNAME-api 8000:8000
                KEY=\$($k -n $NAMESPACE get secret $FULLNAME-test-key -o jsonpath='{.data.key}' | base64 -d)
                curl -s localhost:8000/v1/chat -H "Authorization: Bearer \$KEY" -H 'content-type: application/json' -d '{"message":"what is 12*(3+4)?"}'
  Grafana       $k -n $MONITORING_NAMESPACE port-forward svc/$KPS_RELEASE-grafana 3000:80
                http://localhost:3000  user admin, password:
                $k -n $MONITORING_NAMESPACE get secret $KPS_RELEASE-grafana -o jsonpath='{.data.admin-password}' | base64 -d
  Prometheus    $k -n $MONITORING_NAMESPACE port-forward svc/$KPS_RELEASE-prometheus 9090:9090
  Alertmanager  $k -n $MONITORING_NAMESPACE port-forward svc/$KPS_RELEASE-alertmanager 9093:9093

The e2e checks of CI against this cluster (kubectl's current context is $KUBE_CONTEXT after
\`kind export kubeconfig\`): bash .github/kind/e2e.sh smoke | burst | monitoring | traces
After a code change: scripts/kind-up.sh image install.  Remove everything: make kind-down.
EOF
}

step_down() {
  need kind
  kind delete cluster --name "$CLUSTER_NAME"
}

steps=("$@")
if ((${#steps[@]} == 0)); then steps=(cluster addons image install test urls); fi
for step in "${steps[@]}"; do
  case $step in
    cluster | addons | image | install | test | urls | down) "step_$step" ;;
    *)
      awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0" >&2
      fail "unknown step: $step"
      ;;
  esac
done
