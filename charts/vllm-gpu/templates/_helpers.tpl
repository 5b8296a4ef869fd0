{{/* Chart name, truncated to the DNS label limit. */}}
{{- define "vllm-gpu.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-vllm-gpu unless the release name already contains the chart name. */}}
{{- define "vllm-gpu.fullname" -}}
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

{{- define "vllm-gpu.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable across upgrades, never include the chart version. */}}
{{- define "vllm-gpu.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vllm-gpu.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: model-server
{{- end }}

{{- define "vllm-gpu.labels" -}}
helm.sh/chart: {{ include "vllm-gpu.chart" . }}
{{ include "vllm-gpu.selectorLabels" . }}
app.kubernetes.io/version: {{ include "vllm-gpu.appVersion" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rag
{{- end }}

{{/* Version label: the tag of the image actually deployed. */}}
{{- define "vllm-gpu.appVersion" -}}
{{- if eq .Values.mode "simulator" }}{{ .Values.simulator.image.tag }}{{ else }}{{ include "vllm-gpu.vllmTag" . }}{{ end }}
{{- end }}

{{/*
Preset table. Each preset carries the image tag it was validated with, extra env and vLLM flags.
Why t4: Turing (sm_75) has no FlashAttention and no bf16, and vLLM's V1 engine does not support it;
v0.10.1.1 is the last line that still ships the V0 engine with the xFormers backend and already has
--enable-force-include-usage. CUDA graphs are disabled (--enforce-eager) to fit 16 GB.
On NVIDIA the attention backend is what matters: VLLM_USE_V1=0 keeps the V0 engine, and
VLLM_ATTENTION_BACKEND=XFORMERS pins the backend vLLM's CUDA platform falls back to below sm_80
(vllm/platforms/cuda.py, get_attn_backend_cls: "Cannot use FlashAttention-2 backend for Volta and
Turing GPUs"). VLLM_USE_TRITON_FLASH_ATTN is not set: only the ROCm backends read it
(vllm/attention/backends/rocm_flash_attn.py, MLA prefill under is_hip).
*/}}
{{- define "vllm-gpu.preset" -}}
{{- $p := .Values.preset -}}
{{- if eq $p "t4" }}
tag: v0.10.1.1
env:
  VLLM_USE_V1: "0"
  VLLM_ATTENTION_BACKEND: XFORMERS
args:
  - --enforce-eager
  - --dtype=float16
  - --max-model-len=4096
  - --max-num-seqs=32
  - --gpu-memory-utilization=0.90
{{- else if eq $p "a100" }}
tag: v0.11.0
env: {}
args:
  - --dtype=bfloat16
  - --max-model-len=32768
  - --max-num-seqs=256
  - --gpu-memory-utilization=0.90
  - --enable-prefix-caching
{{- else if eq $p "h100" }}
tag: v0.11.0
env: {}
args:
  - --dtype=bfloat16
  - --max-model-len=32768
  - --max-num-seqs=512
  - --gpu-memory-utilization=0.92
  - --enable-prefix-caching
{{- else }}
tag: v0.11.0
env: {}
args: []
{{- end }}
{{- end }}

{{- define "vllm-gpu.vllmTag" -}}
{{- $preset := include "vllm-gpu.preset" . | fromYaml }}
{{- default $preset.tag .Values.image.tag }}
{{- end }}

{{- define "vllm-gpu.servedName" -}}
{{- if eq .Values.mode "simulator" }}{{ .Values.simulator.model }}{{ else }}{{ default .Values.model.name .Values.model.servedName }}{{ end }}
{{- end }}

{{/* Name of the Secret holding the HF token, empty when there is none. */}}
{{- define "vllm-gpu.hfTokenSecretName" -}}
{{- if .Values.hfToken.secretRef.name }}{{ tpl .Values.hfToken.secretRef.name . }}{{ else if .Values.hfToken.value }}{{ include "vllm-gpu.fullname" . }}-hf-token{{ end }}
{{- end }}

{{- define "vllm-gpu.hfTokenSecretKey" -}}
{{- if .Values.hfToken.secretRef.name }}{{ .Values.hfToken.secretRef.key }}{{ else }}token{{ end }}
{{- end }}

{{- define "vllm-gpu.cacheClaimName" -}}
{{- default (printf "%s-hf-cache" (include "vllm-gpu.fullname" .)) .Values.cache.persistence.existingClaim }}
{{- end }}

{{/*
A pod or container securityContext: "secContext" with "overrides" (optional) merged over it,
minus runAsUser, runAsGroup and fsGroup on OpenShift, whose restricted-v2 SCC assigns those
from the namespace's range (bitnami's common.compatibility.renderSecurityContext).
global.compatibility.openshift.adaptSecurityContext: auto (drop them when the cluster serves
security.openshift.io/v1), force (always drop them), disabled (keep them).
Usage: {{ include "vllm-gpu.securityContext" (dict "secContext" .Values.podSecurityContext "overrides" .Values.test.podSecurityContext "context" $) }}
*/}}
{{- define "vllm-gpu.securityContext" -}}
{{- $sc := merge (deepCopy (.overrides | default dict)) (deepCopy (.secContext | default dict)) -}}
{{- $mode := (((.context.Values.global).compatibility).openshift).adaptSecurityContext | default "auto" -}}
{{- if or (eq $mode "force") (and (eq $mode "auto") (.context.Capabilities.APIVersions.Has "security.openshift.io/v1")) -}}
{{- $sc = omit $sc "runAsUser" "runAsGroup" "fsGroup" -}}
{{- end -}}
{{- toYaml $sc -}}
{{- end -}}
