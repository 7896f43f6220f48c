{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "hypermarker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "hypermarker.fullname" -}}
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

{{- define "hypermarker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hypermarker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hypermarker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The service's pods only (not the monitor Job's, not the test pod): Service, PDB, policy. */}}
{{- define "hypermarker.serverSelectorLabels" -}}
{{ include "hypermarker.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "hypermarker.labels" -}}
helm.sh/chart: {{ include "hypermarker.chart" . }}
{{ include "hypermarker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: hypermarker
{{- end }}

{{- define "hypermarker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hypermarker.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "hypermarker.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "hypermarker.secretName" -}}
{{- default (printf "%s-secrets" (include "hypermarker.fullname" .)) .Values.secrets.name }}
{{- end }}

{{/* Environment variable of a Settings field given in camelCase: fhirTimeoutS -> HYPERMARKER_FHIR_TIMEOUT_S */}}
{{- define "hypermarker.envName" -}}
{{- printf "HYPERMARKER_%s" (snakecase . | upper) }}
{{- end }}

{{/* The secret settings, as container env entries (secretKeyRef; never a value). */}}
{{- define "hypermarker.secretEnv" -}}
{{- $secret := include "hypermarker.secretName" . }}
{{- range $setting, $key := .Values.secrets.keys }}
{{- if $key }}
- name: {{ include "hypermarker.envName" $setting }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
{{- end }}
{{- end }}
{{- end }}

{{/* The monitor CronJob's name (a CronJob name leaves 11 characters for the Job suffix). */}}
{{- define "hypermarker.monitorName" -}}
{{- printf "%s-monitor" (include "hypermarker.fullname" .) | trunc 52 | trimSuffix "-" }}
{{- end }}

{{/* Claim of the audit spool: the existing one, the chart's, or "" (an emptyDir). */}}
{{- define "hypermarker.spoolClaim" -}}
{{- if .Values.spool.existingClaim }}
{{- .Values.spool.existingClaim }}
{{- else if .Values.spool.persistence.enabled }}
{{- printf "%s-spool" (include "hypermarker.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Claim of the monitor reports: the existing one, the chart's, or "" (an emptyDir). */}}
{{- define "hypermarker.reportsClaim" -}}
{{- $r := .Values.monitor.reports }}
{{- if $r.existingClaim }}
{{- $r.existingClaim }}
{{- else if $r.persistence.enabled }}
{{- printf "%s-monitor-reports" (include "hypermarker.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* settings with the derived ones filled in: migrateOnStart null -> not migrations.enabled;
with llm.enabled, llmUrl and llmModel name the chart's vLLM. */}}
{{- define "hypermarker.settings" -}}
{{- $s := deepCopy .Values.settings }}
{{- if kindIs "invalid" $s.migrateOnStart }}
{{- $_ := set $s "migrateOnStart" (not .Values.migrations.enabled) }}
{{- end }}
{{- if .Values.llm.enabled }}
{{- $_ := set $s "llmUrl" (printf "http://%s:8000" (include "hypermarker.llmName" .)) }}
{{- $_ := set $s "llmModel" .Values.llm.model.servedName }}
{{- end }}
{{- toJson $s }}
{{- end }}

{{/* The chart's vLLM: its name (Deployment, Service, NetworkPolicy) and its pods' labels. */}}
{{- define "hypermarker.llmName" -}}
{{- printf "%s-vllm" (include "hypermarker.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hypermarker.llmSelectorLabels" -}}
{{ include "hypermarker.selectorLabels" . }}
app.kubernetes.io/component: llm
{{- end }}

{{/* Claim of the vLLM model volume: the existing one or the chart's. */}}
{{- define "hypermarker.llmClaim" -}}
{{- default (printf "%s-model" (include "hypermarker.llmName" .) | trunc 63 | trimSuffix "-") .Values.llm.model.existingClaim }}
{{- end }}

{{/*
What values.schema.json cannot express (it refuses the rest before anything renders: see its
allOf): checks across two values.
*/}}
{{- define "hypermarker.validate" -}}
{{- $s := .Values.settings }}
{{- if .Values.ingress.enabled }}
{{- $url := printf "https://%s" .Values.ingress.host }}
{{- if and $s.publicBaseUrl (ne (trimSuffix "/" $s.publicBaseUrl) $url) (not (hasPrefix (printf "%s/" $url) $s.publicBaseUrl)) }}
{{- fail (printf "settings.publicBaseUrl (%s) must be %s when the Ingress serves ingress.host: JWT audiences and card links use it" $s.publicBaseUrl $url) }}
{{- end }}
{{- end }}
{{- if and .Values.prometheusRule.enabled (not .Values.prometheusRule.skipCrdCheck) (not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/PrometheusRule")) }}
{{- fail "prometheusRule.enabled: this cluster has no monitoring.coreos.com/v1 PrometheusRule (install the Prometheus Operator CRDs first; prometheusRule.skipCrdCheck=true to render without a cluster)" }}
{{- end }}
{{- end }}
