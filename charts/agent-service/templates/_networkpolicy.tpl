{{/*
NetworkPolicy fragments. Namespaces are matched by name through the kubernetes.io/metadata.name
label every namespace carries.
*/}}

{{/* A namespaceSelector peer for a list of namespace names. */}}
{{- define "agent-service.np.namespaces" -}}
- namespaceSelector:
    matchExpressions:
      - key: kubernetes.io/metadata.name
        operator: In
        values:
          {{- toYaml . | nindent 10 }}
{{- end }}

{{/* Egress rules of api and worker pods: DNS, Redis, simulator, LLM providers, OTLP collector, extra. */}}
{{- define "agent-service.np.appEgress" -}}
{{- $np := .Values.networkPolicy -}}
# DNS (kube-dns / CoreDNS) over UDP and TCP.
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
# Redis: broker and task records.
{{- if .Values.redis.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "agent-service.selectorLabels" (dict "root" . "component" "redis") | nindent 10 }}
  ports:
    - port: 6379
      protocol: TCP
{{- else }}
{{- $ports := list (include "agent-service.redis.port" . | int) }}
{{- if include "agent-service.redis.sentinel" . }}
{{- range .Values.externalRedis.sentinel.nodes }}
{{- $ports = append $ports (regexFind "[0-9]+$" . | int) }}
{{- end }}
{{- end }}
# The external Redis (and its Sentinels).
- ports:
    {{- range $ports | uniq }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with $np.externalRedisCidrs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
{{- end }}
{{- with include "agent-service.np.historyEgress" . }}
{{- . | trim | nindent 0 }}
{{- end }}
{{- if .Values.knowledge.chroma.enabled }}
# The knowledge bases' Chroma server.
- to:
    - podSelector:
        matchLabels:
          {{- include "agent-service.selectorLabels" (dict "root" . "component" "chroma") | nindent 10 }}
  ports:
    - port: {{ .Values.knowledge.chroma.port }}
      protocol: TCP
{{- else if .Values.knowledge.externalUrl }}
# The external Chroma server of the knowledge bases.
{{- $u := urlParse .Values.knowledge.externalUrl }}
{{- $port := regexFind "[0-9]+$" $u.host }}
- ports:
    - port: {{ $port | default (ternary 443 80 (eq $u.scheme "https")) }}
      protocol: TCP
  {{- with .Values.networkPolicy.externalChromaCidrs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
{{- end }}
{{- if .Values.llmSimulator.enabled }}
# The in-cluster LLM simulator.
- to:
    - podSelector:
        matchLabels:
          {{- include "agent-service.selectorLabels" (dict "root" . "component" "simulator") | nindent 10 }}
  ports:
    - port: {{ .Values.llmSimulator.port }}
      protocol: TCP
{{- end }}
# LLM providers and HTTP tools.
- to:
    {{- range $np.llmEgress.cidrs }}
    - ipBlock:
        cidr: {{ . }}
        {{- with $np.llmEgress.except }}
        except:
          {{- toYaml . | nindent 10 }}
        {{- end }}
    {{- end }}
  ports:
    {{- range $np.llmEgress.ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- if include "agent-service.otel.toCollector" . }}
# The release's OpenTelemetry collector (OTLP gRPC 4317, HTTP 4318).
- to:
    - podSelector:
        matchLabels:
          {{- include "agent-service.otelCollector.podLabels" . | nindent 10 }}
  ports:
    - port: 4317
      protocol: TCP
    - port: 4318
      protocol: TCP
{{- else if include "agent-service.otel.enabled" . }}
# The OpenTelemetry collector at otel.endpoint (OTLP gRPC 4317, HTTP 4318).
- ports:
    {{- range $np.otlpEgress.ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- if or $np.otlpEgress.namespaces $np.otlpEgress.cidrs }}
  to:
    {{- with $np.otlpEgress.namespaces }}
    {{- include "agent-service.np.namespaces" . | nindent 4 }}
    {{- end }}
    {{- range $np.otlpEgress.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
{{- end }}
{{- with $np.extraEgress }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Egress of worker pods to webhook receivers (webhooks.enabled), shaped like the LLM rule: by
default any address but the private, shared and link-local ranges, which the service's SSRF
guard refuses anyway unless webhooks.allowPrivateNetworks.
*/}}
{{- define "agent-service.np.webhookEgress" -}}
{{- $np := .Values.networkPolicy -}}
{{- if .Values.webhooks.enabled }}
# Task webhooks (workers POST to each task's webhook_url).
- to:
    {{- range $np.webhookEgress.cidrs }}
    - ipBlock:
        cidr: {{ . }}
        {{- with $np.webhookEgress.except }}
        except:
          {{- toYaml . | nindent 10 }}
        {{- end }}
    {{- end }}
  ports:
    {{- range $np.webhookEgress.ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- end }}

{{/* Ingress rule letting Prometheus scrape the `metrics` port. */}}
{{- define "agent-service.np.metricsIngress" -}}
{{- $np := .Values.networkPolicy -}}
- ports:
    - port: metrics
      protocol: TCP
  {{- with $np.monitoringNamespaces }}
  from:
    {{- include "agent-service.np.namespaces" . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* Egress to the Kubernetes API server (networkPolicy.kubeApiEgress): the controller, and
workers that keep their pod's deletion cost. */}}
{{- define "agent-service.np.kubeApiEgress" -}}
{{- $np := .Values.networkPolicy -}}
# The Kubernetes API server.
- ports:
    {{- range $np.kubeApiEgress.ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with $np.kubeApiEgress.cidrs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
{{- end }}
