{{/*
Tracing: where api and worker pods send OTLP, and the release's own collector (otelCollector).
The collector is an OpenTelemetryCollector for the OpenTelemetry Operator when the cluster serves
opentelemetry.io/v1beta1, else a plain Deployment; both answer at the Service
<fullname>-otel-collector (the operator names its Service <CR name>-collector).
*/}}

{{/* "true" when api and worker export traces: otel.enabled, or the release's collector. */}}
{{- define "agent-service.otel.enabled" -}}
{{- if or .Values.otel.enabled .Values.otelCollector.enabled }}true{{ end }}
{{- end }}

{{/* "true" when the pods send to the release's collector (enabled, and no otel.endpoint given). */}}
{{- define "agent-service.otel.toCollector" -}}
{{- if and .Values.otelCollector.enabled (not .Values.otel.endpoint) }}true{{ end }}
{{- end }}

{{/* "true" when the collector is rendered as an OpenTelemetryCollector custom resource. */}}
{{- define "agent-service.otelCollector.operator" -}}
{{- if and .Values.otelCollector.enabled .Values.otelCollector.useOperator (include "agent-service.hasApi" (list "opentelemetry.io/v1beta1" .)) }}true{{ end }}
{{- end }}

{{/* Name of the OpenTelemetryCollector; the operator derives "<name>-collector" from it. */}}
{{- define "agent-service.otelCollector.crName" -}}
{{- include "agent-service.componentName" (dict "root" . "component" "otel") }}
{{- end }}

{{/* The collector's Service, in either form. */}}
{{- define "agent-service.otelCollector.serviceName" -}}
{{- include "agent-service.componentName" (dict "root" . "component" "otel-collector") }}
{{- end }}

{{/* OTEL_EXPORTER_OTLP_ENDPOINT: otel.endpoint, else the collector's port for otel.protocol. */}}
{{- define "agent-service.otel.endpoint" -}}
{{- if .Values.otel.endpoint }}
{{- .Values.otel.endpoint }}
{{- else if .Values.otelCollector.enabled }}
{{- $port := ternary 4317 4318 (eq .Values.otel.protocol "grpc") }}
{{- printf "http://%s:%d" (include "agent-service.otelCollector.serviceName" .) $port }}
{{- end }}
{{- end }}

{{/*
matchLabels of the collector's pods. The operator replaces the instance and component labels
with its own (instance "<namespace>.<CR name>"), so its pods are selected by those.
*/}}
{{- define "agent-service.otelCollector.podLabels" -}}
{{- if include "agent-service.otelCollector.operator" . }}
app.kubernetes.io/managed-by: opentelemetry-operator
app.kubernetes.io/instance: {{ printf "%s.%s" (include "agent-service.namespace" .) (include "agent-service.otelCollector.crName" .) | trunc 63 | trimSuffix "-" | trimSuffix "." }}
{{- else }}
{{- include "agent-service.selectorLabels" (dict "root" . "component" "otel-collector") }}
{{- end }}
{{- end }}

{{/*
The collector configuration (one source for both forms): OTLP in, memory_limiter then batch
(memory_limiter first, so data is refused before it is buffered), the configured exporters out,
and the health_check extension the probes call.
*/}}
{{- define "agent-service.otelCollector.config" -}}
{{- $c := .Values.otelCollector }}
{{- $exporters := dict }}
{{- range $c.exporters }}
{{- $_ := set $exporters .name (.config | default dict) }}
{{- end }}
extensions:
  health_check:
    endpoint: 0.0.0.0:13133
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
processors:
  memory_limiter:
    check_interval: {{ $c.memoryLimiter.checkInterval }}
    limit_percentage: {{ $c.memoryLimiter.limitPercentage }}
    spike_limit_percentage: {{ $c.memoryLimiter.spikeLimitPercentage }}
  batch:
    timeout: {{ $c.batch.timeout }}
    send_batch_size: {{ $c.batch.sendBatchSize }}
exporters:
  {{- toYaml $exporters | nindent 2 }}
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters:
        {{- range $c.exporters }}
        - {{ .name }}
        {{- end }}
{{- end }}
