{{/*
Names, labels and small shared fragments (prometheus-community helper style).
Component helpers take a dict: (dict "root" $ "component" "api").
*/}}

{{/* The chart name (nameOverride), trimmed to 63 characters. */}}
{{- define "agent-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release-qualified name; the release name alone when it already contains the chart name. */}}
{{- define "agent-service.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The name of a component's objects: <fullname>-<component>. */}}
{{- define "agent-service.componentName" -}}
{{- printf "%s-%s" (include "agent-service.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The CronJob of a schedule (.root, .name): <fullname>-<name>. A CronJob's name may have 52
characters at most (its Jobs add 11): a longer one fails the render rather than being cut. */}}
{{- define "agent-service.schedule.name" -}}
{{- $name := printf "%s-%s" (include "agent-service.fullname" .root) .name }}
{{- if gt (len $name) 52 }}
{{- fail (printf "schedules: the CronJob name %q is longer than 52 characters: shorten the schedule's name (or fullnameOverride)" $name) }}
{{- end }}
{{- $name }}
{{- end }}

{{/* chart label: name-version. */}}
{{- define "agent-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The namespace of every object. */}}
{{- define "agent-service.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: only name, instance and (when given) component. Selectors are immutable, so
nothing that changes between releases (version, chart) may appear here.
*/}}
{{- define "agent-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agent-service.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* Every object's labels: the pod labels below plus the chart (name-version). */}}
{{- define "agent-service.labels" -}}
helm.sh/chart: {{ include "agent-service.chart" .root }}
{{ include "agent-service.podLabels" . }}
{{- end }}

{{/*
Labels of pod templates: selector labels plus version, manager, part-of and commonLabels, but not
the chart's version, so that a chart upgrade that changes nothing a pod runs rolls no pod.
app.kubernetes.io/part-of is fixed ("agent-service", whatever nameOverride or fullnameOverride
say): the ServiceMonitors copy it onto every series and the alert rules select on it.
*/}}
{{- define "agent-service.podLabels" -}}
{{ include "agent-service.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Values.image.tag | default .root.Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: agent-service
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
metadata.annotations from commonAnnotations plus an optional extra map (.extra). Emits nothing
or "\n  annotations: ..." at metadata level: call it with a left-trimming include, no nindent.
*/}}
{{- define "agent-service.annotations" -}}
{{- $all := merge (dict) (.extra | default dict) (.root.Values.commonAnnotations | default dict) }}
{{- with $all }}
  annotations:
    {{- toYaml . | nindent 4 }}
{{- end }}
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "agent-service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "agent-service.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference from {repository, tag, digest}: repository:tag, repository:tag@digest or
repository@digest. .default is the tag used when the tag is empty. `latest` is refused.
*/}}
{{- define "agent-service.imageRef" -}}
{{- $tag := .image.tag | default .default | toString }}
{{- if eq $tag "latest" }}
{{- fail (printf "image %s: the tag `latest` is not allowed; pin a version (or a digest)" .image.repository) }}
{{- end }}
{{- if and $tag .image.digest }}
{{- printf "%s:%s@%s" .image.repository $tag .image.digest }}
{{- else if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else if $tag }}
{{- printf "%s:%s" .image.repository $tag }}
{{- else }}
{{- fail (printf "image %s: set a tag or a digest" .image.repository) }}
{{- end }}
{{- end }}

{{/* The service image (api, worker, simulator, helm test). */}}
{{- define "agent-service.image" -}}
{{- include "agent-service.imageRef" (dict "image" .Values.image "default" .Chart.AppVersion) }}
{{- end }}

{{/* The controller's image: controller.image field by field, each empty field the image's. */}}
{{- define "agent-service.controller.image" -}}
{{- $image := deepCopy .Values.image }}
{{- range $field, $value := .Values.controller.image }}
{{- if $value }}
{{- $_ := set $image $field $value }}
{{- end }}
{{- end }}
{{- include "agent-service.imageRef" (dict "image" $image "default" .Chart.AppVersion) }}
{{- end }}

{{/*
"true" when an API group/version is served by the cluster or listed in .Values.apiVersions.
Usage: include "agent-service.hasApi" (list "monitoring.coreos.com/v1" $)
*/}}
{{- define "agent-service.hasApi" -}}
{{- $api := first . }}
{{- $root := last . }}
{{- if or ($root.Capabilities.APIVersions.Has $api) (has $api ($root.Values.apiVersions | default list)) }}true{{ end }}
{{- end }}

{{/*
Optional features and the API each one needs: [name, enabled, api]. NOTES.txt warns about (and
strictCapabilities fails on) enabled features whose API is missing.
*/}}
{{- define "agent-service.optionalFeatures" -}}
{{- $features := list }}
{{- $features = append $features (list "serviceMonitor.enabled" .Values.serviceMonitor.enabled "monitoring.coreos.com/v1") }}
{{- $features = append $features (list "prometheusRule.enabled" .Values.prometheusRule.enabled "monitoring.coreos.com/v1") }}
{{- $features = append $features (list "worker.autoscaling.mode=keda" (eq .Values.worker.autoscaling.mode "keda") "keda.sh/v1alpha1") }}
{{- $features = append $features (list "httpRoute.enabled" .Values.httpRoute.enabled "gateway.networking.k8s.io/v1") }}
{{- $features = append $features (list "externalSecrets" (not (empty (include "agent-service.externalSecrets" . | fromJsonArray))) "external-secrets.io/v1") }}
{{- $features = append $features (list "history.cloudnativepg.enabled" (and .Values.history.enabled .Values.history.cloudnativepg.enabled) "postgresql.cnpg.io/v1") }}
{{- toJson $features }}
{{- end }}

{{/* The list of enabled features whose API is missing, as "feature (api)" strings (JSON). */}}
{{- define "agent-service.missingApis" -}}
{{- $missing := list }}
{{- range (include "agent-service.optionalFeatures" . | fromJsonArray) }}
{{- if and (index . 1) (not (include "agent-service.hasApi" (list (index . 2) $))) }}
{{- $missing = append $missing (printf "%s (needs %s)" (index . 0) (index . 2)) }}
{{- end }}
{{- end }}
{{- toJson $missing }}
{{- end }}

{{/* Worker autoscaler objects actually rendered: "keda", "hpa" or "". */}}
{{- define "agent-service.worker.autoscaler" -}}
{{- $mode := .Values.worker.autoscaling.mode }}
{{- if and (eq $mode "keda") (include "agent-service.hasApi" (list "keda.sh/v1alpha1" .)) }}keda
{{- else if eq $mode "hpa" }}hpa
{{- end }}
{{- end }}

{{/* The worker's probe files (AGENT_WORKER_HEARTBEAT_FILE, AGENT_WORKER_READY_FILE): an emptyDir. */}}
{{- define "agent-service.worker.probesDir" -}}/run/agent-service{{- end }}

{{/* Service URL of the in-cluster LLM simulator (OpenAI-compatible base URL). */}}
{{- define "agent-service.simulator.url" -}}
{{- printf "http://%s:%d/v1" (include "agent-service.componentName" (dict "root" . "component" "simulator")) (int .Values.llmSimulator.port) }}
{{- end }}

{{/*
The agent config's source. "true" from agent-service.agentConfigMode when an AgentConfig and the
controller provide it; "true" from agent-service.configFile when api and worker read a file
(always in agentconfig mode; in values mode when agentConfig is set, else the built-in config).
*/}}
{{- define "agent-service.agentConfigMode" -}}
{{- if eq .Values.configSource "agentconfig" }}true{{ end }}
{{- end }}

{{- define "agent-service.configFile" -}}
{{- if or (include "agent-service.agentConfigMode" .) .Values.agentConfig }}true{{ end }}
{{- end }}

{{/* The config ConfigMap the pods mount: rendered by the chart (values) or written by the
controller (agentconfig); one name, so switching modes keeps the mount. */}}
{{- define "agent-service.config.configMapName" -}}
{{- include "agent-service.componentName" (dict "root" . "component" "config") }}
{{- end }}

{{/* The label (KEY=VALUE) putting an Agent or MCPServer into the release's config: the value is
the AgentConfig's name. */}}
{{- define "agent-service.config.resourceLabel" -}}
agent-service.dev/config={{ include "agent-service.fullname" . }}
{{- end }}

{{/* Where the Secrets of agentConfigSecrets are mounted (AGENT_CONFIG_SECRETS_DIR/<name>/<key>). */}}
{{- define "agent-service.config.secretsDir" -}}
/var/run/secrets/agent-service
{{- end }}

{{/*
Names of the Secrets a config references with secretKeyRef (anywhere in it), one per line.
Usage: include "agent-service.secretKeyRefNames" .Values.agentConfig | splitList "\n" | compact
*/}}
{{- define "agent-service.secretKeyRefNames" -}}
{{- if kindIs "map" . }}
{{- range $key, $value := . }}
{{- if and (eq $key "secretKeyRef") (kindIs "map" $value) }}
{{- printf "%v\n" ($value.name | default "") }}
{{- else }}
{{- include "agent-service.secretKeyRefNames" $value }}
{{- end }}
{{- end }}
{{- else if kindIs "slice" . }}
{{- range . }}
{{- include "agent-service.secretKeyRefNames" . }}
{{- end }}
{{- end }}
{{- end }}

{{/* The run timeout of the agent config (seconds; the service's default when unset). */}}
{{- define "agent-service.runTimeoutSeconds" -}}
{{- $limits := (.Values.agentConfig | default dict).limits | default dict }}
{{- $limits.runTimeoutSeconds | default 120 }}
{{- end }}

{{/*
The API's drain, derived from the run timeout: the server waits for requests in flight (a sync
run or a stream lasts up to the run timeout) for runTimeout + api.drainMarginSeconds
(AGENT_API_GRACEFUL_TIMEOUT_SECONDS); the kubelet waits the preStop sleep, that, and 5 s for the
process to exit before SIGKILL. Whole seconds, rounded up.
*/}}
{{- define "agent-service.api.gracefulTimeoutSeconds" -}}
{{- add (include "agent-service.runTimeoutSeconds" . | float64 | ceil | int) (int .Values.api.drainMarginSeconds) }}
{{- end }}

{{- define "agent-service.api.terminationGracePeriodSeconds" -}}
{{- add (int .Values.api.preStopSleepSeconds) (include "agent-service.api.gracefulTimeoutSeconds" . | int) 5 }}
{{- end }}

{{/*
Bytes of a Kubernetes memory quantity: "512Mi", "1Gi", "500M", "1.5Gi", "536870912".
Usage: include "agent-service.quantityBytes" "512Mi" | int64
*/}}
{{- define "agent-service.quantityBytes" -}}
{{- $q := toString . | trim }}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $q }}
{{- $suffix := trimPrefix $number $q }}
{{- $factors := dict "" 1.0 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 }}
{{- if or (not $number) (not (hasKey $factors $suffix)) }}
{{- fail (printf "%q is not a memory quantity the chart reads (e.g. 512Mi, 1Gi, 500M)" $q) }}
{{- end }}
{{- mulf (float64 $number) (get $factors $suffix) | floor | int64 }}
{{- end }}

{{/* Name of the LLM credentials Secret ("" when there is none). */}}
{{- define "agent-service.llm.secretName" -}}
{{- if .Values.llm.existingSecret }}
{{- .Values.llm.existingSecret }}
{{- else if .Values.llm.apiKeys }}
{{- printf "%s-llm" (include "agent-service.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The default topology spread constraint of a component plus the component's own.
Usage: include "agent-service.topologySpread" (dict "root" $ "component" "api" "extra" list)
*/}}
{{- define "agent-service.topologySpread" -}}
{{- $spread := .root.Values.topologySpread }}
{{- $constraints := list }}
{{- if $spread.enabled }}
{{- $selector := include "agent-service.selectorLabels" (dict "root" .root "component" .component) | fromYaml }}
{{- $constraints = append $constraints (dict "maxSkew" $spread.maxSkew "topologyKey" $spread.topologyKey "whenUnsatisfiable" $spread.whenUnsatisfiable "labelSelector" (dict "matchLabels" $selector) "matchLabelKeys" (list "pod-template-hash")) }}
{{- end }}
{{- $constraints = concat $constraints (.extra | default list) }}
{{- with $constraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Pod-level fields shared by every pod of the chart: no API token (only the controller talks
to the Kubernetes API, with its own ServiceAccount), plus agent-service.podBase. */}}
{{- define "agent-service.podCommon" -}}
serviceAccountName: {{ include "agent-service.serviceAccountName" . }}
automountServiceAccountToken: false
{{ include "agent-service.podBase" . }}
{{- end }}

{{/* Service links, pull secrets and the pod security context of every pod. */}}
{{- define "agent-service.podBase" -}}
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* nodeSelector, tolerations, affinity and priorityClassName of a component's values (.values). */}}
{{- define "agent-service.scheduling" -}}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* A PodDisruptionBudget spec body: minAvailable if set, else maxUnavailable (default 1). */}}
{{- define "agent-service.pdbBudget" -}}
{{- if ne (toString .minAvailable) "" }}
minAvailable: {{ .minAvailable }}
{{- else }}
maxUnavailable: {{ ternary 1 .maxUnavailable (eq (toString .maxUnavailable) "") }}
{{- end }}
{{- end }}
