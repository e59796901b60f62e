{{/*
The run history's Postgres (history.*; docs/history.md): an external server (history.external:
a URL, or a host, with the password in a Secret; or the whole URL in a Secret), or a
CloudNativePG Cluster the release creates (history.cloudnativepg, when the operator's API is
served). The pods get AGENT_HISTORY_URL without a password and the password as a file
(AGENT_HISTORY_PASSWORD_FILE), like Redis, so that a password may hold any character.
*/}}

{{/* "external", "cloudnativepg", or "" (history off, or its Cluster cannot be created here:
NOTES.txt warns, strictCapabilities fails). */}}
{{- define "agent-service.history.mode" -}}
{{- $h := .Values.history }}
{{- if $h.enabled }}
{{- if $h.cloudnativepg.enabled }}
{{- if include "agent-service.hasApi" (list "postgresql.cnpg.io/v1" .) }}cloudnativepg{{ end }}
{{- else if or $h.external.url $h.external.host $h.external.existingSecretUrlKey }}external
{{- else }}
{{- fail "history.enabled needs a Postgres: history.external.url (or .host, or .existingSecretUrlKey with .existingSecret), or history.cloudnativepg.enabled" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of the CloudNativePG Cluster (its Services are <name>-rw, -ro, -r; its app
credentials the Secret <name>-app, made by the operator). */}}
{{- define "agent-service.history.clusterName" -}}
{{- include "agent-service.componentName" (dict "root" . "component" "history") }}
{{- end }}

{{/* Parsed history.external.url (scheme, host, path, userinfo, query); fails on a password. */}}
{{- define "agent-service.history.externalUrl" -}}
{{- $u := urlParse .Values.history.external.url }}
{{- if contains ":" ($u.userinfo | default "") }}
{{- fail "history.external.url must not contain a password: put it in history.external.existingSecret (or the whole URL, with existingSecretUrlKey)" }}
{{- end }}
{{- toJson $u }}
{{- end }}

{{/* The URL the pods get (no password), or "" when the whole URL comes from a Secret. */}}
{{- define "agent-service.history.url" -}}
{{- $mode := include "agent-service.history.mode" . }}
{{- $h := .Values.history }}
{{- if eq $mode "cloudnativepg" }}
{{- printf "postgresql://%s@%s-rw:5432/%s" $h.cloudnativepg.owner (include "agent-service.history.clusterName" .) $h.cloudnativepg.database }}
{{- else if and (eq $mode "external") (not $h.external.existingSecretUrlKey) }}
{{- if $h.external.url }}
{{- $_ := include "agent-service.history.externalUrl" . }}
{{- $h.external.url }}
{{- else }}
{{- printf "postgresql://%s@%s:%d/%s" $h.external.user $h.external.host (int $h.external.port) $h.external.database }}
{{- end }}
{{- end }}
{{- end }}

{{/* host and port of the Postgres the pods reach, as JSON {"host", "port"}. */}}
{{- define "agent-service.history.endpoint" -}}
{{- $h := .Values.history }}
{{- if eq (include "agent-service.history.mode" .) "cloudnativepg" }}
{{- toJson (dict "host" (printf "%s-rw" (include "agent-service.history.clusterName" .)) "port" 5432) }}
{{- else if and $h.external.url (not $h.external.existingSecretUrlKey) }}
{{- $host := (include "agent-service.history.externalUrl" . | fromJson).host }}
{{- $port := regexFind ":[0-9]+$" $host | trimPrefix ":" | default "5432" }}
{{- toJson (dict "host" (regexReplaceAll ":[0-9]+$" $host "") "port" (int $port)) }}
{{- else }}
{{- toJson (dict "host" $h.external.host "port" (int $h.external.port)) }}
{{- end }}
{{- end }}

{{/* The database name (for the exporter). */}}
{{- define "agent-service.history.database" -}}
{{- $h := .Values.history }}
{{- if eq (include "agent-service.history.mode" .) "cloudnativepg" }}{{ $h.cloudnativepg.database }}
{{- else if and $h.external.url (not $h.external.existingSecretUrlKey) }}
{{- (include "agent-service.history.externalUrl" . | fromJson).path | trimPrefix "/" }}
{{- else }}{{ $h.external.database }}
{{- end }}
{{- end }}

{{/* The user name (for the exporter). */}}
{{- define "agent-service.history.user" -}}
{{- $h := .Values.history }}
{{- if eq (include "agent-service.history.mode" .) "cloudnativepg" }}{{ $h.cloudnativepg.owner }}
{{- else if and $h.external.url (not $h.external.existingSecretUrlKey) }}
{{- (include "agent-service.history.externalUrl" . | fromJson).userinfo }}
{{- else }}{{ $h.external.user }}
{{- end }}
{{- end }}

{{/* The Secret and key of the password as JSON {"name", "key"}, or "" (none, or in the URL). */}}
{{- define "agent-service.history.passwordSecret" -}}
{{- $mode := include "agent-service.history.mode" . }}
{{- $ext := .Values.history.external }}
{{- if eq $mode "cloudnativepg" }}
{{- toJson (dict "name" (printf "%s-app" (include "agent-service.history.clusterName" .)) "key" "password") }}
{{- else if and (eq $mode "external") $ext.existingSecret (not $ext.existingSecretUrlKey) }}
{{- toJson (dict "name" $ext.existingSecret "key" $ext.existingSecretPasswordKey) }}
{{- end }}
{{- end }}

{{- define "agent-service.history.credentialsDir" -}}/var/run/secrets/agent-service-history{{- end }}

{{/* AGENT_HISTORY_* of api and worker pods and of the migration Job (nothing when off). */}}
{{- define "agent-service.history.env" -}}
{{- $mode := include "agent-service.history.mode" . }}
{{- if $mode }}
{{- $h := .Values.history }}
{{- if and (eq $mode "external") $h.external.existingSecretUrlKey }}
- name: AGENT_HISTORY_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "history.external.existingSecretUrlKey needs history.external.existingSecret" $h.external.existingSecret }}
      key: {{ $h.external.existingSecretUrlKey }}
{{- else }}
- name: AGENT_HISTORY_URL
  value: {{ include "agent-service.history.url" . | quote }}
{{- end }}
{{- if include "agent-service.history.passwordSecret" . }}
- name: AGENT_HISTORY_PASSWORD_FILE
  value: {{ printf "%s/password" (include "agent-service.history.credentialsDir" .) | quote }}
{{- end }}
- name: AGENT_HISTORY_MIGRATE_AT_START
  value: {{ (not $h.migration.enabled) | quote }}
- name: AGENT_HISTORY_RETENTION_DAYS
  value: {{ $h.retentionDays | quote }}
- name: AGENT_HISTORY_ARCHIVED_RECORD_TTL_SECONDS
  value: {{ $h.archivedRecordTtlSeconds | quote }}
- name: AGENT_HISTORY_POOL_SIZE
  value: {{ $h.poolSize | quote }}
{{- end }}
{{- end }}

{{- define "agent-service.history.volumes" -}}
{{- with include "agent-service.history.passwordSecret" . }}
{{- $secret := fromJson . }}
- name: history-credentials
  secret:
    secretName: {{ $secret.name }}
    defaultMode: 288 # 0440: the pod's user and fsGroup only
    items:
      - key: {{ $secret.key }}
        path: password
{{- end }}
{{- end }}

{{- define "agent-service.history.volumeMounts" -}}
{{- if include "agent-service.history.passwordSecret" . }}
- name: history-credentials
  mountPath: {{ include "agent-service.history.credentialsDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* Egress of api, worker, the migration Job and the exporter to the history's Postgres. */}}
{{- define "agent-service.np.historyEgress" -}}
{{- $mode := include "agent-service.history.mode" . }}
{{- if eq $mode "cloudnativepg" }}
# The history's CloudNativePG Cluster.
- to:
    - podSelector:
        matchLabels:
          cnpg.io/cluster: {{ include "agent-service.history.clusterName" . }}
  ports:
    - port: 5432
      protocol: TCP
{{- else if eq $mode "external" }}
# The history's external Postgres.
- ports:
    - port: {{ (include "agent-service.history.endpoint" . | fromJson).port }}
      protocol: TCP
  {{- with .Values.networkPolicy.externalPostgresCidrs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
{{- end }}
{{- end }}

{{/* metadata labels and hook annotations of the migration hook's objects (.root, .hook,
.weight); deleted once the Job succeeded, kept for its logs when it failed. */}}
{{- define "agent-service.history.migrationMeta" }}
  labels:
    {{- include "agent-service.labels" (dict "root" .root "component" "history-migrate") | nindent 4 }}
  annotations:
    helm.sh/hook: {{ .hook }}
    helm.sh/hook-weight: {{ .weight | quote }}
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
    {{- with .root.Values.commonAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
