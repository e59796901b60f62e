#!/usr/bin/env bash
# End-to-end checks of a deployed agent-service release, run by .github/workflows/e2e-kind.yml
# once scripts/kind-up.sh has installed the chart next to kube-prometheus-stack (release "kps",
# k8s/kube-prometheus-stack-values.yaml) and KEDA. Works against any cluster the current kube
# context points at (after `make kind-up`: kind-agent-service); needs kubectl, curl, jq, python3.
#
#   .github/kind/e2e.sh smoke        # sync chat answers 84; a queued task succeeds
#   .github/kind/e2e.sh burst [N]    # N queued tasks (300) make KEDA's HPA add workers; all succeed
#   .github/kind/e2e.sh monitoring   # Prometheus scrapes our targets, loaded our rules; Grafana
#                                    # loaded our dashboards into their folder
#   .github/kind/e2e.sh traces       # spans of the api and the worker reach the OTel collector
#   .github/kind/e2e.sh alert NAME   # traffic until Alertmanager shows alert NAME for our namespace
#   .github/kind/e2e.sh agents       # the k8s/examples Agent and MCPServer (on an mcp-demo
#                                    # Deployment) become Ready and the agent answers from the MCP
#                                    # tool; a broken Agent is refused on its own
#   .github/kind/e2e.sh dump [DIR]   # diagnostics: objects, events, ScaledObjects, pod logs
#
# Environment: NAMESPACE (agent-service), RELEASE (agent-service), FULLNAME (the chart's object
# name prefix: the release name when it contains "agent-service"), MONITORING_NAMESPACE
# (monitoring), KPS_RELEASE (kps: the kube-prometheus-stack object prefix), TIMEOUT_SECONDS for
# each wait (300), API_URL (use this API instead of a port-forward to the api Service, e.g.
# `API_URL=http://127.0.0.1:8000` for `agent-service up`), API_KEY (the key sent to /v1; default:
# the helm test key, from the Secret $FULLNAME-test-key).
set -euo pipefail

NAMESPACE=${NAMESPACE:-agent-service}
RELEASE=${RELEASE:-agent-service}
if [[ $RELEASE == *agent-service* ]]; then FULLNAME=${FULLNAME:-$RELEASE}; fi
FULLNAME=${FULLNAME:-$RELEASE-agent-service}
MONITORING_NAMESPACE=${MONITORING_NAMESPACE:-monitoring}
KPS_RELEASE=${KPS_RELEASE:-kps}
TIMEOUT_SECONDS=${TIMEOUT_SECONDS:-300}
QUESTION='{"message":"what is 12*(3+4)?"}'

log() { printf '%s e2e: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
fail() {
  log "FAIL: $*"
  exit 1
}

# Background processes (port-forwards, traffic) end with the script.
children=()
cleanup() {
  local pid
  for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# port_forward NAMESPACE SERVICE PORT: forwards a free local port; sets URL.
URL=""
HPA=""
port_forward() {
  local namespace=$1 service=$2 port=$3 local_port logfile
  local_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  logfile=$(mktemp)
  kubectl -n "$namespace" port-forward "svc/$service" "$local_port:$port" >"$logfile" 2>&1 &
  children+=("$!")
  for _ in $(seq 1 30); do
    if curl -s -o /dev/null "http://127.0.0.1:$local_port/"; then
      URL="http://127.0.0.1:$local_port"
      return 0
    fi
    sleep 1
  done
  cat "$logfile" >&2
  fail "port-forward to svc/$service in $namespace did not come up"
}

# eventually DESCRIPTION COMMAND...: retries COMMAND every 5 s until it succeeds or time is up.
eventually() {
  local description=$1 deadline=$((SECONDS + TIMEOUT_SECONDS))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${TIMEOUT_SECONDS}s waiting for: $description"
    sleep 5
  done
  log "ok: $description"
}

# Sets URL to the API (API_URL when given, else a port-forward to the api Service) and API_KEY.
connect_api() {
  if [[ -n ${API_URL:-} ]]; then URL=$API_URL; else port_forward "$NAMESPACE" "$FULLNAME-api" 8000; fi
  if [[ -z ${API_KEY:-} ]]; then
    API_KEY=$(kubectl -n "$NAMESPACE" get secret "$FULLNAME-test-key" -o jsonpath='{.data.key}' | base64 -d)
    [[ -n $API_KEY ]] || fail "no API_KEY given and no key in secret/$FULLNAME-test-key"
  fi
}

# call_api PATH [CURL ARGS]: a request to the API, with the key.
call_api() {
  local path=$1
  shift
  curl -fsS "$URL$path" -H "Authorization: Bearer $API_KEY" "$@"
}

submit_task() {
  call_api /v1/tasks -H 'content-type: application/json' -d "$QUESTION" | jq -er .task_id
}

task_status() {
  call_api "/v1/tasks/$1" | jq -r .status || true
}

# Every task id in FILE has ended; fails at once if one did not succeed.
tasks_succeeded() {
  local file=$1 id status pending=0
  while read -r id; do
    status=$(task_status "$id")
    case $status in
      succeeded) ;;
      queued | running | "") pending=$((pending + 1)) ;; # "": the request failed; ask again
      *) fail "task $id ended $status: $(call_api "/v1/tasks/$id")" ;;
    esac
  done <"$file"
  log "tasks still queued or running: $pending"
  ((pending == 0))
}

cmd_smoke() {
  connect_api
  local answer id status
  # Authentication is on: no key, no run.
  status=$(curl -sS -o /dev/null -w '%{http_code}' "$URL/v1/chat" -H 'content-type: application/json' -d "$QUESTION")
  [[ $status == 401 ]] || fail "POST /v1/chat without a key answered $status, not 401"
  log "ok: POST /v1/chat without a key is refused (401)"
  answer=$(call_api /v1/chat -H 'content-type: application/json' -d "$QUESTION")
  jq -e '.answer | test("84")' <<<"$answer" >/dev/null || fail "unexpected chat answer: $answer"
  log "ok: POST /v1/chat answered $(jq -c .answer <<<"$answer")"
  id=$(submit_task)
  printf '%s\n' "$id" >"${TMPDIR:-/tmp}/smoke-task"
  eventually "queued task $id succeeded" tasks_succeeded "${TMPDIR:-/tmp}/smoke-task"
  call_api "/v1/tasks/$id" | jq -e '.result.answer | test("84")' >/dev/null \
    || fail "task result: $(call_api "/v1/tasks/$id")"
}

worker_replicas() {
  kubectl -n "$NAMESPACE" get deployment "$FULLNAME-worker" -o jsonpath='{.status.replicas}'
}

# KEDA's HPA wants more workers than at the start ($1), and the Deployment has them.
replicas_above() {
  local desired metrics now
  desired=$(kubectl -n "$NAMESPACE" get "hpa/$HPA" -o jsonpath='{.status.desiredReplicas}')
  metrics=$(kubectl -n "$NAMESPACE" get "hpa/$HPA" -o json | jq -c '[.status.currentMetrics[]?.external
    | {(.metric.name): (.current.averageValue // .current.value)}] | add')
  now=$(worker_replicas)
  log "hpa/$HPA desired ${desired:-0}, metrics ${metrics:-none}; worker replicas ${now:-0} (started at $1)"
  ((${desired:-0} > $1 && ${now:-0} > $1))
}

# The HPA KEDA made for the ScaledObject (keda-hpa-<name> unless the ScaledObject names it).
hpa_of() {
  HPA=$(kubectl -n "$NAMESPACE" get "scaledobject/$1" -o jsonpath='{.status.hpaName}')
  [[ -n $HPA ]] && kubectl -n "$NAMESPACE" get "hpa/$HPA" -o name
}

cmd_burst() {
  local count=${1:-300} before ids scaledobject
  scaledobject=$(kubectl -n "$NAMESPACE" get scaledobject -o jsonpath='{.items[0].metadata.name}')
  [[ -n $scaledobject ]] || fail "no ScaledObject in $NAMESPACE"
  kubectl -n "$NAMESPACE" wait --for=condition=Ready "scaledobject/$scaledobject" --timeout=120s
  eventually "KEDA created the HPA of scaledobject/$scaledobject" hpa_of "$scaledobject"
  before=$(worker_replicas)
  connect_api
  ids=$(mktemp)
  log "submitting $count tasks"
  for _ in $(seq 1 "$count"); do submit_task; done >"$ids"
  [[ $(wc -l <"$ids") -eq $count ]] || fail "not every task was accepted"
  eventually "worker replicas rose above $before" replicas_above "$before"
  kubectl -n "$NAMESPACE" get "hpa/$HPA" >&2
  TIMEOUT_SECONDS=$((TIMEOUT_SECONDS * 2)) eventually "all $count tasks succeeded" tasks_succeeded "$ids"
}

# prom PATH [CURL ARGS]: GET from Prometheus' HTTP API (URL set by port_forward).
prom() {
  local path=$1
  shift
  curl -fsS -G "$URL$path" "$@"
}

targets_up() {
  local summary
  summary=$(prom /api/v1/targets --data-urlencode state=active | jq -r --arg ns "$NAMESPACE" '
    [.data.activeTargets[] | select(.labels.namespace == $ns)]
    | map("\(.labels.job)=\(.health)") | join(" ")')
  log "targets in $NAMESPACE: ${summary:-none}"
  [[ $summary == *"$FULLNAME-api=up"* && $summary == *"$FULLNAME-worker=up"* ]] \
    && [[ $summary != *"=down"* ]]
}

rules_loaded() {
  local groups
  groups=$(prom /api/v1/rules | jq -r --arg ns "$NAMESPACE" '
    [.data.groups[] | select(.file | contains($ns)) | "\(.name)(\(.rules | length))"] | join(" ")')
  log "rule groups from $NAMESPACE: ${groups:-none}"
  [[ $groups == *agent-service* ]]
}

metric_present() {
  local value
  value=$(prom /api/v1/query --data-urlencode \
    "query=sum(agent_tasks_finished_total{namespace=\"$NAMESPACE\"})" | jq -r '.data.result[0].value[1] // "0"')
  log "sum(agent_tasks_finished_total) = $value"
  [[ $value != 0 ]]
}

# Grafana (kps's sidecar) loaded as many dashboards into the release's folder as the release has
# dashboard ConfigMaps ($1), e.g. folder "agent-service" from the chart's dashboards.folder.
GRAFANA_AUTH=""
dashboards_loaded() {
  local wanted=$1 folder=$2 found
  found=$(curl -fsS -u "$GRAFANA_AUTH" "$URL/api/search?type=dash-db" \
    | jq --arg folder "$folder" '[.[] | select(.folderTitle == $folder)] | length')
  log "Grafana dashboards in folder $folder: ${found:-0} of $wanted"
  ((${found:-0} >= wanted))
}

cmd_monitoring() {
  port_forward "$MONITORING_NAMESPACE" prometheus-operated 9090
  eventually "Prometheus scrapes the api and worker targets, all up" targets_up
  eventually "Prometheus loaded the agent-service rule groups" rules_loaded
  eventually "Prometheus has agent_tasks_finished_total from $NAMESPACE" metric_present
  local dashboards folder password
  dashboards=$(kubectl get configmap -A -l "grafana_dashboard=1,app.kubernetes.io/instance=$RELEASE" -o name | wc -l)
  ((dashboards > 0)) || fail "no dashboard ConfigMap labelled grafana_dashboard=1"
  log "ok: $dashboards dashboard ConfigMaps"
  folder=$(kubectl get configmap -A -l "grafana_dashboard=1,app.kubernetes.io/instance=$RELEASE" \
    -o jsonpath='{.items[0].metadata.annotations.grafana_folder}')
  password=$(kubectl -n "$MONITORING_NAMESPACE" get secret "$KPS_RELEASE-grafana" \
    -o jsonpath='{.data.admin-password}' | base64 -d)
  GRAFANA_AUTH="admin:$password"
  port_forward "$MONITORING_NAMESPACE" "$KPS_RELEASE-grafana" 80
  eventually "Grafana loaded the $dashboards dashboards into folder ${folder:-General}" \
    dashboards_loaded "$dashboards" "${folder:-General}"
}

# The collector's debug exporter (verbosity detailed, k8s/kind-values.yaml) logs each span's
# resource: both services must appear.
spans_received() {
  local logs service missing=""
  logs=$(kubectl -n "$NAMESPACE" logs --tail=-1 --prefix \
    -l "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component=otel-collector" 2>/dev/null || true)
  for service in agent-service-api agent-service-worker; do
    grep -q "service.name: Str($service)" <<<"$logs" || missing+=" $service"
  done
  log "collector log: $(grep -c 'Span #' <<<"$logs" || true) spans; missing services:${missing:- none}"
  [[ -z $missing ]]
}

cmd_traces() {
  connect_api
  call_api /v1/chat -H 'content-type: application/json' -d "$QUESTION" >/dev/null
  local id
  id=$(submit_task)
  printf '%s\n' "$id" >"${TMPDIR:-/tmp}/traces-task"
  eventually "queued task $id succeeded" tasks_succeeded "${TMPDIR:-/tmp}/traces-task"
  eventually "the collector received spans of the api and the worker" spans_received
}

alert_active() {
  local alerts
  alerts=$(curl -fsS "$URL/api/v2/alerts?active=true" | jq -c --arg name "$1" --arg ns "$NAMESPACE" '
    [.[] | select(.labels.alertname == $name and .labels.namespace == $ns) | .labels]')
  log "alertmanager: $1 in $NAMESPACE: $alerts"
  [[ $alerts != "[]" ]]
}

cmd_alert() {
  local name=${1:?usage: e2e.sh alert ALERTNAME} api
  connect_api
  api=$URL
  # A steady trickle of queued runs, so that the alert's rate window keeps seeing requests.
  (while true; do
    curl -s -o /dev/null "$api/v1/tasks" -H "Authorization: Bearer $API_KEY" \
      -H 'content-type: application/json' -d "$QUESTION" || true
    sleep 2
  done) &
  children+=("$!")
  port_forward "$MONITORING_NAMESPACE" alertmanager-operated 9093
  TIMEOUT_SECONDS=$((TIMEOUT_SECONDS * 2)) eventually "Alertmanager shows $name" alert_active "$name"
}

# The Agent and MCPServer resources (configSource=agentconfig, k8s/kind-values.yaml).
ORDER_QUESTION='{"agent":"orders","message":"where is order OD-20240502?"}'

# ready_reason KIND NAME: prints the Ready condition as "status reason: message".
ready_reason() {
  kubectl -n "$NAMESPACE" get "$1" "$2" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason}: {.status.conditions[?(@.type=="Ready")].message}'
}

# resource_ready KIND NAME [REASON]: Ready=True (with REASON when given).
resource_ready() {
  local state
  state=$(ready_reason "$1" "$2")
  log "$1/$2: ${state:-no status yet}"
  [[ $state == "True ${3:-}"* ]]
}

# resource_refused KIND NAME REASON: Accepted=False with REASON.
resource_refused() {
  local state
  state=$(kubectl -n "$NAMESPACE" get "$1" "$2" \
    -o jsonpath='{.status.conditions[?(@.type=="Accepted")].status} {.status.conditions[?(@.type=="Accepted")].reason}')
  log "$1/$2 Accepted: ${state:-no status yet}"
  [[ $state == "False $3" ]]
}

# agent_offers NAME TOOL: GET /v1/agents lists agent NAME with TOOL (the pods reloaded the config
# and discovered the MCP server's tools).
agent_offers() {
  local tools
  tools=$(call_api /v1/agents | jq -c --arg name "$1" '.data[] | select(.name == $name) | .tools')
  log "GET /v1/agents: $1 offers ${tools:-nothing (not listed yet)}"
  [[ $tools == *"\"$2\""* ]]
}

cmd_agents() {
  local image answer tools
  # The demo MCP server on the image of the release under test (the example names the published one).
  image=$(kubectl -n "$NAMESPACE" get deployment "$FULLNAME-api" -o jsonpath='{.spec.template.spec.containers[0].image}')
  sed "s#image: ghcr.io/agent-service/agent-service:.*#image: $image#" k8s/examples/mcp-demo.yaml \
    | kubectl -n "$NAMESPACE" apply -f -
  kubectl -n "$NAMESPACE" rollout status deployment/mcp-demo --timeout="${TIMEOUT_SECONDS}s"
  # The examples are labelled for the release "agent-service"; relabel them for this one.
  for example in k8s/examples/mcpserver.yaml k8s/examples/agent.yaml; do
    sed "s#agent-service.dev/config: agent-service#agent-service.dev/config: $FULLNAME#" "$example" \
      | kubectl -n "$NAMESPACE" apply -f -
  done
  eventually "MCPServer orders is Ready (the controller listed its tools)" \
    resource_ready mcpservers.agent-service.dev orders Reachable
  tools=$(kubectl -n "$NAMESPACE" get mcpservers.agent-service.dev orders -o jsonpath='{.status.toolCount}')
  [[ $tools == 3 ]] || fail "MCPServer orders: toolCount ${tools:-unset}, not 3"
  eventually "Agent orders is Ready (in the pods' ConfigMap)" resource_ready agents.agent-service.dev orders Served
  kubectl -n "$NAMESPACE" get agentconfigs,agents.agent-service.dev,mcpservers.agent-service.dev -o wide >&2
  connect_api
  eventually "the pods serve agent orders with orders__lookup_order" agent_offers orders orders__lookup_order
  answer=$(call_api /v1/chat -H 'content-type: application/json' -d "$ORDER_QUESTION")
  jq -e '.answer | test("JD014600003828")' <<<"$answer" >/dev/null || fail "unexpected answer: $answer"
  jq -e '.agent == "orders" and ([.steps[] | select(.kind == "tool" and .name == "orders__lookup_order" and .status == "ok")] | length) == 1' \
    <<<"$answer" >/dev/null || fail "no successful orders__lookup_order step: $answer"
  log "ok: agent orders answered $(jq -c .answer <<<"$answer") through orders__lookup_order"
  # A broken Agent is refused on its own: a precise status, and orders keeps serving.
  kubectl -n "$NAMESPACE" apply -f - <<EOF_AGENT
apiVersion: agent-service.dev/v1alpha1
kind: Agent
metadata:
  name: broken
  labels:
    agent-service.dev/config: $FULLNAME
spec:
  model: no-such-model
EOF_AGENT
  eventually "Agent broken is refused (UnknownModel)" resource_refused agents.agent-service.dev broken UnknownModel
  log "Agent broken: $(ready_reason agents.agent-service.dev broken)"
  kubectl -n "$NAMESPACE" describe agents.agent-service.dev broken >&2
  call_api /v1/chat -H 'content-type: application/json' -d "$ORDER_QUESTION" \
    | jq -e '.answer | test("JD014600003828")' >/dev/null || fail "agent orders stopped answering"
  log "ok: agent orders still answers next to the refused Agent"
  kubectl -n "$NAMESPACE" delete agents.agent-service.dev broken
}

cmd_dump() {
  local dir=${1:-${TMPDIR:-/tmp}/e2e-dump} pod
  mkdir -p "$dir"
  kubectl get all -A -o wide >"$dir/all.txt" 2>&1 || true
  kubectl get events -A --sort-by=.lastTimestamp >"$dir/events.txt" 2>&1 || true
  kubectl -n "$NAMESPACE" describe scaledobject,hpa,deployment,statefulset,pods >"$dir/describe.txt" 2>&1 || true
  kubectl -n "$NAMESPACE" get servicemonitor,prometheusrule,scaledobject,triggerauthentication,configmap \
    -o yaml >"$dir/custom-resources.yaml" 2>&1 || true
  kubectl -n "$NAMESPACE" get opentelemetrycollector -o yaml >>"$dir/custom-resources.yaml" 2>/dev/null || true
  kubectl -n "$NAMESPACE" get agentconfigs,agents.agent-service.dev,mcpservers.agent-service.dev \
    -o yaml >>"$dir/custom-resources.yaml" 2>/dev/null || true
  for pod in $(kubectl -n "$NAMESPACE" get pods -o name 2>/dev/null); do
    kubectl -n "$NAMESPACE" logs "$pod" --all-containers --prefix --tail=500 >"$dir/${pod#pod/}.log" 2>&1 || true
    kubectl -n "$NAMESPACE" logs "$pod" --all-containers --prefix --previous >>"$dir/${pod#pod/}.log" 2>/dev/null || true
  done
  kubectl -n keda logs deployment/keda-operator --tail=300 >"$dir/keda-operator.log" 2>&1 || true
  kubectl -n "$MONITORING_NAMESPACE" logs "statefulset/prometheus-$KPS_RELEASE-prometheus" --all-containers --tail=300 \
    >"$dir/prometheus.log" 2>&1 || true
  kubectl -n "$MONITORING_NAMESPACE" logs "deployment/$KPS_RELEASE-grafana" --all-containers --tail=300 \
    >"$dir/grafana.log" 2>&1 || true
  # The essentials to the job log as well.
  cat "$dir/all.txt" "$dir/events.txt" >&2
  kubectl -n "$NAMESPACE" describe scaledobject >&2 || true
  tail -n 50 "$dir"/*.log >&2 || true
}

case ${1:-} in
  smoke | burst | monitoring | traces | alert | agents | dump)
    command=$1
    shift
    "cmd_$command" "$@"
    ;;
  *)
    awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0" >&2
    exit 2
    ;;
esac
