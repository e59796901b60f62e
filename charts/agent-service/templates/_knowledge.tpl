{{/*
The knowledge bases' vector store (docs/knowledge.md): the bundled Chroma server
(knowledge.chroma.enabled) or an external one (knowledge.externalUrl), with an optional token
from a Secret mounted as a file (AGENT_KNOWLEDGE_CHROMA_TOKEN_FILE). Neither: no store, and the
config's knowledge bases answer 503 until one is set.
*/}}

{{- define "agent-service.knowledge.url" -}}
{{- $k := .Values.knowledge }}
{{- if $k.chroma.enabled }}
{{- printf "http://%s.%s.svc:%d" (include "agent-service.componentName" (dict "root" . "component" "chroma")) (include "agent-service.namespace" .) (int $k.chroma.port) }}
{{- else }}
{{- $k.externalUrl }}
{{- end }}
{{- end }}

{{- define "agent-service.knowledge.tokenDir" -}}/var/run/secrets/agent-service-chroma{{- end }}

{{/* Environment of api and worker. */}}
{{- define "agent-service.knowledge.env" -}}
{{- $k := .Values.knowledge }}
{{- with include "agent-service.knowledge.url" . }}
- name: AGENT_KNOWLEDGE_CHROMA_URL
  value: {{ . | quote }}
{{- end }}
{{- if $k.token.existingSecret }}
- name: AGENT_KNOWLEDGE_CHROMA_TOKEN_FILE
  value: {{ printf "%s/%s" (include "agent-service.knowledge.tokenDir" .) $k.token.key | quote }}
- name: AGENT_KNOWLEDGE_CHROMA_TOKEN_HEADER
  value: {{ $k.token.header | quote }}
{{- end }}
{{- if ne $k.collectionPrefix "kb-" }}
- name: AGENT_KNOWLEDGE_COLLECTION_PREFIX
  value: {{ $k.collectionPrefix | quote }}
{{- end }}
- name: AGENT_KNOWLEDGE_TIMEOUT_SECONDS
  value: {{ $k.timeoutSeconds | quote }}
- name: AGENT_KNOWLEDGE_MAX_DOCUMENT_BYTES
  value: {{ $k.maxDocumentBytes | int64 | quote }}
{{- end }}

{{- define "agent-service.knowledge.volumes" -}}
{{- with .Values.knowledge.token.existingSecret }}
- name: chroma-token
  secret:
    secretName: {{ . }}
    defaultMode: 288 # 0440
{{- end }}
{{- end }}

{{- define "agent-service.knowledge.volumeMounts" -}}
{{- if .Values.knowledge.token.existingSecret }}
- name: chroma-token
  mountPath: {{ include "agent-service.knowledge.tokenDir" . }}
  readOnly: true
{{- end }}
{{- end }}
