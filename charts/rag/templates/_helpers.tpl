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
Top-level keys this chart reads: its own, Helm's `global` and `tags`, and one per dependency
in Chart.yaml (listed here: Helm drops a disabled dependency from .Chart.Dependencies but
keeps its values key). A misspelt top-level key (`maas-gatway:`) would otherwise be ignored
silently, so every unknown key fails the render, naming the key and the nearest known one.
*/}}
{{- define "rag.topLevelKeys" -}}
global tags nameOverride llama-stack maas-gateway vllm-gpu pgvector embeddings tests podSecurityContext containerSecurityContext
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
