{{/*
Fragments of the api and worker pods: environment, volumes, mounts and checksums.
*/}}

{{/* Environment shared by api and worker (.root, .component). */}}
{{- define "agent-service.env" -}}
{{- $root := .root -}}
- name: LITELLM_LOCAL_MODEL_COST_MAP
  value: "True"
- name: PROMETHEUS_MULTIPROC_DIR
  value: /tmp/prometheus
- name: AGENT_METRICS_PORT
  value: {{ $root.Values.metrics.port | quote }}
- name: AGENT_LOG_LEVEL
  value: {{ $root.Values.log.level | quote }}
- name: AGENT_LOG_JSON
  value: {{ $root.Values.log.json | quote }}
- name: AGENT_WORKER_QUEUE
  value: {{ $root.Values.queue | quote }}
{{- include "agent-service.redis.env" $root }}
{{- if $root.Values.agentConfig }}
- name: AGENT_CONFIG_FILE
  value: /etc/agent-service/config.yaml
{{- end }}
{{- if $root.Values.llmSimulator.enabled }}
- name: AGENT_SIM_URL
  value: {{ include "agent-service.simulator.url" $root | quote }}
{{- end }}
{{- if include "agent-service.otel.enabled" $root }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "agent-service-%s" .component | quote }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ include "agent-service.otel.endpoint" $root | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $root.Values.otel.protocol | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $root.Values.otel.tracesSampler | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $root.Values.otel.tracesSamplerArg | quote }}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ list "k8s.pod.name=$(K8S_POD_NAME)" "k8s.namespace.name=$(K8S_NAMESPACE_NAME)" (printf "service.namespace=%s" (include "agent-service.namespace" $root)) | concat (compact (list $root.Values.otel.resourceAttributes)) | join "," | quote }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* envFrom: the LLM credentials Secret, every key an environment variable. */}}
{{- define "agent-service.envFrom" -}}
{{- with include "agent-service.llm.secretName" . }}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
{{- end }}

{{/* Volumes shared by api and worker: /tmp, the multiprocess metrics dir, the agent config. */}}
{{- define "agent-service.volumes" -}}
- name: tmp
  emptyDir: {}
- name: prometheus-multiproc
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
{{- if .Values.agentConfig }}
- name: config
  configMap:
    name: {{ include "agent-service.componentName" (dict "root" . "component" "config") }}
{{- end }}
{{- end }}

{{- define "agent-service.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: prometheus-multiproc
  mountPath: /tmp/prometheus
{{- if .Values.agentConfig }}
- name: config
  mountPath: /etc/agent-service
  readOnly: true
{{- end }}
{{- end }}

{{/*
Pod template annotations that roll the pods when their configuration changes. User-managed
Secrets (existingSecret) are invisible here: restart the pods after changing one.
*/}}
{{- define "agent-service.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/config/configmap.yaml") . | sha256sum }}
checksum/llm-secret: {{ include (print .Template.BasePath "/config/llm-secret.yaml") . | sha256sum }}
checksum/redis-auth: {{ toJson (list .Values.redis.auth .Values.externalRedis) | sha256sum }}
{{- end }}
