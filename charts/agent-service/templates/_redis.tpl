{{/*
Where Redis is: the release's own StatefulSet (redis.enabled) or externalRedis (a URL, or
Sentinel nodes and a master name). The pods get AGENT_REDIS_URL without a password, and the
password, the Sentinels' password and a custom TLS CA as files (one projected volume and one CA
volume), so that a password may hold any character.
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
{{- else if or .Values.externalRedis.existingSecret .Values.externalRedis.password .Values.externalSecrets.redisPassword.key }}true
{{- end }}
{{- end }}

{{/* "true" when the external Redis is found through Sentinel. */}}
{{- define "agent-service.redis.sentinel" -}}
{{- if and (not .Values.redis.enabled) .Values.externalRedis.sentinel.nodes }}true{{ end }}
{{- end }}

{{/* The Secret holding the Sentinels' password ("" when they need none). */}}
{{- define "agent-service.redis.sentinelSecretName" -}}
{{- if include "agent-service.redis.sentinel" . }}
{{- $sentinel := .Values.externalRedis.sentinel }}
{{- if $sentinel.existingSecret }}{{ $sentinel.existingSecret }}
{{- else if .Values.externalSecrets.sentinelPassword.key }}
{{- include "agent-service.componentName" (dict "root" . "component" "redis-sentinel") }}
{{- end }}
{{- end }}
{{- end }}

{{/* The custom TLS CA of the external Redis: {"kind": "secret"|"configMap", "name", "key"}
as JSON, or "" (the system CAs). */}}
{{- define "agent-service.redis.ca" -}}
{{- $tls := .Values.externalRedis.tls }}
{{- if and (not .Values.redis.enabled) (or $tls.caSecret $tls.caConfigMap) }}
{{- toJson (dict "kind" (ternary "secret" "configMap" (ne $tls.caSecret "")) "name" ($tls.caSecret | default $tls.caConfigMap) "key" $tls.caKey) }}
{{- end }}
{{- end }}

{{- define "agent-service.redis.credentialsDir" -}}/var/run/secrets/agent-service-redis{{- end }}
{{- define "agent-service.redis.caDir" -}}/var/run/secrets/agent-service-redis-ca{{- end }}

{{/*
maxmemory of the bundled Redis in bytes: redis.maxmemory, else the lower of maxmemoryPercent of
the memory limit and a third of the volume (the AOF needs up to 3x the data on disk: the base
file, its growth up to the base's size before a rewrite, and the new base the rewrite writes).
*/}}
{{- define "agent-service.redis.maxmemoryBytes" -}}
{{- $redis := .Values.redis }}
{{- if $redis.maxmemory }}
{{- include "agent-service.quantityBytes" $redis.maxmemory }}
{{- else }}
{{- $limit := include "agent-service.quantityBytes" (include "agent-service.redis.memoryLimit" .) | int64 }}
{{- $bytes := div (mul $limit (int64 $redis.maxmemoryPercent)) 100 }}
{{- if $redis.persistence.enabled }}
{{- $bytes = min $bytes (div (include "agent-service.quantityBytes" $redis.persistence.size | int64) 3) }}
{{- end }}
{{- $bytes }}
{{- end }}
{{- end }}

{{/* The bundled Redis' memory limit (maxmemory is derived from it, so it is required). */}}
{{- define "agent-service.redis.memoryLimit" -}}
{{- $limits := .Values.redis.resources.limits | default dict }}
{{- required "redis.resources.limits.memory must be set: maxmemory is derived from it (Redis must refuse writes before the kernel kills it)" $limits.memory }}
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

{{/*
Environment variables that give an api or worker container its Redis: the URL (no password in
it), the password file, Sentinel nodes and master, the TLS CA file, and the address KEDA reads.
*/}}
{{- define "agent-service.redis.env" -}}
{{- $scheme := ternary "rediss" "redis" (eq (include "agent-service.redis.tls" .) "true") }}
{{- $user := include "agent-service.redis.username" . }}
- name: AGENT_REDIS_URL
  value: {{ printf "%s://%s%s/%s" $scheme (ternary (printf "%s@" $user) "" (ne $user "")) (include "agent-service.redis.hostPort" .) (include "agent-service.redis.database" .) | quote }}
{{- if include "agent-service.redis.hasPassword" . }}
- name: AGENT_REDIS_PASSWORD_FILE
  value: {{ printf "%s/password" (include "agent-service.redis.credentialsDir" .) | quote }}
{{- end }}
{{- if include "agent-service.redis.sentinel" . }}
- name: AGENT_REDIS_SENTINELS
  value: {{ join "," .Values.externalRedis.sentinel.nodes | quote }}
- name: AGENT_REDIS_SENTINEL_MASTER
  value: {{ .Values.externalRedis.sentinel.masterName | quote }}
{{- if include "agent-service.redis.sentinelSecretName" . }}
- name: AGENT_REDIS_SENTINEL_PASSWORD_FILE
  value: {{ printf "%s/sentinel-password" (include "agent-service.redis.credentialsDir" .) | quote }}
{{- end }}
{{- else }}
- name: AGENT_REDIS_ADDRESS
  value: {{ include "agent-service.redis.address" . | quote }}
{{- end }}
{{- if include "agent-service.redis.ca" . }}
- name: AGENT_REDIS_TLS_CA_FILE
  value: {{ printf "%s/ca.crt" (include "agent-service.redis.caDir" .) | quote }}
{{- end }}
{{- with $user }}
- name: AGENT_REDIS_USERNAME
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/* The volumes behind those files: the passwords (one projected volume) and the CA. */}}
{{- define "agent-service.redis.volumes" -}}
{{- $sentinelSecret := include "agent-service.redis.sentinelSecretName" . }}
{{- if or (include "agent-service.redis.hasPassword" .) $sentinelSecret }}
- name: redis-credentials
  projected:
    defaultMode: 288 # 0440: the pod's user and fsGroup only
    sources:
      {{- if include "agent-service.redis.hasPassword" . }}
      - secret:
          name: {{ include "agent-service.redis.secretName" . }}
          items:
            - key: {{ include "agent-service.redis.secretKey" . }}
              path: password
      {{- end }}
      {{- with $sentinelSecret }}
      - secret:
          name: {{ . }}
          items:
            - key: {{ $.Values.externalRedis.sentinel.existingSecretPasswordKey }}
              path: sentinel-password
      {{- end }}
{{- end }}
{{- $ca := include "agent-service.redis.ca" . }}
{{- if $ca }}
{{- $ca = fromJson $ca }}
- name: redis-ca
  {{ $ca.kind }}:
    {{ ternary "secretName" "name" (eq $ca.kind "secret") }}: {{ $ca.name }}
    items:
      - key: {{ $ca.key }}
        path: ca.crt
{{- end }}
{{- end }}

{{- define "agent-service.redis.volumeMounts" -}}
{{- if or (include "agent-service.redis.hasPassword" .) (include "agent-service.redis.sentinelSecretName" .) }}
- name: redis-credentials
  mountPath: {{ include "agent-service.redis.credentialsDir" . }}
  readOnly: true
{{- end }}
{{- if include "agent-service.redis.ca" . }}
- name: redis-ca
  mountPath: {{ include "agent-service.redis.caDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* "true" when KEDA's trigger needs a TriggerAuthentication: a password or a custom CA. */}}
{{- define "agent-service.keda.needsAuth" -}}
{{- if or (include "agent-service.redis.hasPassword" .) (include "agent-service.redis.sentinelSecretName" .) (include "agent-service.redis.ca" .) }}true{{ end }}
{{- end }}
