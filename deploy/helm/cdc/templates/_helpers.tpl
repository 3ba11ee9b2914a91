{{/* Names and labels shared by the chart's objects. */}}
{{- define "cdc.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cdc.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cdc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cdc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cdc.labels" -}}
{{ include "cdc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* platform.yaml: the values' platform settings, with the three keys the
     probes, the Service and the state volume depend on set by the chart. */}}
{{- define "cdc.platform" -}}
{{- $fixed := dict "health_bind" "0.0.0.0" "health_port" (int .Values.healthPort) "state_dir" "/var/lib/cdc" -}}
{{- toYaml (merge $fixed (deepCopy .Values.platform)) -}}
{{- end -}}
