{{/*
Where each secret of the chart comes from, decided once here: a Secret of yours (existingSecret),
a value in values.yaml rendered into a Secret, an ExternalSecret (externalSecrets.*), or the hook
Job that generates it once (templates/secrets/: `agent-service ensure-secret`). Nothing is
generated at render time, so two renders of the same values are byte-identical.
*/}}

{{/* A remote key of externalSecrets (.name: redisPassword, ...) is set. */}}
{{- define "agent-service.externalSecrets.has" -}}
{{- if (get .root.Values.externalSecrets .name).key }}true{{ end }}
{{- end }}

{{/*
The ExternalSecrets to render, as a JSON list of {name, key, remote: {key, property}, entry}:
`name` the Secret the pods read, `key` its key, `entry` (the test key) also writes the key's
keys-file entry, by hash, for the api.
*/}}
{{- define "agent-service.externalSecrets" -}}
{{- $eso := .Values.externalSecrets }}
{{- $list := list }}
{{- if and (include "agent-service.externalSecrets.has" (dict "root" . "name" "redisPassword")) (include "agent-service.redis.hasPassword" .) }}
{{- $list = append $list (dict "name" (include "agent-service.redis.secretName" .) "key" (include "agent-service.redis.secretKey" .) "remote" $eso.redisPassword) }}
{{- end }}
{{- if and (include "agent-service.externalSecrets.has" (dict "root" . "name" "sentinelPassword")) (include "agent-service.redis.sentinel" .) }}
{{- $list = append $list (dict "name" (include "agent-service.redis.sentinelSecretName" .) "key" .Values.externalRedis.sentinel.existingSecretPasswordKey "remote" $eso.sentinelPassword) }}
{{- end }}
{{- if and (include "agent-service.externalSecrets.has" (dict "root" . "name" "metricsToken")) .Values.metrics.auth.enabled }}
{{- $list = append $list (dict "name" (include "agent-service.metricsAuth.secretName" .) "key" (include "agent-service.metricsAuth.secretKey" .) "remote" $eso.metricsToken) }}
{{- end }}
{{- if and (include "agent-service.externalSecrets.has" (dict "root" . "name" "testKey")) (include "agent-service.tests.keyInChart" .) }}
{{- $list = append $list (dict "name" (include "agent-service.tests.keySecretName" .) "key" "key" "remote" $eso.testKey "entry" true) }}
{{- end }}
{{- toJson $list }}
{{- end }}

{{/*
What the hook Job generates: `NAME/KEY=KIND` specs (JSON list), for each generated secret that no
existingSecret, values.yaml password or ExternalSecret provides.
*/}}
{{- define "agent-service.generatedSecrets" -}}
{{- $specs := list }}
{{- $redis := .Values.redis }}
{{- if and $redis.enabled $redis.auth.enabled (not $redis.auth.password) (not $redis.auth.existingSecret) (not (include "agent-service.externalSecrets.has" (dict "root" . "name" "redisPassword"))) }}
{{- $specs = append $specs (printf "%s/%s=password" (include "agent-service.redis.secretName" .) (include "agent-service.redis.secretKey" .)) }}
{{- end }}
{{- $metrics := .Values.metrics.auth }}
{{- if and $metrics.enabled (not $metrics.existingSecret) (not (include "agent-service.externalSecrets.has" (dict "root" . "name" "metricsToken"))) }}
{{- $specs = append $specs (printf "%s/token=token" (include "agent-service.metricsAuth.secretName" .)) }}
{{- end }}
{{- if and (include "agent-service.tests.keyInChart" .) (not (include "agent-service.externalSecrets.has" (dict "root" . "name" "testKey"))) }}
{{- $specs = append $specs (printf "%s/key=api-key:helm-test" (include "agent-service.tests.keySecretName" .)) }}
{{- end }}
{{- toJson $specs }}
{{- end }}

{{/* The names of the Secrets the hook Job generates (its Role's resourceNames), JSON list. */}}
{{- define "agent-service.generatedSecretNames" -}}
{{- $names := list }}
{{- range include "agent-service.generatedSecrets" . | fromJsonArray }}
{{- $names = append $names (regexFind "^[^/]+" .) }}
{{- end }}
{{- toJson ($names | uniq) }}
{{- end }}

{{/* Labels and annotations of the hook objects: a pre-install/pre-upgrade hook of `weight`,
deleted once it succeeded (and before it is created again). */}}
{{- define "agent-service.secretGenerator.meta" }}
  labels:
    {{- include "agent-service.labels" (dict "root" .root "component" "secret-generator") | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: {{ .weight | quote }}
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
    {{- with .root.Values.commonAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
