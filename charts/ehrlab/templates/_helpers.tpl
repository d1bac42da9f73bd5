{{/* Names, labels and shared pieces of the ehrlab chart. */}}

{{- define "ehrlab.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ehrlab.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* selector labels of one component: (dict "root" $ "component" "controller") */}}
{{- define "ehrlab.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ehrlab.componentLabels" -}}
{{ include "ehrlab.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* the image of a service: (dict "root" $ "service" "trainer") */}}
{{- define "ehrlab.image" -}}
{{- $svc := index .root.Values.services .service -}}
{{- if and $svc $svc.image -}}
{{- $svc.image -}}
{{- else -}}
{{- printf "%s/%s:%s" .root.Values.image.repository .service (.root.Values.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "ehrlab.servicePort" -}}
{{- index (dict "controller" 50051 "result-store" 50052 "data-prep" 50053 "trainer" 50054 "hpo-controller" 50055 "ehr-generator" 50056 "grader" 50057) . -}}
{{- end -}}

{{- define "ehrlab.metricsPort" -}}
{{- index (dict "controller" 9101 "result-store" 9102 "data-prep" 9103 "trainer" 9104 "hpo-controller" 9105 "ehr-generator" 9106 "grader" 9107) . -}}
{{- end -}}

{{- define "ehrlab.configName" -}}{{ include "ehrlab.fullname" . }}-config{{- end -}}
{{- define "ehrlab.taskServiceAccount" -}}{{ .Values.jobs.serviceAccount | default (printf "%s-task" (include "ehrlab.fullname" .)) }}{{- end -}}
{{- define "ehrlab.tokenSecret" -}}{{ .Values.auth.existingSecret | default (printf "%s-token" (include "ehrlab.fullname" .)) }}{{- end -}}
{{- define "ehrlab.s3Secret" -}}{{ .Values.objectStore.existingSecret | default (printf "%s-s3" (include "ehrlab.fullname" .)) }}{{- end -}}
{{- define "ehrlab.tlsSecret" -}}{{ .Values.tls.existingSecret | default (printf "%s-tls" (include "ehrlab.fullname" .)) }}{{- end -}}
{{- define "ehrlab.databaseSecret" -}}
{{- if .Values.postgresql.deploy -}}{{ include "ehrlab.fullname" . }}-database{{- else -}}{{ required "postgresql.externalSecret is required when postgresql.deploy is false" .Values.postgresql.externalSecret }}{{- end -}}
{{- end -}}

{{- define "ehrlab.s3Endpoint" -}}
{{- if .Values.objectStore.deploy -}}{{ include "ehrlab.fullname" . }}-minio:9000{{- else -}}{{ required "objectStore.endpoint is required when objectStore.deploy is false" .Values.objectStore.endpoint }}{{- end -}}
{{- end -}}

{{- define "ehrlab.artifactStore" -}}
s3://{{ .Values.objectStore.bucket }}?endpoint={{ include "ehrlab.s3Endpoint" . }}&secure={{ and (not .Values.objectStore.deploy) .Values.objectStore.secure }}
{{- end -}}

{{- define "ehrlab.pushgateway" -}}
{{- if .Values.pushgateway.deploy -}}http://{{ include "ehrlab.fullname" . }}-pushgateway:9091{{- else -}}{{ .Values.pushgateway.url }}{{- end -}}
{{- end -}}

{{/* envFrom of a service: the credentials it may use, all from Secrets */}}
{{- define "ehrlab.envFrom" -}}
{{- $root := .root -}}
- secretRef: {name: {{ include "ehrlab.s3Secret" $root }}}
{{- if $root.Values.auth.enabled }}
- secretRef: {name: {{ include "ehrlab.tokenSecret" $root }}}
{{- end }}
{{- if (index $root.Values.services .service).database }}
- secretRef: {name: {{ include "ehrlab.databaseSecret" $root }}}
{{- end }}
{{- end -}}

{{/* a value generated once and kept across upgrades: (dict "root" $ "secret" name "key" key "length" n) */}}
{{- define "ehrlab.persistentRandom" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .secret -}}
{{- if and $existing (index $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum (.length | default 32) -}}
{{- end -}}
{{- end -}}
