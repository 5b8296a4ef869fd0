{{/* Chart name, truncated to the DNS label limit. */}}
{{- define "maas-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name; suffixes (-ratelimit, -redis) must still fit in 63 chars. */}}
{{- define "maas-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "maas-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable across upgrades, never include the chart version. */}}
{{- define "maas-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "maas-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Metadata labels. */}}
{{- define "maas-gateway.labels" -}}
helm.sh/chart: {{ include "maas-gateway.chart" . }}
{{ include "maas-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: maas
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Component labels: call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "maas-gateway.componentLabels" -}}
{{ include "maas-gateway.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "maas-gateway.componentSelectorLabels" -}}
{{ include "maas-gateway.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Addresses of the other components (overridable for the local runner). */}}
{{- define "maas-gateway.ratelimitHost" -}}
{{- default (printf "%s-ratelimit" (include "maas-gateway.fullname" .)) .Values.ratelimit.host }}
{{- end }}

{{- define "maas-gateway.redisHost" -}}
{{- default (printf "%s-redis" (include "maas-gateway.fullname" .)) .Values.redis.host }}
{{- end }}

{{- define "maas-gateway.upstreamHost" -}}
{{- tpl .Values.upstream.host . }}
{{- end }}

{{/* Name of the Secret that holds the key file (standalone mode). */}}
{{- define "maas-gateway.apiKeysSecret" -}}
{{- default (printf "%s-api-keys" (include "maas-gateway.fullname" .)) .Values.apiKeys.existingSecret }}
{{- end }}

{{- define "maas-gateway.apiKeysMountPath" -}}/etc/maas/api-keys{{- end }}

{{/* Window string ("2m") to seconds. */}}
{{- define "maas-gateway.windowSeconds" -}}
{{- $m := regexFindAll "^([0-9]+)(s|m|h)$" . 1 }}
{{- if not $m }}{{ fail (printf "invalid window %q: use <n>s, <n>m or <n>h" .) }}{{ end }}
{{- $n := int (trimSuffix "s" (trimSuffix "m" (trimSuffix "h" .))) }}
{{- if hasSuffix "h" . }}{{ mul $n 3600 }}{{ else if hasSuffix "m" . }}{{ mul $n 60 }}{{ else }}{{ $n }}{{ end }}
{{- end }}

{{/*
envoyproxy/ratelimit only knows fixed units. The gateway adds a window-bucket entry
(floor(now / window)) to every descriptor, so the counter resets each window; the unit only
has to be a multiple of the window (first unit that divides evenly, else the first longer one).
*/}}
{{- define "maas-gateway.rlsUnit" -}}
{{- $w := int . }}
{{- $unit := "" }}
{{- range $u := list (list "second" 1) (list "minute" 60) (list "hour" 3600) (list "day" 86400) (list "month" 2592000) (list "year" 31536000) }}
{{- $s := int (index $u 1) }}
{{- if and (not $unit) (ge $s $w) (eq (mod $s $w) 0) }}{{ $unit = index $u 0 }}{{ end }}
{{- end }}
{{- if not $unit }}
{{- range $u := list (list "second" 1) (list "minute" 60) (list "hour" 3600) (list "day" 86400) (list "month" 2592000) (list "year" 31536000) }}
{{- if and (not $unit) (ge (int (index $u 1)) $w) }}{{ $unit = index $u 0 }}{{ end }}
{{- end }}
{{- end }}
{{- default "year" $unit }}
{{- end }}

{{/* Duration "500ms" / "2s" to the protobuf JSON form Envoy wants ("0.500s"). */}}
{{- define "maas-gateway.protoDuration" -}}
{{- if hasSuffix "ms" . }}{{ printf "%.3fs" (divf (trimSuffix "ms" . | float64) 1000) }}
{{- else if hasSuffix "s" . }}{{ . }}
{{- else if hasSuffix "m" . }}{{ printf "%ds" (mul (trimSuffix "m" . | int) 60) }}
{{- else }}{{ fail (printf "invalid duration %q" .) }}{{ end }}
{{- end }}

{{/* Fail early on keys that name an unknown tier. */}}
{{- define "maas-gateway.validate" -}}
{{- range $i, $k := .Values.apiKeys.keys }}
{{- if not (hasKey $.Values.tiers $k.tier) }}
{{- fail (printf "apiKeys.keys[%d] (user %q) names tier %q, which is not in .Values.tiers" $i $k.user $k.tier) }}
{{- end }}
{{- end }}
{{- if not .Values.tiers }}{{ fail "tiers must define at least one tier" }}{{ end }}
{{- end }}

{{- define "maas-gateway.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
A pod or container securityContext: "secContext" with "overrides" (optional) merged over it,
minus runAsUser, runAsGroup and fsGroup on OpenShift, whose restricted-v2 SCC assigns those
from the namespace's range (bitnami's common.compatibility.renderSecurityContext).
global.compatibility.openshift.adaptSecurityContext: auto (drop them when the cluster serves
security.openshift.io/v1), force (always drop them), disabled (keep them).
Usage: {{ include "maas-gateway.securityContext" (dict "secContext" .Values.podSecurityContext "overrides" .Values.test.podSecurityContext "context" $) }}
*/}}
{{- define "maas-gateway.securityContext" -}}
{{- $sc := merge (deepCopy (.overrides | default dict)) (deepCopy (.secContext | default dict)) -}}
{{- $mode := (((.context.Values.global).compatibility).openshift).adaptSecurityContext | default "auto" -}}
{{- if or (eq $mode "force") (and (eq $mode "auto") (.context.Capabilities.APIVersions.Has "security.openshift.io/v1")) -}}
{{- $sc = omit $sc "runAsUser" "runAsGroup" "fsGroup" -}}
{{- end -}}
{{- toYaml $sc -}}
{{- end -}}
