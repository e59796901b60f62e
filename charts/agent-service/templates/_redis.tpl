{{/*
Where Redis is: the release's own StatefulSet (redis.enabled) or externalRedis.url.
AGENT_REDIS_URL is composed from these parts; the password comes from a Secret through the
AGENT_REDIS_PASSWORD variable (Kubernetes expands $(AGENT_REDIS_PASSWORD) in later variables).
*/}}

{{/* Parsed externalRedis.url (sprig urlParse): scheme, host (host:port), path, userinfo. */}}
{{- define "agent-service.redis.external" -}}
{{- $url := .Values.externalRedis.url }}
{{- if not $url }}
{{- fail "redis.enabled=false needs externalRedis.url" }}
{{- end }}
{{- if not (regexMatch "^rediss?://[^/]+" $url) }}
{{- fail (printf "externalRedis.url must look like redis://host:6379/0 or rediss://...; got %q" $url) }}
{{- end }}
{{- $u := urlParse $url }}
{{- if contains ":" ($u.userinfo | default "") }}
{{- fail "externalRedis.url must not contain a password: use externalRedis.existingSecret (or externalRedis.password)" }}
{{- end }}
{{- toJson $u }}
{{- end }}

{{/* host:port of Redis as seen from this namespace. */}}
{{- define "agent-service.redis.hostPort" -}}
{{- if .Values.redis.enabled }}
{{- printf "%s:6379" (include "agent-service.componentName" (dict "root" . "component" "redis")) }}
{{- else }}
{{- $host := (include "agent-service.redis.external" . | fromJson).host }}
{{- if regexMatch ":[0-9]+$" $host }}{{ $host }}{{ else }}{{ printf "%s:6379" $host }}{{ end }}
{{- end }}
{{- end }}

{{/* host:port of Redis as seen from any namespace (the KEDA operator reads it). */}}
{{- define "agent-service.redis.address" -}}
{{- if .Values.redis.enabled }}
{{- printf "%s.%s.svc.%s:6379" (include "agent-service.componentName" (dict "root" . "component" "redis")) (include "agent-service.namespace" .) .Values.clusterDomain }}
{{- else }}
{{- include "agent-service.redis.hostPort" . }}
{{- end }}
{{- end }}

{{- define "agent-service.redis.host" -}}
{{- include "agent-service.redis.address" . | regexFind "^[^:]+" }}
{{- end }}

{{- define "agent-service.redis.port" -}}
{{- include "agent-service.redis.address" . | regexFind "[0-9]+$" }}
{{- end }}

{{/* The database index (the path of the URL). */}}
{{- define "agent-service.redis.database" -}}
{{- if .Values.redis.enabled }}0
{{- else }}
{{- $path := (include "agent-service.redis.external" . | fromJson).path | default "/0" | trimPrefix "/" }}
{{- $path | default "0" }}
{{- end }}
{{- end }}

{{/* "true" for TLS (rediss://). */}}
{{- define "agent-service.redis.tls" -}}
{{- if and (not .Values.redis.enabled) (hasPrefix "rediss://" .Values.externalRedis.url) }}true{{ end }}
{{- end }}

{{/* The ACL user name of an external Redis ("" for the default user). */}}
{{- define "agent-service.redis.username" -}}
{{- if not .Values.redis.enabled }}
{{- (include "agent-service.redis.external" . | fromJson).userinfo | default "" }}
{{- end }}
{{- end }}

{{/* "true" when Redis requires a password. */}}
{{- define "agent-service.redis.hasPassword" -}}
{{- if .Values.redis.enabled }}
{{- if .Values.redis.auth.enabled }}true{{ end }}
{{- else if or .Values.externalRedis.existingSecret .Values.externalRedis.password }}true
{{- end }}
{{- end }}

{{/* The Secret holding the Redis password. */}}
{{- define "agent-service.redis.secretName" -}}
{{- if .Values.redis.enabled }}
{{- .Values.redis.auth.existingSecret | default (include "agent-service.componentName" (dict "root" . "component" "redis")) }}
{{- else }}
{{- .Values.externalRedis.existingSecret | default (include "agent-service.componentName" (dict "root" . "component" "external-redis")) }}
{{- end }}
{{- end }}

{{/* The key of the password in that Secret. */}}
{{- define "agent-service.redis.secretKey" -}}
{{- if .Values.redis.enabled }}
{{- .Values.redis.auth.existingSecretPasswordKey }}
{{- else }}
{{- .Values.externalRedis.existingSecretPasswordKey }}
{{- end }}
{{- end }}

{{/* Environment variables that give a container its Redis: password (if any), URL, address. */}}
{{- define "agent-service.redis.env" -}}
{{- $scheme := ternary "rediss" "redis" (eq (include "agent-service.redis.tls" .) "true") }}
{{- $user := include "agent-service.redis.username" . }}
{{- $auth := "" }}
{{- if include "agent-service.redis.hasPassword" . }}
- name: AGENT_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "agent-service.redis.secretName" . }}
      key: {{ include "agent-service.redis.secretKey" . }}
{{- $auth = printf "%s:$(AGENT_REDIS_PASSWORD)@" $user }}
{{- else if $user }}
{{- $auth = printf "%s@" $user }}
{{- end }}
- name: AGENT_REDIS_URL
  value: {{ printf "%s://%s%s/%s" $scheme $auth (include "agent-service.redis.hostPort" .) (include "agent-service.redis.database" .) | quote }}
- name: AGENT_REDIS_ADDRESS
  value: {{ include "agent-service.redis.address" . | quote }}
{{- with $user }}
- name: AGENT_REDIS_USERNAME
  value: {{ . | quote }}
{{- end }}
{{- end }}
