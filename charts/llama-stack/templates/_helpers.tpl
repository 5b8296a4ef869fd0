{{- define "llama-stack.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-llama-stack unless the release name already contains the chart name. */}}
{{- define "llama-stack.fullname" -}}
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

{{- define "llama-stack.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable across upgrades, never include the chart version. */}}
{{- define "llama-stack.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llama-stack.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: llama-stack
{{- end }}

{{/*
The server the chart runs (server.flavor): "llama-stack" (0.7.3) or "ogx" (1.5).
Usage: {{ include "llama-stack.flavor" . }}
*/}}
{{- define "llama-stack.flavor" -}}
{{- ((.Values.server).flavor | default "llama-stack") }}
{{- end }}

{{/* "true" when the flavor is ogx, else empty. Usage: {{ if include "llama-stack.isOgx" . }} */}}
{{- define "llama-stack.isOgx" -}}
{{- if eq (include "llama-stack.flavor" .) "ogx" }}true{{ end }}
{{- end }}

{{/* The image repository: image.repository, or the flavor's own. */}}
{{- define "llama-stack.imageRepository" -}}
{{- .Values.image.repository | default (ternary "ogxai/distribution-starter" "llamastack/distribution-starter" (eq (include "llama-stack.flavor" .) "ogx")) }}
{{- end }}

{{/* The image tag: image.tag, or the flavor's own (OGX's release images are tagged with the PyPI version). */}}
{{- define "llama-stack.imageTag" -}}
{{- .Values.image.tag | default (ternary "1.5.0" "0.7.3" (eq (include "llama-stack.flavor" .) "ogx")) }}
{{- end }}

{{/* The server image: "<repository>:<tag>". */}}
{{- define "llama-stack.image" -}}
{{- printf "%s:%s" (include "llama-stack.imageRepository" .) (include "llama-stack.imageTag" .) }}
{{- end }}

{{/* Where the run config and launchers are mounted. */}}
{{- define "llama-stack.configDir" -}}
{{- if include "llama-stack.isOgx" . }}/etc/ogx{{ else }}/etc/llama-stack{{ end }}
{{- end }}

{{/* The chart's env var holding dataDir, which every path of the run config hangs off. */}}
{{- define "llama-stack.dataEnv" -}}
{{- if include "llama-stack.isOgx" . }}OGX_DATA{{ else }}LLAMA_STACK_DATA{{ end }}
{{- end }}

{{/* The header a caller passes provider data (e.g. {"vllm_api_token": ...}) in. */}}
{{- define "llama-stack.providerDataHeader" -}}
{{- if include "llama-stack.isOgx" . }}X-OGX-Provider-Data{{ else }}X-LlamaStack-Provider-Data{{ end }}
{{- end }}

{{- define "llama-stack.labels" -}}
helm.sh/chart: {{ include "llama-stack.chart" . }}
{{ include "llama-stack.selectorLabels" . }}
app.kubernetes.io/version: {{ include "llama-stack.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rag
{{- end }}

{{/* Labels for hook pods: no component selector label, so Services never select them. */}}
{{- define "llama-stack.testLabels" -}}
helm.sh/chart: {{ include "llama-stack.chart" . }}
app.kubernetes.io/name: {{ include "llama-stack.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: test
{{- end }}

{{/*
Enabled models as a JSON object <key> -> entry. An entry without `enabled` counts as enabled;
`enabled: false` drops it entirely (no provider, no registration, no token env).
*/}}
{{- define "llama-stack.enabledModels" -}}
{{- $out := dict }}
{{- range $key, $m := (.Values.global.models | default dict) }}
{{- if and $m (or (not (hasKey $m "enabled")) $m.enabled) }}
{{- $_ := set $out $key $m }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
The model name llama-stack sends for a catalog entry, and names it by (<key>/<name>): the public id
for an entry behind the stack's gateway, which routes by that id and itself sends upstreamModel on
(sending upstreamModel would skip the entry's tiers, limits and token costs at the gateway); for an
external entry, which llama-stack calls directly, upstreamModel when set.
Usage: {{ include "llama-stack.servedName" $entry }}
*/}}
{{- define "llama-stack.servedName" -}}
{{- if eq (toString .external) "true" }}{{ .upstreamModel | default .id }}{{ else }}{{ .id }}{{ end }}
{{- end }}

{{/*
A catalog entry's metadata for llama-stack's model registry, as JSON: the catalog fields that are
set (llama-stack shows them in GET /v1/models under custom_metadata), plus publicId when the name
llama-stack sends (llama-stack.servedName, which it lists the model by) differs from id.
Usage: {{ include "llama-stack.modelMetadata" $entry | fromJson }}
*/}}
{{- define "llama-stack.modelMetadata" -}}
{{- $out := dict }}
{{- range $field := list "displayName" "description" "category" "contextLength" "capabilities" "supportsStreaming" "availability" }}
{{- if hasKey $ $field }}
{{- $_ := set $out $field (get $ $field) }}
{{- end }}
{{- end }}
{{- if ne (include "llama-stack.servedName" .) .id }}
{{- $_ := set $out "publicId" .id }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
Env var carrying a model's token: MODEL_TOKEN_<KEY>_<first 8 hex of sha256(key)>, the key
upper-cased with non-alphanumerics as "_". The readable part alone would give `team-a`, `team_a`
and `Team-A` one variable, so one provider would call with another's token; the hash suffix keeps
every key's variable distinct.
Usage: {{ include "llama-stack.tokenEnv" "team-a" }}
*/}}
{{- define "llama-stack.tokenEnv" -}}
{{- printf "MODEL_TOKEN_%s_%s" (regexReplaceAll "[^A-Za-z0-9]" . "_" | upper) (sha256sum . | trunc 8 | upper) }}
{{- end }}

{{/*
Values that pass the schema but break at run time. Collects every problem, then fails once with
an ERROR: message giving each path, value and fix. Renders nothing.
Usage: {{ include "llama-stack.validate" . }}
*/}}
{{- define "llama-stack.validate" -}}
{{- $errors := list }}
{{- $owners := dict }}
{{- range $key, $m := (include "llama-stack.enabledModels" . | fromJson) }}
{{- $_ := set $owners $m.id (append (get $owners $m.id | default list) $key) }}
{{- end }}
{{- range $id, $keys := $owners }}
{{- if gt (len $keys) 1 }}
{{- $fields := list }}
{{- range $keys }}{{ $fields = append $fields (printf "global.models.%s.id" .) }}{{ end }}
{{- $errors = append $errors (printf "%s are all %q: a public model id must name one catalog entry. Give each entry its own id (set upstreamModel to the same server model name to publish one model under two ids), or set enabled: false on all but one." (join " and " $fields) $id) }}
{{- end }}
{{- end }}
{{- range $key, $m := (include "llama-stack.enabledModels" . | fromJson) }}
{{- $url := tpl $m.url $ }}
{{- $path := regexReplaceAll "^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*" ($url | trimSuffix "/") "" }}
{{- if not (hasSuffix "/v1" $path) }}
{{- $errors = append $errors (printf "global.models.%s.url is %q, whose path does not end in /v1: llama-stack appends /chat/completions and /models to it, so every call would answer 404. Use the server's OpenAI-compatible base URL, e.g. %q." $key $url (printf "%s/v1" ($url | trimSuffix "/"))) }}
{{- end }}
{{- end }}
{{- $vs := .Values.vectorStore }}
{{- if ge (int $vs.chunkOverlapTokens) (int $vs.chunkSizeTokens) }}
{{- $errors = append $errors (printf "vectorStore.chunkOverlapTokens (%d) must be smaller than vectorStore.chunkSizeTokens (%d): llama-stack accepts the file, then fails to chunk it. Use an overlap of about a quarter of the chunk size, e.g. %d." (int $vs.chunkOverlapTokens) (int $vs.chunkSizeTokens) (div (int $vs.chunkSizeTokens) 4)) }}
{{- end }}
{{- if .Values.embeddings.enabled }}
{{- $e := .Values.embeddings }}
{{- $need := add (int (ceil (mulf (int $vs.chunkSizeTokens) (float64 $e.tokenRatio)))) 8 }}
{{- if gt $need (int $e.maxInputTokens) }}
{{- $fit := int (floor (divf (sub (int $e.maxInputTokens) 8) (float64 $e.tokenRatio))) }}
{{- $errors = append $errors (printf "vectorStore.chunkSizeTokens (%d) does not fit embeddings.maxInputTokens (%d): a chunk needs about %d x %s + 8 = %d tokens of the embedding model, which drops the rest of every chunk from its vector. Set vectorStore.chunkSizeTokens to at most %d (or raise embeddings.maxInputTokens for a model that reads more)." (int $vs.chunkSizeTokens) (int $e.maxInputTokens) (int $vs.chunkSizeTokens) (toString $e.tokenRatio) $need $fit) }}
{{- end }}
{{- end }}
{{- $exposed := list }}
{{- if .Values.route.enabled }}{{ $exposed = append $exposed "route.enabled=true" }}{{ end }}
{{- if has .Values.service.type (list "LoadBalancer" "NodePort") }}{{ $exposed = append $exposed (printf "service.type=%s" .Values.service.type) }}{{ end }}
{{- if and $exposed (not .Values.auth.enabled) (not .Values.auth.insecure) }}
{{- $errors = append $errors (printf "auth.enabled is false while %s exposes llama-stack outside the cluster: anyone who finds it could use the models, files and vector stores. Set auth.enabled=true (the default), or set auth.insecure=true to expose it unauthenticated on purpose." (join " and " $exposed)) }}
{{- end }}
{{- $tls := .Values.tls }}
{{- if $tls.enabled }}
{{- if and (not $tls.existingSecret) (not $tls.openshiftServingCert) (not (and $tls.certificate $tls.key)) }}
{{- $errors = append $errors "tls.enabled is true, but no certificate is named: llama-stack could not start. Set tls.existingSecret to a kubernetes.io/tls Secret, tls.openshiftServingCert=true on OpenShift, or (dev only) tls.certificate and tls.key." }}
{{- end }}
{{- if and .Values.route.enabled (eq (.Values.route.tlsTermination | default "") "edge" "") }}
{{- $errors = append $errors (printf "route.tlsTermination is %q while tls.enabled makes llama-stack serve HTTPS only: the Route would speak plain HTTP to it. Set route.tlsTermination=reencrypt (or passthrough)." (.Values.route.tlsTermination | default "")) }}
{{- end }}
{{- else if or $tls.existingSecret $tls.certificate $tls.key $tls.openshiftServingCert }}
{{- $errors = append $errors "tls.existingSecret, tls.certificate, tls.key or tls.openshiftServingCert is set while tls.enabled is false: llama-stack would serve plain HTTP. Set tls.enabled=true, or remove them." }}
{{- end }}
{{- $flavor := include "llama-stack.flavor" . }}
{{- $insecure := (.Values.server).insecure | default false }}
{{- $repo := .Values.image.repository | default "" }}
{{- if eq $flavor "ogx" }}
{{- if and (not $tls.enabled) (not $insecure) }}
{{- $errors = append $errors "server.flavor is ogx and tls.enabled is false: OGX 1.5 serves HTTPS only and would refuse to start (\"TLS required\"). Set tls.enabled=true with tls.existingSecret, tls.openshiftServingCert=true (OpenShift) or, dev only, tls.certificate and tls.key; or set server.insecure=true to serve plain HTTP on purpose (development only)." }}
{{- end }}
{{- if and $tls.enabled $insecure }}
{{- $errors = append $errors "server.insecure is true while tls.enabled is true: OGX would serve HTTPS but drop its FIPS cipher enforcement. Remove server.insecure (or set it to false)." }}
{{- end }}
{{- if contains "llamastack/" $repo }}
{{- $errors = append $errors (printf "image.repository is %q, a llama-stack image, while server.flavor is ogx: the chart would run `ogx run` in an image that has no ogx. Leave image.repository empty (ogxai/distribution-starter) or name an OGX image." $repo) }}
{{- end }}
{{- if lt (int .Values.port) 1024 }}
{{- $errors = append $errors (printf "port is %d while server.flavor is ogx: OGX 1.5 accepts only ports 1024..65535 (server.port). Use e.g. 8321." (int .Values.port)) }}
{{- end }}
{{- if contains ";" .Values.logging }}
{{- $errors = append $errors (printf "logging is %q while server.flavor is ogx: OGX_LOGGING separates categories with \",\" (\";\" is llama-stack's separator), so OGX would ignore these levels. Use %q." .Values.logging (replace ";" "," .Values.logging)) }}
{{- end }}
{{- else }}
{{- if $insecure }}
{{- $errors = append $errors "server.insecure is true while server.flavor is llama-stack: it is an OGX setting, and llama-stack serves plain HTTP or HTTPS as tls.enabled says. Remove server.insecure, or set server.flavor=ogx." }}
{{- end }}
{{- if contains "ogxai/" $repo }}
{{- $errors = append $errors (printf "image.repository is %q, an OGX image, while server.flavor is llama-stack: the chart would run `llama stack run` in an image that has no llama-stack. Set server.flavor=ogx, or leave image.repository empty (llamastack/distribution-starter)." $repo) }}
{{- end }}
{{- end }}
{{- if $errors }}
{{- fail (printf "\nERROR: %s" (join "\nERROR: " $errors)) }}
{{- end }}
{{- end }}

{{/* The kubernetes.io/tls Secret llama-stack serves HTTPS with (tls.enabled). */}}
{{- define "llama-stack.tlsSecretName" -}}
{{- if .Values.tls.existingSecret }}{{ tpl .Values.tls.existingSecret . }}{{ else }}{{ printf "%s-tls" (include "llama-stack.fullname" .) }}{{ end }}
{{- end }}

{{/* Where llama-stack reads its certificate: the path a KServe deployment mounts one at. */}}
{{- define "llama-stack.tlsDir" -}}/var/run/kserve/tls{{- end }}

{{/* The scheme llama-stack serves: https with tls.enabled. */}}
{{- define "llama-stack.scheme" -}}{{ if .Values.tls.enabled }}https{{ else }}http{{ end }}{{- end }}

{{- define "llama-stack.tokenSecretName" -}}
{{- printf "%s-model-tokens" (include "llama-stack.fullname" .) }}
{{- end }}

{{/* True ("true") when at least one enabled model has an inline token. */}}
{{- define "llama-stack.hasInlineTokens" -}}
{{- $found := false }}
{{- range $key, $m := (include "llama-stack.enabledModels" . | fromJson) }}
{{- if and $m.apiToken (not $m.apiTokenSecretRef) }}{{ $found = true }}{{ end }}
{{- end }}
{{- if $found }}true{{ end }}
{{- end }}

{{- define "llama-stack.claimName" -}}
{{- default (printf "%s-data" (include "llama-stack.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/*
Env vars referencing secrets. Shared by the Deployment so the ConfigMap only ever holds ${env.X}.
*/}}
{{- define "llama-stack.secretEnv" -}}
{{- $root := . }}
{{- range $key, $m := (include "llama-stack.enabledModels" . | fromJson) }}
{{- if $m.apiTokenSecretRef }}
- name: {{ include "llama-stack.tokenEnv" $key }}
  valueFrom:
    secretKeyRef:
      name: {{ tpl $m.apiTokenSecretRef.name $root | quote }}
      key: {{ $m.apiTokenSecretRef.key | quote }}
{{- else if $m.apiToken }}
- name: {{ include "llama-stack.tokenEnv" $key }}
  valueFrom:
    secretKeyRef:
      name: {{ include "llama-stack.tokenSecretName" $root }}
      key: {{ $key | quote }}
{{- end }}
{{- end }}
{{- if and .Values.embeddings.enabled .Values.embeddings.apiKeySecretRef.name }}
- name: EMBEDDINGS_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ tpl .Values.embeddings.apiKeySecretRef.name . | quote }}
      key: {{ .Values.embeddings.apiKeySecretRef.key | quote }}
{{- end }}
{{- if eq .Values.vectorStore.provider "pgvector" }}
- name: PGVECTOR_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ tpl .Values.vectorStore.pgvector.passwordSecretRef.name . | quote }}
      key: {{ .Values.vectorStore.pgvector.passwordSecretRef.key | quote }}
{{- end }}
{{- end }}

{{/* The server's environment, shared by the registry-pruning init container (same config, same ${env.X}). */}}
{{- define "llama-stack.env" -}}
{{- if include "llama-stack.isOgx" . -}}
# Every path in the run config hangs off this variable (${env.OGX_DATA}).
- name: OGX_DATA
  value: {{ .Values.dataDir | quote }}
# Arbitrary non-root UIDs (OpenShift) have no writable home; keep it on the data volume.
- name: HOME
  value: {{ .Values.dataDir | quote }}
# OGX's own directory (~/.ogx), named explicitly: OGX moves a ~/.llama it finds there otherwise.
- name: OGX_CONFIG_DIR
  value: {{ printf "%s/.ogx" (.Values.dataDir | trimSuffix "/") | quote }}
- name: OGX_LOGGING
  value: {{ .Values.logging | quote }}
- name: OGX_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- else -}}
# Every path in the run config hangs off this variable (${env.LLAMA_STACK_DATA}).
- name: LLAMA_STACK_DATA
  value: {{ .Values.dataDir | quote }}
# Arbitrary non-root UIDs (OpenShift) have no writable home; keep ~/.llama on the data volume.
- name: HOME
  value: {{ .Values.dataDir | quote }}
- name: LLAMA_STACK_LOGGING
  value: {{ .Values.logging | quote }}
- name: LLAMA_STACK_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- end }}
{{- with (include "llama-stack.secretEnv" . | trim) }}
{{ . }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
A pod or container securityContext: "secContext" with "overrides" (optional) merged over it,
minus runAsUser, runAsGroup and fsGroup on OpenShift, whose restricted-v2 SCC assigns those
from the namespace's range (bitnami's common.compatibility.renderSecurityContext).
global.compatibility.openshift.adaptSecurityContext: auto (drop them when the cluster serves
security.openshift.io/v1), force (always drop them), disabled (keep them).
Usage: {{ include "llama-stack.securityContext" (dict "secContext" .Values.podSecurityContext "overrides" .Values.test.podSecurityContext "context" $) }}
*/}}
{{- define "llama-stack.securityContext" -}}
{{- $sc := merge (deepCopy (.overrides | default dict)) (deepCopy (.secContext | default dict)) -}}
{{- $mode := (((.context.Values.global).compatibility).openshift).adaptSecurityContext | default "auto" -}}
{{- if or (eq $mode "force") (and (eq $mode "auto") (.context.Capabilities.APIVersions.Has "security.openshift.io/v1")) -}}
{{- $sc = omit $sc "runAsUser" "runAsGroup" "fsGroup" -}}
{{- end -}}
{{- toYaml $sc -}}
{{- end -}}
