{{/*
Credentials the pods read from files: the client keys (api), the /metrics token (api, worker,
controller), the webhook signing secret (api, worker) and the helm test key (the test pod). Each
is a Secret volume of its own, mounted read-only as a directory with `items` (never subPath,
which would freeze the file: the keys file is re-read when its Secret changes). Secrets the
chart generates are made by the hook Job (templates/secrets/), never at render time.
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

{{- define "agent-service.tests.keySecretName" -}}
{{- .Values.tests.apiKeySecret | default (include "agent-service.componentName" (dict "root" . "component" "test-key")) }}
{{- end }}

{{- define "agent-service.tests.keySecretKey" -}}
{{- if .Values.tests.apiKeySecret }}{{ .Values.tests.apiKeySecretKey }}{{ else }}key{{ end }}
{{- end }}

{{/*
The agent config as rendered into the ConfigMap (configSource=values) or the AgentConfig's spec.
*/}}
{{- define "agent-service.agentConfig.rendered" -}}
{{- toYaml .Values.agentConfig }}
{{- end }}

{{/*
The api's keys directory (AGENT_AUTH_KEYS_FILE names it): one projected volume holding the keys
file (keys.yaml: clientAuth.existingSecret's, or the chart's `<fullname>-client-keys`) and the
helm test key's entry (helm-test.yaml, by hash, from `<fullname>-test-key`). The api re-reads
both when a Secret changes; no restart.
*/}}
{{- define "agent-service.clientAuth.volume" -}}
- name: client-keys
  projected:
    defaultMode: 288 # 0440: the pod's user and fsGroup only
    sources:
      - secret:
          name: {{ include "agent-service.clientAuth.secretName" . }}
          items:
            - key: {{ include "agent-service.clientAuth.secretKey" . }}
              path: keys.yaml
      {{- if include "agent-service.tests.keyInChart" . }}
      - secret:
          name: {{ include "agent-service.tests.keySecretName" . }}
          items:
            - key: keys.yaml
              path: helm-test.yaml
      {{- end }}
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
