{{/* The chart name, or nameOverride. */}}
{{- define "proxychain.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name: "<release>-<chart>", or just the release name when it
already contains the chart name. Kept at 52 characters so suffixes such as "-webhook-ca"
stay within the 63 that labels and Service names allow.
*/}}
{{- define "proxychain.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "proxychain.selectorLabels" -}}
app.kubernetes.io/name: {{ include "proxychain.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "proxychain.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "proxychain.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "proxychain.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "proxychain.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "proxychain.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "proxychain.sidecarImage" -}}
{{- $repo := .Values.sidecar.image.repository }}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.sidecar.image.tag }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}

{{/*
The cluster's DNS resolvers for --cluster-dns, comma-separated: clusterDNS, else the
ClusterIPs of kube-system/kube-dns, which lookup finds on install and upgrade only (not
under helm template); empty when neither says.
*/}}
{{- define "proxychain.clusterDNS" -}}
{{- if .Values.clusterDNS }}
{{- join "," .Values.clusterDNS }}
{{- else }}
{{- with lookup "v1" "Service" "kube-system" "kube-dns" }}
{{- without (.spec.clusterIPs | default (list .spec.clusterIP)) "" "None" | join "," }}
{{- end }}
{{- end }}
{{- end }}

{{/* The webhook Service; the manager's serving certificate is issued for its DNS names. */}}
{{- define "proxychain.webhookServiceName" -}}
{{- printf "%s-webhook" (include "proxychain.fullname" .) }}
{{- end }}

{{/*
The webhook configurations have fixed names: the manager's RBAC, generated from the
markers in controllers/, lets it patch the caBundle of these two and of no other. Like
the CRD, they are cluster-wide, so a cluster holds one release of this chart.
*/}}
{{- define "proxychain.mutatingWebhookConfigurationName" -}}
proxychain-mutating-webhook-configuration
{{- end }}

{{- define "proxychain.validatingWebhookConfigurationName" -}}
proxychain-validating-webhook-configuration
{{- end }}

{{- define "proxychain.certificateName" -}}
{{- printf "%s-webhook" (include "proxychain.fullname" .) }}
{{- end }}

{{- define "proxychain.certSecretName" -}}
{{- printf "%s-webhook-cert" (include "proxychain.fullname" .) }}
{{- end }}

{{/*
The namespaces the webhooks never see, as a YAML list: kube-system (its pods must start
even while the operator is down) and the operator's own (the operator must never wait on
itself), plus webhook.excludeNamespaces.
*/}}
{{- define "proxychain.excludedNamespaces" -}}
{{- $excluded := concat (list "kube-system" .Release.Namespace) .Values.webhook.excludeNamespaces | uniq }}
{{- range $excluded }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/* The webhook Service reference shared by both configurations. */}}
{{- define "proxychain.webhookClientConfig" -}}
clientConfig:
  service:
    name: {{ include "proxychain.webhookServiceName" .root }}
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: 443
{{- end }}
