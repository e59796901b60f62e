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
- name: AGENT_TASKS_TTL_SECONDS
  value: {{ $root.Values.tasks.ttlSeconds | quote }}
{{- include "agent-service.redis.env" $root }}
{{- include "agent-service.history.env" $root }}
{{- if include "agent-service.configFile" $root }}
- name: AGENT_CONFIG_FILE
  value: /etc/agent-service/config.yaml
{{- end }}
- name: AGENT_CONFIG_SECRETS_DIR
  value: {{ include "agent-service.config.secretsDir" $root | quote }}
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
{{- include "agent-service.metricsAuth.env" $root }}
{{- include "agent-service.webhooks.env" $root }}
{{- include "agent-service.knowledge.env" $root }}
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

{{/*
Volumes shared by api and worker: /tmp, the multiprocess metrics dir, the agent config and the
Secrets of agentConfigSecrets (one volume each: a Secret is a directory of its keys).
The config volume is not optional: in agentconfig mode the controller writes the ConfigMap a few
seconds after the install, and until then the kubelet retries the mount and the container waits
(an optional volume would start it with no file, and the process exits without its config).
Secrets are not optional either: a listed Secret that does not exist keeps the pods waiting with
a FailedMount event naming it, rather than failing later at an LLM call. The same holds for the
/metrics token and the webhook secret (templates/_auth.tpl); the client keys file is the api's
alone (templates/api/deployment.yaml).
*/}}
{{- define "agent-service.volumes" -}}
- name: tmp
  emptyDir: {}
- name: prometheus-multiproc
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
{{- if include "agent-service.configFile" . }}
- name: config
  configMap:
    name: {{ include "agent-service.config.configMapName" . }}
{{- end }}
{{- range $i, $name := .Values.agentConfigSecrets }}
- name: {{ printf "config-secret-%d" $i }}
  secret:
    secretName: {{ $name }}
    defaultMode: 288 # 0440: the pod's user and fsGroup only
{{- end }}
{{- include "agent-service.redis.volumes" . }}
{{- include "agent-service.history.volumes" . }}
{{- include "agent-service.metricsAuth.volume" . }}
{{- include "agent-service.webhooks.volume" . }}
{{- include "agent-service.knowledge.volumes" . }}
{{- end }}

{{- define "agent-service.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: prometheus-multiproc
  mountPath: /tmp/prometheus
{{- if include "agent-service.configFile" . }}
- name: config
  mountPath: /etc/agent-service
  readOnly: true
{{- end }}
{{- $dir := include "agent-service.config.secretsDir" . }}
{{- range $i, $name := .Values.agentConfigSecrets }}
- name: {{ printf "config-secret-%d" $i }}
  mountPath: {{ printf "%s/%s" $dir $name }}
  readOnly: true
{{- end }}
{{- include "agent-service.redis.volumeMounts" . }}
{{- include "agent-service.history.volumeMounts" . }}
{{- include "agent-service.metricsAuth.volumeMount" . }}
{{- include "agent-service.webhooks.volumeMount" . }}
{{- include "agent-service.knowledge.volumeMounts" . }}
{{- end }}

{{/*
Pod template annotations that roll the pods when what they read at start changes. Each checksum
is of values only, never of a rendered object (whose labels carry the chart's version: a chart
upgrade that changes nothing the pods run must roll nothing). Secrets are referenced by name, so
a changed name changes the pod spec by itself; what a Secret holds is invisible here (the
generated ones never change; restart the pods after rotating one of yours).
The agent config is hot-reloaded by the pods, so a config-only upgrade rolls nothing unless
configReload.restartOnChange asks for it; in agentconfig mode the chart does not render the
config at all (the controller does).
*/}}
{{- define "agent-service.checksums" -}}
{{- if and (not (include "agent-service.agentConfigMode" .)) .Values.configReload.restartOnChange }}
checksum/config: {{ include "agent-service.agentConfig.rendered" . | sha256sum }}
{{- end }}
checksum/llm-secret: {{ toJson (pick .Values.llm "apiKeys" "existingSecret") | sha256sum }}
checksum/redis-auth: {{ toJson (list .Values.redis.auth .Values.externalRedis) | sha256sum }}
{{- end }}
