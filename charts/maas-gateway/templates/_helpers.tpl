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

{{/* Request headers the model server never receives (kuadrant mode; standalone: files/gateway.lua). */}}
{{- define "maas-gateway.strippedHeaders" -}}
["authorization","x-maas-user","x-maas-tier","x-user","x-user-id","x-tier","x-api-tier","x-user-tier","x-api-key-user","x-auth-request-user","x-auth-request-email","x-forwarded-user","x-remote-user","x-authenticated-userid","x-consumer-username"]
{{- end }}

{{/* Name of the Secret that holds the key file (standalone mode). */}}
{{- define "maas-gateway.apiKeysSecret" -}}
{{- default (printf "%s-api-keys" (include "maas-gateway.fullname" .)) .Values.apiKeys.existingSecret }}
{{- end }}

{{/* Name of the Secret with the Redis password (keys `password` and `redis.conf`). */}}
{{- define "maas-gateway.redisAuthSecret" -}}
{{- default (printf "%s-redis-auth" (include "maas-gateway.fullname" .)) .Values.redis.auth.existingSecret }}
{{- end }}

{{- define "maas-gateway.apiKeysMountPath" -}}/etc/maas/api-keys{{- end }}

{{/* The Secret holding the key hashing secret (apiKeys.hmac). */}}
{{- define "maas-gateway.apiKeysHmacSecret" -}}
{{- default (printf "%s-api-keys-hmac" (include "maas-gateway.fullname" .)) .Values.apiKeys.hmac.existingSecret }}
{{- end }}

{{- define "maas-gateway.apiKeysHmacMountPath" -}}/etc/maas/api-keys-hmac{{- end }}

{{/* Windows whose counters reset exactly at their bounds (values.schema.json allows the same). */}}
{{- define "maas-gateway.windowPattern" -}}
^((1|2|3|4|5|6|10|12|15|20|30|60)(s|m)|(1|2|3|4|6|8|12|24)h)$
{{- end }}

{{/* Window string ("2m") to seconds. */}}
{{- define "maas-gateway.windowSeconds" -}}
{{- if not (regexMatch (include "maas-gateway.windowPattern" "") .) }}{{ fail (printf "invalid window %q: allowed are <n>s or <n>m with n dividing 60, <n>h with n dividing 24" .) }}{{ end }}
{{- $n := int (trimSuffix "s" (trimSuffix "m" (trimSuffix "h" .))) }}
{{- if hasSuffix "h" . }}{{ mul $n 3600 }}{{ else if hasSuffix "m" . }}{{ mul $n 60 }}{{ else }}{{ $n }}{{ end }}
{{- end }}

{{/*
envoyproxy/ratelimit only knows fixed, epoch-aligned units (second, minute, hour, day; no unit
multiplier at the pinned commit). The gateway adds a window-bucket entry (floor(now / window)) to
every descriptor, so the counter changes at each window bound; the unit is the smallest one that
the window divides, so the unit's own bounds are window bounds too and never split a window.
*/}}
{{- define "maas-gateway.rlsUnit" -}}
{{- $w := int . }}
{{- $unit := "" }}
{{- range $u := list (list "second" 1) (list "minute" 60) (list "hour" 3600) (list "day" 86400) }}
{{- $s := int (index $u 1) }}
{{- if and (not $unit) (ge $s $w) (eq (mod $s $w) 0) }}{{ $unit = index $u 0 }}{{ end }}
{{- end }}
{{- if not $unit }}{{ fail (printf "a window of %ds divides none of the rate limit service's units" $w) }}{{ end }}
{{- $unit }}
{{- end }}

{{/* Duration "500ms" / "2s" to the protobuf JSON form Envoy wants ("0.500s"). */}}
{{- define "maas-gateway.protoDuration" -}}
{{- if hasSuffix "ms" . }}{{ printf "%.3fs" (divf (trimSuffix "ms" . | float64) 1000) }}
{{- else if hasSuffix "s" . }}{{ . }}
{{- else if hasSuffix "m" . }}{{ printf "%ds" (mul (trimSuffix "m" . | int) 60) }}
{{- else }}{{ fail (printf "invalid duration %q" .) }}{{ end }}
{{- end }}

{{/* Fail early on keys that name an unknown tier. */}}
{{/* The ConfigMap holding the CA that verifies llama-stack (llamaStack.tls), and its key. */}}
{{- define "maas-gateway.llamaStackCA" -}}
{{- $t := .Values.llamaStack.tls }}
{{- if $t.caConfigMap.name }}{{ dict "name" (tpl $t.caConfigMap.name .) "key" $t.caConfigMap.key "owned" false | toJson }}
{{- else if $t.openshiftServiceCA }}{{ dict "name" (printf "%s-llama-stack-ca" (include "maas-gateway.fullname" .)) "key" "service-ca.crt" "owned" true | toJson }}
{{- else }}{{ dict "name" (printf "%s-llama-stack-ca" (include "maas-gateway.fullname" .)) "key" "ca.crt" "owned" true | toJson }}
{{- end }}
{{- end }}

{{/* Where the gateway reads the CA that verifies llama-stack. */}}
{{- define "maas-gateway.llamaStackCADir" -}}/etc/maas-llama-stack-ca{{- end }}

{{- define "maas-gateway.validate" -}}
{{- range $i, $k := .Values.apiKeys.keys }}
{{- if not (hasKey $.Values.tiers $k.tier) }}
{{- fail (printf "apiKeys.keys[%d] (user %q) names tier %q, which is not in .Values.tiers" $i $k.user $k.tier) }}
{{- end }}
{{- end }}
{{- if not .Values.tiers }}{{ fail "tiers must define at least one tier" }}{{ end }}
{{- if and .Values.llamaStack.enabled (eq .Values.mode "kuadrant") }}
{{- fail "ERROR: llamaStack.enabled is true, but maas-gateway.mode is kuadrant: only the standalone gateway serves llama-stack behind it (its onward credentials keep each call charged once). Set mode=standalone or llamaStack.enabled=false" }}
{{- end }}
{{- $lsTls := .Values.llamaStack.tls }}
{{- if and .Values.llamaStack.enabled $lsTls.enabled (not $lsTls.caConfigMap.name) (not $lsTls.ca) (not $lsTls.openshiftServiceCA) }}
{{- fail "ERROR: llamaStack.tls.enabled is true, but no CA is named to verify llama-stack's certificate with: the gateway would refuse every call. Set llamaStack.tls.caConfigMap.name (an existing ConfigMap), llamaStack.tls.openshiftServiceCA=true on OpenShift, or (dev only) llamaStack.tls.ca" }}
{{- end }}
{{- $chunking := .Values.llamaStack.chunking }}
{{- if and .Values.llamaStack.enabled (ge (int $chunking.overlapTokens) (int $chunking.sizeTokens)) }}
{{- fail (printf "ERROR: llamaStack.chunking.overlapTokens (%d) must be smaller than llamaStack.chunking.sizeTokens (%d): llama-stack would step through the file by %d tokens and fail every file it is given" (int $chunking.overlapTokens) (int $chunking.sizeTokens) (sub (int $chunking.sizeTokens) (int $chunking.overlapTokens))) }}
{{- end }}
{{- $catalog := (include "maas-gateway.catalogEntries" . | fromJson) }}
{{- $bad := list }}
{{- range $key, $m := ((.Values.global).models | default dict) }}
{{- if and $m (eq (toString $m.external) "true") (hasKey $m "tiers") }}
{{- $bad = append $bad (printf "global.models.%s.tiers is set but the entry is external (llama-stack calls it directly, not through the gateway), so nothing would enforce it; remove tiers or external" $key) }}
{{- end }}
{{- range $field := list "limits" "tokenCost" }}
{{- if and $m (eq (toString $m.external) "true") (hasKey $m $field) }}
{{- $bad = append $bad (printf "global.models.%s.%s is set but the entry is external (llama-stack calls it directly, not through the gateway), so nothing would enforce it; remove %s or external" $key $field $field) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $key, $m := $catalog }}
{{- if and $m.upstreamModel (ne $m.upstreamModel $m.id) (not $.Values.routing.byModel) }}
{{- $bad = append $bad (printf "global.models.%s.upstreamModel is set but routing.byModel is false, so nothing would send it on (llama-stack calls the gateway with the public id %q); set routing.byModel: true (standalone mode) or remove upstreamModel" $key $m.id) }}
{{- end }}
{{- if and (hasKey $m "tiers") (not $.Values.routing.byModel) }}
{{- $bad = append $bad (printf "global.models.%s.tiers is set but routing.byModel is false, so nothing would enforce it; set routing.byModel: true (standalone mode) or remove tiers" $key) }}
{{- end }}
{{- range $field := list "limits" "tokenCost" }}
{{- if and (hasKey $m $field) (not $.Values.routing.byModel) }}
{{- $bad = append $bad (printf "global.models.%s.%s is set but routing.byModel is false, so nothing would enforce it; set routing.byModel: true (standalone mode) or remove %s" $key $field $field) }}
{{- end }}
{{- end }}
{{- range $t, $_ := ((($m.limits | default dict).tiers) | default dict) }}
{{- if not (hasKey $.Values.tiers $t) }}
{{- $bad = append $bad (printf "global.models.%s.limits.tiers.%s: %q is not a tier of the gateway (tiers: %s); name one of them or add it under tiers" $key $t $t (keys $.Values.tiers | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}
{{- range $f, $v := ($m.limits | default dict) }}
{{- if and (ne $f "tiers") (le (float64 $v) 0.0) }}
{{- $bad = append $bad (printf "global.models.%s.limits.%s: %v must be at least 1" $key $f $v) }}
{{- end }}
{{- end }}
{{- range $f, $v := ($m.tokenCost | default dict) }}
{{- if le (float64 $v) 0.0 }}
{{- $bad = append $bad (printf "global.models.%s.tokenCost.%s: %v must be greater than 0" $key $f $v) }}
{{- end }}
{{- end }}
{{- range $i, $t := ($m.tiers | default list) }}
{{- if not (hasKey $.Values.tiers $t) }}
{{- $bad = append $bad (printf "global.models.%s.tiers[%d]: %q is not a tier of the gateway (tiers: %s); name one of them or add it under tiers" $key $i $t (keys $.Values.tiers | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.routing.byModel (ne .Values.mode "standalone") }}
{{- $bad = append $bad "routing.byModel: true needs mode: standalone; kuadrant mode does not route by model yet (see the README's mode table); set it to false" }}
{{- end }}
{{- range $key, $_ := (.Values.routing.upstreams | default dict) }}
{{- if not (hasKey $catalog $key) }}
{{- $bad = append $bad (printf "routing.upstreams.%s: no enabled, non-external catalog entry global.models.%s; use the key of an entry of global.models that the gateway serves" $key $key) }}
{{- end }}
{{- end }}
{{- if $bad }}
{{- fail (printf "ERROR: %s" (join "; " $bad)) }}
{{- end }}
{{- range $comp := list "envoy" "ratelimit" }}
{{- $c := index $.Values $comp }}
{{- if le (int $c.terminationGracePeriodSeconds) (int $c.preStopSleepSeconds) }}
{{- fail (printf "ERROR: %s.terminationGracePeriodSeconds (%v) must exceed %s.preStopSleepSeconds (%v): Kubernetes would kill the pod before it stops serving; raise the grace period or lower the sleep" $comp $c.terminationGracePeriodSeconds $comp $c.preStopSleepSeconds) }}
{{- end }}
{{- end }}
{{- range $name, $t := .Values.tiers }}
{{- range $kind := list "tokens" "requests" }}
{{- $w := (index $t $kind).window }}
{{- if not (regexMatch (include "maas-gateway.windowPattern" "") $w) }}
{{- fail (printf "tiers.%s.%s.window: %q is not allowed; use 1s 2s 3s 4s 5s 6s 10s 12s 15s 20s 30s 60s, the same in m, or 1h 2h 3h 4h 6h 8h 12h 24h (windows that divide a minute, hour or day, so counters reset exactly at window bounds)" $name $kind $w) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Enabled catalog entries (global.models) that the gateway serves, as a JSON object <key> -> entry.
An entry without `enabled` counts as enabled, as in the llama-stack chart; an entry marked
`external` (served outside the stack, called by llama-stack directly) is left out.
Usage: {{ include "maas-gateway.catalogEntries" . | fromJson }}
*/}}
{{- define "maas-gateway.catalogEntries" -}}
{{- $out := dict }}
{{- range $key, $m := ((.Values.global).models | default dict) }}
{{- if and $m (ne (toString $m.enabled) "false") (ne (toString $m.external) "true") }}
{{- $_ := set $out $key $m }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
The gateway's routing table, generated into the Lua preamble: public id -> {cluster, served
model name, catalog key (llama-stack's provider id, which names the model `<key>/<id>`), allowed tiers (absent: all), catalog metadata for /v1/models, token weights (cost:
input, output; default 1), model budgets (limits: rpm, tpm, tiers.<tier>.tpm; absent: none)}. A catalog entry's
cluster is maas_model_<key> when routing.upstreams names it, else the default maas_upstream.
Usage: {{ include "maas-gateway.routingTable" . | fromJson }}
*/}}
{{- define "maas-gateway.routingTable" -}}
{{- $out := dict }}
{{- range $key, $m := (include "maas-gateway.catalogEntries" . | fromJson) }}
{{- $meta := dict }}
{{- range $field := list "displayName" "description" "category" "contextLength" "capabilities" "supportsStreaming" "availability" }}
{{- if hasKey $m $field }}{{ $_ := set $meta $field (get $m $field) }}{{ end }}
{{- end }}
{{- $entry := dict "cluster" (ternary (printf "maas_model_%s" $key) "maas_upstream" (hasKey ($.Values.routing.upstreams | default dict) $key)) "served" ($m.upstreamModel | default $m.id) "key" $key "meta" $meta }}
{{- if hasKey $m "tiers" }}{{ $_ := set $entry "tiers" $m.tiers }}{{ end }}
{{- $cost := $m.tokenCost | default dict }}
{{- $_ := set $entry "cost" (dict "input" (ternary 1 $cost.input (not (hasKey $cost "input"))) "output" (ternary 1 $cost.output (not (hasKey $cost "output")))) }}
{{- with $m.limits }}
{{- $limits := dict }}
{{- if hasKey . "rpm" }}{{ $_ := set $limits "rpm" (int .rpm) }}{{ end }}
{{- if hasKey . "tpm" }}{{ $_ := set $limits "tpm" (int .tpm) }}{{ end }}
{{- $perTier := dict }}
{{- range $t, $l := (.tiers | default dict) }}{{ $_ := set $perTier $t (dict "tpm" (int $l.tpm)) }}{{ end }}
{{- if $perTier }}{{ $_ := set $limits "tiers" $perTier }}{{ end }}
{{- if $limits }}{{ $_ := set $entry "limits" $limits }}{{ end }}
{{- end }}
{{- $_ := set $out $m.id $entry }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{- define "maas-gateway.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Name of the kubernetes.io/tls Secret the gateway listener serves HTTPS with; empty for plain HTTP.
Usage: {{ include "maas-gateway.tlsSecret" . }}
*/}}
{{- define "maas-gateway.tlsSecret" -}}
{{- if .Values.envoy.tls.existingSecret }}
{{- .Values.envoy.tls.existingSecret }}
{{- else if .Values.envoy.tls.certificate }}
{{- printf "%s-tls" (include "maas-gateway.fullname" .) }}
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

{{/*
The usage metrics: Envoy's stats access loggers (envoy.access_loggers.stats), run when each metered
call ends (aborted streams included). They read what the Lua step wrote into maas.meter (see
"Metering" in files/gateway.lua) and the identity in maas. Series are named after the OpenTelemetry
GenAI conventions where one fits; Envoy exports them as envoy_maas_<name>. The user label is the
key's user name (never the key), or "all" with metrics.userLabel false.
*/}}
{{- define "maas-gateway.meteringLoggers" -}}
{{- $user := ternary "%DYNAMIC_METADATA(maas:user)%" "all" .Values.metrics.userLabel -}}
{{- $who := list (dict "name" "user" "value_format" $user) (dict "name" "tier" "value_format" "%DYNAMIC_METADATA(maas:tier)%") (dict "name" "model" "value_format" "%DYNAMIC_METADATA(maas.meter:model)%") -}}
# Every metered call: its tokens (input and output), its weighted charge, its status.
- name: envoy.access_loggers.stats
  filter: {{ include "maas-gateway.meterPresent" "model" }}
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.stats.v3.Config
    stat_prefix: maas
    counters:
    - stat:
        name: gen_ai_client_token_usage
        tags: {{ concat $who (list (dict "name" "token_type" "value_format" "input")) | toJson }}
      value_format: "%DYNAMIC_METADATA(maas.meter:input)%"
    - stat:
        name: gen_ai_client_token_usage
        tags: {{ concat $who (list (dict "name" "token_type" "value_format" "output")) | toJson }}
      value_format: "%DYNAMIC_METADATA(maas.meter:output)%"
    - stat:
        name: tokens_charged
        tags: {{ $who | toJson }}
      value_format: "%DYNAMIC_METADATA(maas.usage:charged)%"
    - stat:
        name: requests
        tags: {{ concat $who (list (dict "name" "code" "value_format" "%RESPONSE_CODE%")) | toJson }}
      value_fixed: 1
# Refused calls, by the budget or rule that refused them.
- name: envoy.access_loggers.stats
  filter: {{ include "maas-gateway.meterPresent" "refused" }}
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.stats.v3.Config
    stat_prefix: maas
    counters:
    - stat:
        name: refusals
        tags: {{ concat $who (list (dict "name" "budget" "value_format" "%DYNAMIC_METADATA(maas.meter:refused)%")) | toJson }}
      value_fixed: 1
# Answered calls (2xx from the model server): how long they took and how soon the first byte of the
# answer came (for a stream, its first chunk).
- name: envoy.access_loggers.stats
  filter: {{ include "maas-gateway.meterPresent" "served" }}
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.stats.v3.Config
    stat_prefix: maas
    histograms:
    - stat:
        name: gen_ai_server_request_duration
        tags: [{name: model, value_format: "%DYNAMIC_METADATA(maas.meter:model)%"}]
      unit: Milliseconds
      value_format: "%DURATION%"
    - stat:
        name: gen_ai_server_time_to_first_token
        tags: [{name: model, value_format: "%DYNAMIC_METADATA(maas.meter:model)%"}]
      unit: Milliseconds
      value_format: "%COMMON_DURATION(DS_RX_BEG:US_RX_BODY_BEG:ms)%"
{{- end }}

{{/* An access log filter: the Lua step set maas.meter:<key>. */}}
{{- define "maas-gateway.meterPresent" -}}
{metadata_filter: {matcher: {filter: maas.meter, path: [{key: {{ . }}}], value: {present_match: true}}, match_if_key_not_found: false}}
{{- end }}

{{/*
A model call's tier budgets, per route (typed_per_filter_config entries): one request counted, the
tokens checked before the call (hits_addend 0) and charged at end of stream with the usage the Lua
step read. The descriptors are the anchors of the /v1/models route in envoy-configmap.yaml.
Usage: {{ include "maas-gateway.tierBudgets" . | nindent <n> }}
*/}}
{{- define "maas-gateway.tierBudgets" -}}
maas.ratelimit.requests:
  "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute
  rate_limits:
  - actions: *requests_descriptor
    hits_addend: {number: 1}
maas.ratelimit.tokens:
  "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute
  rate_limits:
  - actions: *tokens_descriptor
    hits_addend: {number: 0}
  - actions: *tokens_descriptor
    apply_on_stream_done: true
    hits_addend: {format: "%DYNAMIC_METADATA(maas.usage:charged)%"}
{{- end }}
