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
{{- if and .Values.monitor.enabled (not .Values.secrets.keys.databaseUrl) }}
{{- fail "monitor.enabled needs secrets.keys.databaseUrl (the job reads the audit store)" }}
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
{{- if and .Values.monitor.enabled (not .Values.secrets.keys.databaseUrl) }}
{{- fail "monitor.enabled needs secrets.keys.databaseUrl (the job reads the audit store)" }}
{{- end }}
{{- end }}

{{/*
Refuse at render time what the production profile would refuse at start-up when it is set
explicitly; what is merely missing (issuers, public URL) is reported by NOTES.txt and by the
pod itself, which then never becomes ready.
*/}}
{{- define "hypermarker.validate" -}}
{{- $s := .Values.settings }}
{{- if eq $s.profile "production" }}
{{- if eq $s.authMode "demo" }}
{{- fail "settings.authMode=demo is refused by the production profile" }}
{{- end }}
{{- if $s.allowHttpFhir }}
{{- fail "settings.allowHttpFhir=true is refused by the production profile" }}
{{- end }}
{{- if has "*" $s.corsOrigins }}
{{- fail "settings.corsOrigins=[\"*\"] is refused by the production profile" }}
{{- end }}
{{- if not .Values.secrets.keys.databaseUrl }}
{{- fail "secrets.keys.databaseUrl: the production profile needs a PostgreSQL audit store" }}
{{- end }}
{{- if not .Values.secrets.keys.patientRefKey }}
{{- fail "secrets.keys.patientRefKey: the production profile needs a patient-reference key" }}
{{- end }}
{{- if not .Values.secrets.keys.replayCacheUrl }}
{{- fail "secrets.keys.replayCacheUrl: the production profile needs a shared replay cache" }}
{{- end }}
{{- end }}
{{- if and .Values.monitor.enabled (not .Values.secrets.keys.databaseUrl) }}
{{- fail "monitor.enabled needs secrets.keys.databaseUrl (the job reads the audit store)" }}
{{- end }}
{{- end }}
