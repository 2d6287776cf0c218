{{/* Chart name, truncated to the DNS label limit. */}}
{{- define "flagsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release-name unless the release already contains it. */}}
{{- define "flagsync.fullname" -}}
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

{{- define "flagsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flagsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "flagsync.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "flagsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "flagsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "flagsync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "flagsync.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Fails rendering on values that would produce a broken release. */}}
{{- define "flagsync.validate" -}}
{{- if not (has .Values.mode (list "deployment" "daemonset")) }}
{{- fail (printf "mode must be deployment or daemonset, not %q" .Values.mode) }}
{{- end }}
{{- if not (has .Values.output.volume (list "emptyDir" "hostPath")) }}
{{- fail (printf "output.volume must be emptyDir or hostPath, not %q" .Values.output.volume) }}
{{- end }}
{{- if not (has .Values.podAntiAffinity (list "soft" "hard" "")) }}
{{- fail (printf "podAntiAffinity must be soft, hard or empty, not %q" .Values.podAntiAffinity) }}
{{- end }}
{{- end }}

{{/* The daemon configuration: .Values.config with http.auth files for the token
Secrets of .Values.auth and, with an admin Secret, the Service's names added to
http.allowedHosts (next to the loopback names). */}}
{{- define "flagsync.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $http := (get $cfg "http") | default dict }}
{{- $auth := (get $http "auth") | default dict }}
{{- range $kind := list "read" "admin" }}
{{- $s := get $.Values.auth $kind }}
{{- if $s.secretName }}
{{- $_ := set $auth $kind (dict "files" (list (printf "/etc/flagsync/tokens/%s/%s" $kind $s.key))) }}
{{- end }}
{{- end }}
{{- if .Values.auth.openMetrics }}
{{- $_ := set $auth "openMetrics" true }}
{{- end }}
{{- if $auth }}
{{- $_ := set $http "auth" $auth }}
{{- end }}
{{- if and .Values.auth.admin.secretName (not (hasKey $http "allowedHosts")) }}
{{- $svc := include "flagsync.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- $_ := set $http "allowedHosts" (list "localhost" "127.0.0.1" "::1" $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns)) }}
{{- end }}
{{- $_ := set $cfg "http" $http }}
{{- toYaml $cfg }}
{{- end }}
