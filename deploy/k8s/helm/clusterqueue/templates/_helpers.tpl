{{/*
Names. Kubernetes caps names and label values at 63 characters, so everything derived from the release is cut there.
*/}}
{{- define "clusterqueue.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name: the release name alone when it already says "clusterqueue" (a release called
clusterqueue-prod gives clusterqueue-prod, not clusterqueue-prod-clusterqueue), else release-chart.
*/}}
{{- define "clusterqueue.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "clusterqueue.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "clusterqueue.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: only what never changes for the life of a release, since a Deployment's selector is immutable.
*/}}
{{- define "clusterqueue.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clusterqueue.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "clusterqueue.labels" -}}
helm.sh/chart: {{ include "clusterqueue.chart" . }}
{{ include "clusterqueue.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: clusterqueue
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "clusterqueue.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "clusterqueue.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "clusterqueue.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Whether the chart makes its own Secret: only from values, only without existingSecret, and only when there is
something to put in it (an embedded node may run without an admin token). Any non-empty output means yes.
*/}}
{{- define "clusterqueue.createSecret" -}}
{{- if not .Values.existingSecret }}
{{- if or .Values.adminToken (and (eq .Values.store "postgres") .Values.postgres.connectionString) }}true{{- end }}
{{- end }}
{{- end }}

{{/* The Secret the node's credentials come from, whichever made it. */}}
{{- define "clusterqueue.secretName" -}}
{{- default (include "clusterqueue.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* Key names: the chart's own Secret uses the defaults; an existing one may name its keys differently. */}}
{{- define "clusterqueue.adminTokenKey" -}}
{{- if .Values.existingSecret }}{{ .Values.existingSecretKeys.adminToken }}{{ else }}admin-token{{ end }}
{{- end }}

{{- define "clusterqueue.postgresKey" -}}
{{- if .Values.existingSecret }}{{ .Values.existingSecretKeys.postgresConnectionString }}{{ else }}postgres-connection-string{{ end }}
{{- end }}

{{/*
Combinations the schema cannot express, refused at render time with what to change. The node would refuse most
of them too, but only after the pods are scheduled and crash-looping; here the install fails before anything runs.
*/}}
{{- define "clusterqueue.validate" -}}
{{- if eq .Values.store "sqlite" }}
{{- if ne (int .Values.replicas) 1 }}
{{- fail (printf "store=sqlite runs one embedded node (its SQLite file belongs to one process): set replicas=1 (got %d), or use store=postgres for a cluster of nodes." (int .Values.replicas)) }}
{{- end }}
{{- if .Values.autoscaling.enabled }}
{{- fail "store=sqlite runs one embedded node and cannot be autoscaled: set autoscaling.enabled=false, or use store=postgres." }}
{{- end }}
{{- end }}
{{- if and .Values.existingSecret (or .Values.adminToken .Values.postgres.connectionString) }}
{{- fail "Give the credentials one way: existingSecret, or adminToken and postgres.connectionString for a Secret the chart creates, not both." }}
{{- end }}
{{- if and (eq .Values.store "postgres") (not .Values.existingSecret) }}
{{- $missing := list }}
{{- if not .Values.adminToken }}{{ $missing = append $missing "adminToken" }}{{ end }}
{{- if not .Values.postgres.connectionString }}{{ $missing = append $missing "postgres.connectionString" }}{{ end }}
{{- if $missing }}
{{- fail (printf "store=postgres (a cluster) needs an admin token and a PostgreSQL connection string. Either set existingSecret to a Secret with the keys %q and %q, or set adminToken and postgres.connectionString so the chart creates one (missing: %s)." .Values.existingSecretKeys.adminToken .Values.existingSecretKeys.postgresConnectionString (join ", " $missing)) }}
{{- end }}
{{- end }}
{{- if and (eq .Values.queue "sqs") (eq .Values.sqs.payloadStore "s3") (not .Values.sqs.payloadBucket) }}
{{- fail "sqs.payloadStore=s3 needs sqs.payloadBucket: the S3 bucket (created beforehand, the node never creates it) for message bodies over the SQS size limit." }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas (%d) is above autoscaling.maxReplicas (%d)." (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- $ports := list 8080 (int .Values.cluster.remotingPort) (int .Values.cluster.managementPort) }}
{{- if ne (len (uniq $ports)) 3 }}
{{- fail (printf "cluster.remotingPort (%d), cluster.managementPort (%d) and the HTTP port (8080) must all differ." (int .Values.cluster.remotingPort) (int .Values.cluster.managementPort)) }}
{{- end }}
{{- end }}

{{/*
One HTTP probe from its values block; the port is the container's named port so a probe follows it if it moves.
*/}}
{{- define "clusterqueue.probe" -}}
httpGet:
  path: {{ .path }}
  port: http
initialDelaySeconds: {{ .initialDelaySeconds }}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
{{- if hasKey . "successThreshold" }}
successThreshold: {{ .successThreshold }}
{{- end }}
{{- end }}

{{/*
Cluster mode (store=postgres) finds its members through the Kubernetes API: named ports, RBAC, the headless Service
and the discovery settings render only then. Any non-empty output means yes.
*/}}
{{- define "clusterqueue.kubernetesDiscovery" -}}
{{- if ne .Values.store "sqlite" }}true{{- end }}
{{- end }}

{{/* The node's PodLabelSelector: the selector labels, so discovery lists this release's pods and no other's. */}}
{{- define "clusterqueue.podLabelSelector" -}}
app.kubernetes.io/name={{ include "clusterqueue.name" . }},app.kubernetes.io/instance={{ .Release.Name }}
{{- end }}

{{/* cluster.requiredContactPoints, or a majority of the replicas the cluster starts with. */}}
{{- define "clusterqueue.requiredContactPoints" -}}
{{- if gt (int .Values.cluster.requiredContactPoints) 0 }}
{{- .Values.cluster.requiredContactPoints }}
{{- else }}
{{- $replicas := ternary .Values.autoscaling.minReplicas .Values.replicas .Values.autoscaling.enabled | int }}
{{- max 1 (add (div $replicas 2) 1) }}
{{- end }}
{{- end }}
