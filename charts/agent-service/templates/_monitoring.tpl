{{/*
A ServiceMonitor scraping the `metrics` port of a component's Service (.root, .component).
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
