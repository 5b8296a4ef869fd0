{{/* Chart name, truncated to the DNS label limit. */}}
{{- define "rag.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of a component of this chart: <release>-<component>. */}}
{{- define "rag.componentName" -}}
{{- printf "%s-%s" .root.Release.Name .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rag.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable across upgrades, so no chart version here. */}}
{{- define "rag.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{- define "rag.labels" -}}
helm.sh/chart: {{ include "rag.chart" .root }}
{{ include "rag.selectorLabels" . }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: rag
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/* Secret holding the pgvector password. */}}
{{- define "rag.pgvectorSecretName" -}}
{{- default (include "rag.componentName" (dict "root" . "component" "pgvector")) .Values.pgvector.auth.existingSecret }}
{{- end }}

{{/*
Values that pass the schema but break at run time. Collects every problem, then fails once with
an ERROR: message giving each path, value and fix. Renders nothing.
Usage: {{ include "rag.validate" . }}
*/}}
{{- define "rag.validate" -}}
{{- $errors := list }}
{{- $ls := index .Values "llama-stack" }}
{{- if and .Values.pgvector.enabled $ls.enabled (eq $ls.vectorStore.provider "pgvector") }}
{{- $ref := $ls.vectorStore.pgvector.passwordSecretRef }}
{{- $want := include "rag.pgvectorSecretName" . }}
{{- if or (ne (tpl $ref.name .) $want) (ne $ref.key .Values.pgvector.auth.secretKey) }}
{{- $errors = append $errors (printf "llama-stack.vectorStore.pgvector.passwordSecretRef is {name: %q, key: %q}, but pgvector reads its password from {name: %q, key: %q} (pgvector.auth.existingSecret / pgvector.auth.secretKey): llama-stack could not log in. Set llama-stack.vectorStore.pgvector.passwordSecretRef to {name: %q, key: %q}." (tpl $ref.name .) $ref.key $want .Values.pgvector.auth.secretKey $want .Values.pgvector.auth.secretKey) }}
{{- end }}
{{- end }}
{{- $gw := index .Values "maas-gateway" }}
{{- if and $gw.enabled ($gw.llamaStack).enabled }}
{{- if not $ls.enabled }}
{{- $errors = append $errors "maas-gateway.llamaStack.enabled is true, but llama-stack.enabled is false: the gateway would route to a llama-stack that is not deployed. Enable llama-stack or set maas-gateway.llamaStack.enabled=false." }}
{{- end }}
{{- if ($ls.route).enabled }}
{{- $errors = append $errors "llama-stack.route.enabled is true while maas-gateway.llamaStack.enabled puts llama-stack behind the gateway: the Route would be a second door to llama-stack with no key check and no charge. Set llama-stack.route.enabled=false and reach llama-stack through the gateway's route (maas-gateway.route) at maas-gateway.llamaStack.pathPrefix." }}
{{- end }}
{{- if and $ls.enabled (eq (($ls.server).flavor | default "llama-stack") "ogx") }}
{{- $errors = append $errors "llama-stack.server.flavor is ogx while maas-gateway.llamaStack.enabled puts it behind the gateway: the gateway forwards each caller's key onward in X-LlamaStack-Provider-Data, which OGX does not read (it reads X-OGX-Provider-Data), so model calls through it would carry no key. The gateway does not follow the flavor yet: set maas-gateway.llamaStack.enabled=false, or server.flavor=llama-stack." }}
{{- end }}
{{- $lsTls := ($ls.tls | default dict).enabled | default false }}
{{- $gwTls := (($gw.llamaStack).tls | default dict).enabled | default false }}
{{- if and $ls.enabled (ne $lsTls $gwTls) }}
{{- $errors = append $errors (printf "llama-stack.tls.enabled is %v but maas-gateway.llamaStack.tls.enabled is %v: the gateway would speak %s to a llama-stack that serves %s, and every call through it would fail. Set both to the same value (with TLS, maas-gateway.llamaStack.tls names the CA that issued llama-stack's certificate)." $lsTls $gwTls (ternary "HTTPS" "plain HTTP" $gwTls) (ternary "HTTPS" "plain HTTP" $lsTls)) }}
{{- end }}
{{- $want := $gw.llamaStack.chunking | default dict }}
{{- $vs := $ls.vectorStore | default dict }}
{{- if and $ls.enabled (or (ne (int $want.sizeTokens) (int $vs.chunkSizeTokens)) (ne (int $want.overlapTokens) (int $vs.chunkOverlapTokens))) }}
{{- $errors = append $errors (printf "maas-gateway.llamaStack.chunking is {sizeTokens: %d, overlapTokens: %d}, but llama-stack.vectorStore chunks at {chunkSizeTokens: %d, chunkOverlapTokens: %d}: files attached through the gateway with no strategy would be cut differently from what llama-stack publishes. Set maas-gateway.llamaStack.chunking to {sizeTokens: %d, overlapTokens: %d}." (int $want.sizeTokens) (int $want.overlapTokens) (int $vs.chunkSizeTokens) (int $vs.chunkOverlapTokens) (int $vs.chunkSizeTokens) (int $vs.chunkOverlapTokens)) }}
{{- end }}
{{- if ne (($ls.service).type | default "ClusterIP") "ClusterIP" }}
{{- $errors = append $errors (printf "llama-stack.service.type is %s while maas-gateway.llamaStack.enabled puts llama-stack behind the gateway: the Service would be a second door to llama-stack with no key check and no charge. Set llama-stack.service.type=ClusterIP and reach llama-stack through the gateway." $ls.service.type) }}
{{- end }}
{{- end }}
{{- if and $gw.enabled (ne ($gw.mode | default "standalone") "kuadrant") $ls.enabled $ls.auth.enabled (eq (($ls.server).flavor | default "llama-stack") "ogx") }}
{{- $endpoint := tpl $ls.auth.endpoint . }}
{{- if contains (printf "//%s-maas-gateway:" .Release.Name) $endpoint }}
{{- $errors = append $errors (printf "llama-stack.auth.endpoint is %q, the gateway's key-validation route, while llama-stack.server.flavor is ogx: that route requires the caller's key in X-LlamaStack-Provider-Data and OGX callers send X-OGX-Provider-Data, so every call would be refused. The gateway does not follow the flavor yet: set llama-stack.auth.enabled=false (ClusterIP only), point llama-stack.auth.endpoint at another key check, or set llama-stack.server.flavor=llama-stack." $endpoint) }}
{{- end }}
{{- end }}
{{- if and $gw.enabled (eq ($gw.mode | default "standalone") "kuadrant") $ls.enabled $ls.auth.enabled }}
{{- $endpoint := tpl $ls.auth.endpoint . }}
{{- if contains (printf "//%s-maas-gateway:" .Release.Name) $endpoint }}
{{- $errors = append $errors (printf "llama-stack.auth.endpoint is %q, the key-validation route of the standalone gateway, which maas-gateway.mode=kuadrant does not render: llama-stack could validate no key and would refuse every call. Set llama-stack.auth.endpoint to a service that answers llama-stack's custom auth contract (charts/llama-stack/README.md, Authentication) from the same keys, or set llama-stack.auth.enabled=false (refused with an external route unless llama-stack.auth.insecure=true)." $endpoint) }}
{{- end }}
{{- end }}
{{- if $errors }}
{{- fail (printf "\nERROR: %s" (join "\nERROR: " $errors)) }}
{{- end }}
{{- end }}

{{/*
Refuses a pgvector.persistence.size that differs from the live StatefulSet's claim template:
Kubernetes forbids changing volumeClaimTemplates, and helm's own error does not say what to do.
`live` is the StatefulSet from lookup (empty under `helm template` and on first install).
Usage: {{ include "rag.checkClaimSize" (dict "context" . "live" (lookup "apps/v1" "StatefulSet" .Release.Namespace "ci-pgvector")) }}
*/}}
{{- define "rag.checkClaimSize" -}}
{{- $ctx := .context }}
{{- $want := toString $ctx.Values.pgvector.persistence.size }}
{{- $name := include "rag.componentName" (dict "root" $ctx "component" "pgvector") }}
{{- range ((.live | default dict).spec | default dict).volumeClaimTemplates }}
{{- if eq .metadata.name "data" }}
{{- $have := toString .spec.resources.requests.storage }}
{{- if ne $have $want }}
{{- $ns := $ctx.Release.Namespace }}
{{- fail (printf "\nERROR: pgvector.persistence.size is %s, but StatefulSet %s was created with %s, and Kubernetes forbids changing a StatefulSet's volumeClaimTemplates. To keep the volume, set pgvector.persistence.size back to %s. To grow it (its StorageClass must allow expansion):\n  kubectl -n %s patch pvc data-%s-0 -p '{\"spec\":{\"resources\":{\"requests\":{\"storage\":\"%s\"}}}}'\n  kubectl -n %s delete statefulset %s --cascade=orphan\nthen run helm upgrade again: the pod and its data stay, and the StatefulSet is recreated with the new size." $want $name $have $have $ns $name $want $ns $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Top-level keys this chart reads: its own, Helm's `global` and `tags`, and one per dependency
in Chart.yaml (listed here: Helm drops a disabled dependency from .Chart.Dependencies but
keeps its values key). A misspelt top-level key (`maas-gatway:`) would otherwise be ignored
silently, so every unknown key fails the render, naming the key and the nearest known one.
*/}}
{{- define "rag.topLevelKeys" -}}
global tags nameOverride llama-stack maas-gateway vllm-gpu vllm-gpu-2 pgvector embeddings prometheus tests podSecurityContext containerSecurityContext networkPolicy
{{- end }}

{{/*
The known key sharing the most two-letter pieces with .key (a cheap edit-distance stand-in:
Sprig has no Levenshtein). Usage: include "rag.nearestKey" (dict "key" "maas-gatway" "known" $list)
*/}}
{{- define "rag.nearestKey" -}}
{{- $key := .key }}
{{- $best := "" }}
{{- $bestScore := 0 }}
{{- range $known := .known }}
{{- $score := 0 }}
{{- range $i := until (int (sub (len $key) 1)) }}
{{- if contains (substr $i (int (add $i 2)) $key) $known }}{{ $score = add $score 1 }}{{ end }}
{{- end }}
{{- if gt (int $score) (int $bestScore) }}{{ $best = $known }}{{ $bestScore = $score }}{{ end }}
{{- end }}
{{- $best }}
{{- end }}

{{/* Fail once, listing every unknown top-level key. Usage: include "rag.validateTopLevel" . */}}
{{- define "rag.validateTopLevel" -}}
{{- $known := splitList " " (include "rag.topLevelKeys" .) }}
{{- $errors := list }}
{{- range $key, $_ := .Values }}
{{- if not (has $key $known) }}
{{- $nearest := include "rag.nearestKey" (dict "key" $key "known" $known) }}
{{- $hint := ternary (printf " (did you mean %q?)" $nearest) "" (ne $nearest "") }}
{{- $errors = append $errors (printf "unknown top-level key %q%s" $key $hint) }}
{{- end }}
{{- end }}
{{- if $errors }}
{{- fail (printf "ERROR: %s; known top-level keys: %s" (join "; " $errors) (join ", " (sortAlpha $known))) }}
{{- end }}
{{- end }}

{{/*
A pod or container securityContext: "secContext" with "overrides" (optional) merged over it,
minus runAsUser, runAsGroup and fsGroup on OpenShift, whose restricted-v2 SCC assigns those
from the namespace's range (bitnami's common.compatibility.renderSecurityContext).
global.compatibility.openshift.adaptSecurityContext: auto (drop them when the cluster serves
security.openshift.io/v1), force (always drop them), disabled (keep them).
Usage: {{ include "rag.securityContext" (dict "secContext" .Values.podSecurityContext "overrides" .Values.test.podSecurityContext "context" $) }}
*/}}
{{- define "rag.securityContext" -}}
{{- $sc := merge (deepCopy (.overrides | default dict)) (deepCopy (.secContext | default dict)) -}}
{{- $mode := (((.context.Values.global).compatibility).openshift).adaptSecurityContext | default "auto" -}}
{{- if or (eq $mode "force") (and (eq $mode "auto") (.context.Capabilities.APIVersions.Has "security.openshift.io/v1")) -}}
{{- $sc = omit $sc "runAsUser" "runAsGroup" "fsGroup" -}}
{{- end -}}
{{- toYaml $sc -}}
{{- end -}}
