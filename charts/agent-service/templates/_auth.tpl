{{/*
Credentials the pods read from files: the client keys file (api), the /metrics token (api,
worker, controller), the webhook signing secret (api, worker) and the helm test key (the test
pod). Each is a Secret volume of its own, mounted read-only as a directory with `items` (never
subPath, which would freeze the file: the keys file is re-read when its Secret changes).
*/}}

{{/* Mount directories; each holds one file (keys.yaml, token, secret, key). */}}
{{- define "agent-service.clientAuth.dir" -}}/var/run/secrets/agent-service-auth{{- end }}
{{- define "agent-service.metricsAuth.dir" -}}/var/run/secrets/agent-service-metrics{{- end }}
{{- define "agent-service.webhooks.dir" -}}/var/run/secrets/agent-service-webhooks{{- end }}
{{- define "agent-service.tests.keyDir" -}}/var/run/secrets/agent-service-test{{- end }}

{{/* The Secret of the keys file and its key: the user's, else the chart's `<fullname>-client-keys`. */}}
{{- define "agent-service.clientAuth.secretName" -}}
{{- .Values.clientAuth.existingSecret | default (include "agent-service.componentName" (dict "root" . "component" "client-keys")) }}
{{- end }}

{{- define "agent-service.clientAuth.secretKey" -}}
{{- if .Values.clientAuth.existingSecret }}{{ .Values.clientAuth.existingSecretKey }}{{ else }}keys.yaml{{ end }}
{{- end }}

{{/* The /metrics token Secret and its key: the user's, else the chart's `<fullname>-metrics-token`. */}}
{{- define "agent-service.metricsAuth.secretName" -}}
{{- .Values.metrics.auth.existingSecret | default (include "agent-service.componentName" (dict "root" . "component" "metrics-token")) }}
{{- end }}

{{- define "agent-service.metricsAuth.secretKey" -}}
{{- if .Values.metrics.auth.existingSecret }}{{ .Values.metrics.auth.existingSecretKey }}{{ else }}token{{ end }}
{{- end }}

{{/* "true" when the chart generates the helm test pod's key (tenant helm-test). */}}
{{- define "agent-service.tests.keyInChart" -}}
{{- if and .Values.tests.enabled .Values.clientAuth.enabled (not .Values.tests.apiKeySecret) }}true{{ end }}
{{- end }}

{{/*
Where the chart puts the hash of its test key, so that the API accepts it: "keysFile" (the
chart-made keys file), "agentConfig" (apiKeys of the agent config the chart renders, when the
keys file is the user's), or "" (the chart renders neither: validate.yaml asks for
tests.apiKeySecret).
*/}}
{{- define "agent-service.tests.keyTarget" -}}
{{- if include "agent-service.tests.keyInChart" . }}
{{- if not .Values.clientAuth.existingSecret }}keysFile
{{- else if include "agent-service.agentConfigMode" . }}
{{- if .Values.agentConfigResource.create }}agentConfig{{ end }}
{{- else if .Values.agentConfig }}agentConfig
{{- end }}
{{- end }}
{{- end }}

{{- define "agent-service.tests.keySecretName" -}}
{{- .Values.tests.apiKeySecret | default (include "agent-service.componentName" (dict "root" . "component" "test-key")) }}
{{- end }}

{{- define "agent-service.tests.keySecretKey" -}}
{{- if .Values.tests.apiKeySecret }}{{ .Values.tests.apiKeySecretKey }}{{ else }}key{{ end }}
{{- end }}

{{/*
A generated secret value, kept across upgrades: .key of the cluster's Secret .secret (lookup),
else .prefix + randAlphaNum .length (a first install, or an offline render). Memoized per render
(under .id in the render's values), because several templates need the same value in one render
(the test key: its Secret and its hash in the keys; the /metrics token: its Secret and the pods'
checksum) and each randAlphaNum call draws another.
*/}}
{{- define "agent-service.generatedSecret" -}}
{{- $values := .root.Values }}
{{- if not (hasKey $values "__agentServiceGenerated") }}
{{- $_ := set $values "__agentServiceGenerated" dict }}
{{- end }}
{{- $memo := index $values "__agentServiceGenerated" }}
{{- if not (hasKey $memo .id) }}
{{- $existing := lookup "v1" "Secret" (include "agent-service.namespace" .root) .secret }}
{{- $value := "" }}
{{- if and $existing (index ($existing.data | default dict) .key) }}
{{- $value = index $existing.data .key | b64dec }}
{{- else }}
{{- $value = printf "%s%s" (.prefix | default "") (randAlphaNum (int .length)) }}
{{- end }}
{{- $_ := set $memo .id $value }}
{{- end }}
{{- index $memo .id }}
{{- end }}

{{/* The chart's test key (tenant helm-test), in `<fullname>-test-key`. */}}
{{- define "agent-service.tests.apiKey" -}}
{{- include "agent-service.generatedSecret" (dict "root" . "id" "testKey" "secret" (include "agent-service.tests.keySecretName" .) "key" "key" "length" 43 "prefix" "ak_") }}
{{- end }}

{{/* The chart's /metrics token, in `<fullname>-metrics-token`. */}}
{{- define "agent-service.metricsAuth.token" -}}
{{- include "agent-service.generatedSecret" (dict "root" . "id" "metricsToken" "secret" (include "agent-service.metricsAuth.secretName" .) "key" "token" "length" 48) }}
{{- end }}

{{/* The keys-file / apiKeys entry of the test key (YAML of one map: hash only). */}}
{{- define "agent-service.tests.keyEntry" -}}
{{- toYaml (dict "tenant" "helm-test" "sha256" (include "agent-service.tests.apiKey" . | sha256sum) "name" "helm-test") }}
{{- end }}

{{/*
The agent config as rendered into the ConfigMap (configSource=values) or the AgentConfig's spec:
agentConfig, plus the test key's hash in apiKeys when the keys file is the user's.
*/}}
{{- define "agent-service.agentConfig.rendered" -}}
{{- $config := deepCopy .Values.agentConfig }}
{{- if eq (include "agent-service.tests.keyTarget" .) "agentConfig" }}
{{- $field := ternary "api_keys" "apiKeys" (hasKey $config "api_keys") }}
{{- $keys := concat (get $config $field | default list) (list (include "agent-service.tests.keyEntry" . | fromYaml)) }}
{{- $_ := set $config $field $keys }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* Environment of the /metrics token (api, worker, controller). */}}
{{- define "agent-service.metricsAuth.env" -}}
{{- if .Values.metrics.auth.enabled }}
- name: AGENT_AUTH_METRICS_TOKEN_FILE
  value: {{ printf "%s/token" (include "agent-service.metricsAuth.dir" .) | quote }}
{{- end }}
{{- end }}

{{- define "agent-service.metricsAuth.volume" -}}
{{- if .Values.metrics.auth.enabled }}
- name: metrics-token
  secret:
    secretName: {{ include "agent-service.metricsAuth.secretName" . }}
    items:
      - key: {{ include "agent-service.metricsAuth.secretKey" . }}
        path: token
    defaultMode: 288 # 0440: the pod's user and fsGroup only
{{- end }}
{{- end }}

{{- define "agent-service.metricsAuth.volumeMount" -}}
{{- if .Values.metrics.auth.enabled }}
- name: metrics-token
  mountPath: {{ include "agent-service.metricsAuth.dir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
Environment of the webhook settings (api and worker: the api checks a webhook_url and that the
tenant has a signing secret when the task is submitted, the worker delivers).
*/}}
{{- define "agent-service.webhooks.env" -}}
{{- $wh := .Values.webhooks }}
{{- if $wh.enabled }}
- name: AGENT_WEBHOOKS_ALLOW_HTTP
  value: {{ $wh.allowHttp | quote }}
- name: AGENT_WEBHOOKS_ALLOWED_HOSTS
  value: {{ join "," $wh.allowedHosts | quote }}
- name: AGENT_WEBHOOKS_ALLOW_PRIVATE_NETWORKS
  value: {{ $wh.allowPrivateNetworks | quote }}
- name: AGENT_WEBHOOKS_MAX_ATTEMPTS
  value: {{ $wh.maxAttempts | quote }}
- name: AGENT_WEBHOOKS_TIMEOUT_SECONDS
  value: {{ $wh.timeoutSeconds | quote }}
- name: AGENT_WEBHOOKS_LEASE_SECONDS
  value: {{ $wh.leaseSeconds | quote }}
{{- if $wh.existingSecret }}
- name: AGENT_WEBHOOKS_SECRET_FILE
  value: {{ printf "%s/secret" (include "agent-service.webhooks.dir" .) | quote }}
{{- end }}
{{- end }}
{{- end }}

{{- define "agent-service.webhooks.volume" -}}
{{- if and .Values.webhooks.enabled .Values.webhooks.existingSecret }}
- name: webhook-secret
  secret:
    secretName: {{ .Values.webhooks.existingSecret }}
    items:
      - key: {{ .Values.webhooks.existingSecretKey }}
        path: secret
    defaultMode: 288 # 0440: the pod's user and fsGroup only
{{- end }}
{{- end }}

{{- define "agent-service.webhooks.volumeMount" -}}
{{- if and .Values.webhooks.enabled .Values.webhooks.existingSecret }}
- name: webhook-secret
  mountPath: {{ include "agent-service.webhooks.dir" . }}
  readOnly: true
{{- end }}
{{- end }}
