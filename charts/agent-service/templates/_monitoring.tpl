{{/*
A ServiceMonitor scraping the `metrics` port of a component's Service (.root, .component), its
series labelled with the Service's part-of and component labels.
kube-prometheus-stack selects it only with its `release` label: set serviceMonitor.labels.
With metrics.auth.enabled, the service's own components (not the Redis exporter) send the
/metrics token: the Prometheus Operator reads the Secret from the monitor's namespace (ours)
and hands it to Prometheus, wherever Prometheus runs.
*/}}
{{- define "agent-service.serviceMonitor" -}}
{{- $root := .root }}
{{- $sm := $root.Values.serviceMonitor }}
{{- $ctx := dict "root" $root "component" .component }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "agent-service.componentName" $ctx }}
  namespace: {{ include "agent-service.namespace" $root }}
  labels:
    {{- include "agent-service.labels" $ctx | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- include "agent-service.annotations" (dict "root" $root "extra" $sm.annotations) }}
spec:
  selector:
    matchLabels:
      {{- include "agent-service.selectorLabels" $ctx | nindent 6 }}
  # Copied from the Service onto every series (as app_kubernetes_io_part_of and
  # app_kubernetes_io_component): the alert rules select the service by these, not by the job
  # name, which fullnameOverride changes.
  targetLabels:
    - app.kubernetes.io/part-of
    - app.kubernetes.io/component
  namespaceSelector:
    matchNames:
      - {{ include "agent-service.namespace" $root }}
  endpoints:
    - port: metrics
      path: /metrics
      interval: {{ $sm.interval }}
      scrapeTimeout: {{ $sm.scrapeTimeout }}
      honorLabels: {{ $sm.honorLabels }}
      {{- if and $root.Values.metrics.auth.enabled (has .component (list "api" "worker" "controller")) }}
      authorization:
        type: Bearer
        credentials:
          name: {{ include "agent-service.metricsAuth.secretName" $root }}
          key: {{ include "agent-service.metricsAuth.secretKey" $root }}
      {{- else if $sm.authorization }}
      authorization:
        {{- toYaml $sm.authorization | nindent 8 }}
      {{- end }}
      {{- with $sm.relabelings }}
      relabelings:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $sm.metricRelabelings }}
      metricRelabelings:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{/*
A dashboard file's JSON with a uid and title of this release's own: "<uid>-<8 hex of
sha256(namespace/fullname)>" (Grafana's limit is 40 characters) and "<title> (<namespace>/
<fullname>)". The two top-level lines are replaced as text, so the rest reaches Grafana byte for
byte (dashboards/ files have exactly one of each at the top level; tests/chart checks).
(.root, .path)
*/}}
{{- define "agent-service.dashboard" -}}
{{- $root := .root }}
{{- $text := $root.Files.Get .path }}
{{- $dashboard := fromJson $text }}
{{- $release := printf "%s/%s" (include "agent-service.namespace" $root) (include "agent-service.fullname" $root) }}
{{- $uid := printf "%s-%s" $dashboard.uid (sha256sum $release | trunc 8) | trunc 40 }}
{{- $text = replace (printf "\n  \"uid\": %s," (toJson $dashboard.uid)) (printf "\n  \"uid\": %s," (toJson $uid)) $text }}
{{- $title := printf "%s (%s)" $dashboard.title $release }}
{{- replace (printf "\n  \"title\": %s," (toJson $dashboard.title)) (printf "\n  \"title\": %s," (toJson $title)) $text }}
{{- end }}
