package helm

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

func TestLint(t *testing.T) {
	requireTools(t)
	for name, flags := range map[string][]string{
		"defaults":     nil,
		"cert-manager": {"--set", "certManager.enabled=true", "--set", "sidecar.uid=2000", "--set", "metrics.enabled=false"},
	} {
		t.Run(name, func(t *testing.T) {
			out := helm(t, append([]string{"lint", "--strict", chart}, flags...)...)
			if !bytes.Contains(out, []byte("1 chart(s) linted, 0 chart(s) failed")) {
				t.Fatalf("helm lint:\n%s", out)
			}
		})
	}
}

// TestKubeVersion checks that bin/helm reports Kubernetes 1.37: the chart requires
// >=1.35, which a helm built without the version ldflags (1.20) refuses.
func TestKubeVersion(t *testing.T) {
	requireTools(t)
	// A chart that prints what helm tells templates about the cluster.
	probe := t.TempDir()
	for name, content := range map[string]string{
		"Chart.yaml":             "apiVersion: v2\nname: probe\nversion: 0.0.1\n",
		"templates/version.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\ndata: {version: {{ .Capabilities.KubeVersion.Version | quote }}}\n",
	} {
		path := filepath.Join(probe, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cm := parse(t, helm(t, "template", "probe", probe)).find(t, "ConfigMap", "probe")
	if v, _, _ := unstructured.NestedString(cm.Object, "data", "version"); !strings.HasPrefix(v, "v1.37.") {
		t.Errorf("bin/helm reports Kubernetes %q, want v1.37.x: rebuild it with hack/build-tools.sh helm", v)
	}
	template(t) // passes only if helm's own Kubernetes version satisfies kubeVersion
	_, err := run(nil, helmBin, "template", releaseName, chart, "--kube-version", "1.34.0")
	if err == nil || !strings.Contains(err.Error(), "chart requires kubeVersion: >=1.35.0-0") {
		t.Fatalf("helm template --kube-version 1.34.0: want the chart's kubeVersion refused, got %v", err)
	}
}

// TestChartCopiesGenerated checks that the chart's CRD and RBAC rules are the generated
// ones (make manifests copies them).
func TestChartCopiesGenerated(t *testing.T) {
	for _, c := range []struct{ generated, chartCopy string }{
		{"config/crd/bases/proxychain.io_proxychains.yaml", "charts/proxychain/crds/proxychain.io_proxychains.yaml"},
		{"config/rbac/role.yaml", "charts/proxychain/files/manager-role.yaml"},
	} {
		want, err := os.ReadFile(filepath.Join(root, c.generated))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, c.chartCopy))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s: run make manifests", c.chartCopy, c.generated)
		}
	}
}

func TestTemplateDefaults(t *testing.T) {
	requireTools(t)
	m := parse(t, template(t, "--include-crds"))

	t.Run("crd", func(t *testing.T) {
		m.find(t, "CustomResourceDefinition", "proxychains.proxychain.io")
	})

	t.Run("deployment", func(t *testing.T) {
		d := typed[appsv1.Deployment](t, m.find(t, "Deployment", fullname))
		if d.Namespace != releaseNamespace {
			t.Errorf("namespace %q, want %q", d.Namespace, releaseNamespace)
		}
		pod := d.Spec.Template.Spec
		if pod.ServiceAccountName != fullname {
			t.Errorf("serviceAccountName %q, want %q", pod.ServiceAccountName, fullname)
		}
		if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
			psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", psc)
		}
		if len(pod.Containers) != 1 {
			t.Fatalf("%d containers, want 1", len(pod.Containers))
		}
		c := pod.Containers[0]
		if c.Image != "ghcr.io/proxychain/proxychain:0.1.0" {
			t.Errorf("image %q, want the chart's appVersion tag", c.Image)
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("container securityContext %+v: want read-only root, no privilege escalation, all capabilities dropped", sc)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("liveness probe %+v, want GET /healthz", c.LivenessProbe)
		}
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("readiness probe %+v, want GET /readyz", c.ReadinessProbe)
		}
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("resources %+v: want a memory request and limit", c.Resources)
		}
		var podNamespace *corev1.EnvVar
		for i := range c.Env {
			if c.Env[i].Name == "POD_NAMESPACE" {
				podNamespace = &c.Env[i]
			}
		}
		if podNamespace == nil || podNamespace.ValueFrom == nil || podNamespace.ValueFrom.FieldRef == nil ||
			podNamespace.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
			t.Errorf("POD_NAMESPACE %+v: want the downward API's metadata.namespace", podNamespace)
		}
		wantArgs(t, c.Args,
			"--leader-elect=true",
			"--enable-webhooks=true",
			"--cert-mode=self-signed",
			"--webhook-cert-dir=/tmp/k8s-webhook-server/serving-certs",
			"--webhook-service-name="+fullname+"-webhook",
			"--mutating-webhook-configuration=proxychain-mutating-webhook-configuration",
			"--validating-webhook-configuration=proxychain-validating-webhook-configuration",
			"--sidecar-image=ghcr.io/proxychain/proxychain-sidecar:0.1.0",
			"--sidecar-uid=1337",
			"--sidecar-log-level=info",
			"--sidecar-cpu-request=50m",
			"--sidecar-memory-request=32Mi",
			"--sidecar-memory-limit=128Mi",
		)
		// helm template cannot look the kube-dns Service up: no resolvers, and the
		// manager warns (TestCluster checks the lookup).
		for _, a := range c.Args {
			if strings.HasPrefix(a, "--cluster-dns") {
				t.Errorf("%s under helm template with clusterDNS empty", a)
			}
		}
		// Self-signed: the manager writes its certificates into a writable emptyDir.
		certs := volume(t, pod, "webhook-certs")
		if certs.EmptyDir == nil {
			t.Errorf("webhook-certs volume %+v: want an emptyDir for the manager's own certificates", certs.VolumeSource)
		}
	})

	t.Run("webhooks", func(t *testing.T) {
		mwc := typed[admissionv1.MutatingWebhookConfiguration](t, m.find(t, "MutatingWebhookConfiguration", "proxychain-mutating-webhook-configuration"))
		vwc := typed[admissionv1.ValidatingWebhookConfiguration](t, m.find(t, "ValidatingWebhookConfiguration", "proxychain-validating-webhook-configuration"))
		for _, obj := range []metav1.Object{mwc, vwc} {
			if _, ok := obj.GetAnnotations()["cert-manager.io/inject-ca-from"]; ok {
				t.Errorf("%s: cert-manager annotation without certManager.enabled", obj.GetName())
			}
		}
		for _, w := range webhooksOf(mwc, vwc) {
			checkWebhook(t, w)
			if len(w.clientConfig.CABundle) != 0 {
				t.Errorf("%s: caBundle is set; the manager (or cert-manager) fills it in", w.name)
			}
		}
		inj := mwc.Webhooks[0]
		if inj.Name != "mpod.proxychain.io" || inj.ClientConfig.Service == nil || *inj.ClientConfig.Service.Path != "/mutate-v1-pod" {
			t.Errorf("injector %s at %+v, want mpod.proxychain.io at /mutate-v1-pod", inj.Name, inj.ClientConfig.Service)
		}
		if len(inj.MatchConditions) != 1 || !strings.Contains(inj.MatchConditions[0].Expression, "'proxychain.io/chain' in object.metadata.annotations") {
			t.Errorf("injector matchConditions %+v: want only pods with the proxychain.io/chain annotation", inj.MatchConditions)
		}
	})

	t.Run("webhooks match the markers", func(t *testing.T) {
		// config/webhook/manifests.yaml is controller-gen's output from the
		// +kubebuilder:webhook markers; the chart must serve the same webhooks.
		raw, err := os.ReadFile(filepath.Join(root, "config", "webhook", "manifests.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		generated := parse(t, raw)
		for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
			for _, g := range generated.ofKind(kind) {
				want := webhooksOf(typedAny(t, g)...)
				got := webhooksOf(typedAny(t, m.ofKind(kind)...)...)
				for _, w := range want {
					i := slices.IndexFunc(got, func(c webhook) bool { return c.name == w.name })
					if i < 0 {
						t.Errorf("the chart has no %s webhook %s", kind, w.name)
						continue
					}
					compareWebhook(t, got[i], w)
				}
			}
		}
	})

	t.Run("service", func(t *testing.T) {
		svc := typed[corev1.Service](t, m.find(t, "Service", fullname+"-webhook"))
		d := typed[appsv1.Deployment](t, m.find(t, "Deployment", fullname))
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("webhook Service selector %v does not select the manager's pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.String() != "webhook-server" {
			t.Errorf("webhook Service ports %+v, want 443 -> webhook-server", svc.Spec.Ports)
		}
	})

	t.Run("rbac", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join(root, "config", "rbac", "role.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		generated := typed[rbacv1.ClusterRole](t, parse(t, raw).find(t, "ClusterRole", "proxychain-manager-role"))
		role := typed[rbacv1.ClusterRole](t, m.find(t, "ClusterRole", fullname+"-manager"))
		if !reflect.DeepEqual(role.Rules, generated.Rules) {
			t.Errorf("the chart's manager ClusterRole rules differ from config/rbac/role.yaml:\n got %+v\nwant %+v", role.Rules, generated.Rules)
		}
		checkNoWildcards(t, m)
		binding := typed[rbacv1.ClusterRoleBinding](t, m.find(t, "ClusterRoleBinding", fullname+"-manager"))
		wantSubject := rbacv1.Subject{Kind: "ServiceAccount", Name: fullname, Namespace: releaseNamespace}
		if binding.RoleRef.Name != role.Name || !slices.Equal(binding.Subjects, []rbacv1.Subject{wantSubject}) {
			t.Errorf("manager binding %+v -> %+v, want %s -> %+v", binding.Subjects, binding.RoleRef, role.Name, wantSubject)
		}
		le := typed[rbacv1.Role](t, m.find(t, "Role", fullname+"-leader-election"))
		if le.Namespace != releaseNamespace {
			t.Errorf("leader election Role in %q, want the release namespace", le.Namespace)
		}
		m.find(t, "ServiceAccount", fullname)
	})

	t.Run("no cert-manager objects", func(t *testing.T) {
		for _, kind := range []string{"Issuer", "Certificate"} {
			if objs := m.ofKind(kind); len(objs) > 0 {
				t.Errorf("%d %s objects without certManager.enabled", len(objs), kind)
			}
		}
	})
}

// TestTemplateNonDefault renders with cert-manager, another UID and other resources.
func TestTemplateNonDefault(t *testing.T) {
	requireTools(t)
	m := parse(t, template(t,
		"--set", "certManager.enabled=true",
		"--set", "sidecar.uid=2000",
		"--set", "sidecar.logLevel=debug",
		"--set", "sidecar.resources.requests.cpu=100m",
		"--set", "sidecar.resources.limits.memory=256Mi",
		"--set", "sidecar.image.repository=example.com/sidecar",
		"--set", "sidecar.image.tag=v9",
		"--set", "image.tag=v2",
		"--set", "manager.resources.limits.memory=512Mi",
		"--set", "webhook.timeoutSeconds=3",
		"--set", "webhook.excludeNamespaces={monitoring}",
		"--set-string", "webhook.podSelector.proxychain\\.io/inject=true",
		"--set", "metrics.enabled=false",
		"--set", "clusterDNS={169.254.20.10,fd00:10:96::a}",
	))

	d := typed[appsv1.Deployment](t, m.find(t, "Deployment", fullname))
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "ghcr.io/proxychain/proxychain:v2" {
		t.Errorf("image %q, want the v2 tag", c.Image)
	}
	wantArgs(t, c.Args,
		"--cert-mode=external",
		"--sidecar-uid=2000",
		"--sidecar-log-level=debug",
		"--sidecar-image=example.com/sidecar:v9",
		"--sidecar-cpu-request=100m",
		"--sidecar-memory-limit=256Mi",
		"--metrics-bind-address=0",
		"--cluster-dns=169.254.20.10,fd00:10:96::a",
	)
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--webhook-cert-secret=") {
			t.Errorf("%s with cert-manager: the manager keeps no certificate Secret of its own then", a)
		}
	}
	if got := c.Resources.Limits[corev1.ResourceMemory]; got.Cmp(resource.MustParse("512Mi")) != 0 {
		t.Errorf("manager memory limit %s, want 512Mi", got.String())
	}
	certs := volume(t, d.Spec.Template.Spec, "webhook-certs")
	if certs.Secret == nil || certs.Secret.SecretName != fullname+"-webhook-cert" {
		t.Errorf("webhook-certs volume %+v: want cert-manager's Secret %s-webhook-cert", certs.VolumeSource, fullname)
	}

	cert := m.find(t, "Certificate", fullname+"-webhook")
	dnsNames, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	wantDNS := []string{fullname + "-webhook." + releaseNamespace + ".svc", fullname + "-webhook." + releaseNamespace + ".svc.cluster.local"}
	if !slices.Equal(dnsNames, wantDNS) {
		t.Errorf("Certificate dnsNames %v, want %v", dnsNames, wantDNS)
	}
	issuer, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "name")
	m.find(t, "Issuer", issuer)
	secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	if secretName != fullname+"-webhook-cert" {
		t.Errorf("Certificate secretName %q, want the volume's", secretName)
	}

	mwc := typed[admissionv1.MutatingWebhookConfiguration](t, m.find(t, "MutatingWebhookConfiguration", "proxychain-mutating-webhook-configuration"))
	vwc := typed[admissionv1.ValidatingWebhookConfiguration](t, m.find(t, "ValidatingWebhookConfiguration", "proxychain-validating-webhook-configuration"))
	for _, obj := range []metav1.Object{mwc, vwc} {
		if got, want := obj.GetAnnotations()["cert-manager.io/inject-ca-from"], releaseNamespace+"/"+fullname+"-webhook"; got != want {
			t.Errorf("%s: inject-ca-from %q, want %q", obj.GetName(), got, want)
		}
	}
	for _, w := range webhooksOf(mwc, vwc) {
		checkWebhook(t, w)
		if *w.timeoutSeconds != 3 {
			t.Errorf("%s: timeoutSeconds %d, want 3", w.name, *w.timeoutSeconds)
		}
		if !excludes(w.namespaceSelector, "monitoring") {
			t.Errorf("%s: namespaceSelector %s does not exclude monitoring", w.name, show(w.namespaceSelector))
		}
	}
	if sel := mwc.Webhooks[0].ObjectSelector; sel == nil || sel.MatchLabels["proxychain.io/inject"] != "true" {
		t.Errorf("injector objectSelector %+v, want proxychain.io/inject=true", sel)
	}
	for _, kind := range []string{"ClusterRole", "ClusterRoleBinding", "Service"} {
		for _, u := range m.ofKind(kind) {
			if strings.Contains(u.GetName(), "metrics") {
				t.Errorf("%s %s with metrics.enabled=false", kind, u.GetName())
			}
		}
	}
}

// TestSchemaRejects checks that values.schema.json refuses values that would make an
// unsafe or broken install.
func TestSchemaRejects(t *testing.T) {
	requireTools(t)
	for _, c := range []struct {
		set, want string
	}{
		{"sidecar.uid=0", "/sidecar/uid"},
		{"sidecar.uid=65532", "/sidecar/uid"},
		{"webhook.timeoutSeconds=10", "/webhook/timeoutSeconds"},
		{"sidecar.logLevel=verbose", "/sidecar/logLevel"},
		{"sidecar.ports.socks=1080", "/sidecar/ports/socks"},
		{"sidecar.resources.limits.memory=lots", "/sidecar/resources/limits/memory"},
		{"certManager.issuerRef.kind=Vault", "/certManager/issuerRef/kind"},
		{"webhook.excludeNamespaces={Not_A_Namespace}", "/webhook/excludeNamespaces/0"},
		{"clusterDNS={10.96.0.10,kube-dns}", "/clusterDNS/1"},
		{"clusterDNS={10.96.0.0/12}", "/clusterDNS/0"},
		{"unknownKey=1", "unknownKey"},
	} {
		t.Run(c.set, func(t *testing.T) {
			_, err := run(nil, helmBin, "template", releaseName, chart, "--set", c.set)
			if err == nil || !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("helm template --set %s: want a schema error at %s, got %v", c.set, c.want, err)
			}
		})
	}
}

// TestKustomize checks that the kustomize trees build with kubectl's kustomize.
func TestKustomize(t *testing.T) {
	requireTools(t)
	m := parse(t, mustRun(t, nil, kubectl, "kustomize", filepath.Join(root, "config", "default")))
	for _, w := range webhooksOf(typedAny(t, append(m.ofKind("MutatingWebhookConfiguration"), m.ofKind("ValidatingWebhookConfiguration")...)...)...) {
		checkWebhook(t, w)
	}
	d := typed[appsv1.Deployment](t, m.find(t, "Deployment", "proxychain-controller-manager"))
	wantArgs(t, d.Spec.Template.Spec.Containers[0].Args, "--cert-mode=external")

	samples := parse(t, mustRun(t, nil, kubectl, "kustomize", filepath.Join(root, "config", "samples")))
	for _, name := range []string{"transit", "us-exit"} {
		samples.find(t, "ProxyChain", name)
	}
}

func mustRun(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	out, err := run(stdin, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantArgs(t *testing.T, args []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(args, w) {
			t.Errorf("manager args %q lack %q", args, w)
		}
	}
}

func volume(t *testing.T, pod corev1.PodSpec, name string) corev1.Volume {
	t.Helper()
	for _, v := range pod.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %q", name)
	return corev1.Volume{}
}

// webhook is what mutating and validating webhooks share.
type webhook struct {
	name               string
	clientConfig       admissionv1.WebhookClientConfig
	rules              []admissionv1.RuleWithOperations
	failurePolicy      *admissionv1.FailurePolicyType
	sideEffects        *admissionv1.SideEffectClass
	timeoutSeconds     *int32
	admissionVersions  []string
	namespaceSelector  *metav1.LabelSelector
	matchConditions    []admissionv1.MatchCondition
	reinvocationPolicy *admissionv1.ReinvocationPolicyType
}

func webhooksOf(configs ...any) []webhook {
	var out []webhook
	for _, c := range configs {
		switch c := c.(type) {
		case *admissionv1.MutatingWebhookConfiguration:
			for _, w := range c.Webhooks {
				out = append(out, webhook{w.Name, w.ClientConfig, w.Rules, w.FailurePolicy, w.SideEffects,
					w.TimeoutSeconds, w.AdmissionReviewVersions, w.NamespaceSelector, w.MatchConditions, w.ReinvocationPolicy})
			}
		case *admissionv1.ValidatingWebhookConfiguration:
			for _, w := range c.Webhooks {
				out = append(out, webhook{w.Name, w.ClientConfig, w.Rules, w.FailurePolicy, w.SideEffects,
					w.TimeoutSeconds, w.AdmissionReviewVersions, w.NamespaceSelector, w.MatchConditions, nil})
			}
		}
	}
	return out
}

func typedAny(t *testing.T, objs ...*unstructured.Unstructured) []any {
	t.Helper()
	var out []any
	for _, u := range objs {
		switch u.GetKind() {
		case "MutatingWebhookConfiguration":
			out = append(out, typed[admissionv1.MutatingWebhookConfiguration](t, u))
		case "ValidatingWebhookConfiguration":
			out = append(out, typed[admissionv1.ValidatingWebhookConfiguration](t, u))
		}
	}
	return out
}

// checkWebhook asserts what every webhook of ours must be: fail closed, answer within
// 5 seconds, and never see kube-system or the operator's namespace.
func checkWebhook(t *testing.T, w webhook) {
	t.Helper()
	if w.failurePolicy == nil || *w.failurePolicy != admissionv1.Fail {
		t.Errorf("%s: failurePolicy %s, want Fail", w.name, show(w.failurePolicy))
	}
	if w.timeoutSeconds == nil || *w.timeoutSeconds > 5 || *w.timeoutSeconds < 1 {
		t.Errorf("%s: timeoutSeconds %s, want 1 to 5", w.name, show(w.timeoutSeconds))
	}
	if w.sideEffects == nil || *w.sideEffects != admissionv1.SideEffectClassNone {
		t.Errorf("%s: sideEffects %s, want None", w.name, show(w.sideEffects))
	}
	for _, ns := range []string{"kube-system", releaseNamespace} {
		if !excludes(w.namespaceSelector, ns) {
			t.Errorf("%s: namespaceSelector %s does not exclude %s", w.name, show(w.namespaceSelector), ns)
		}
	}
	if excludes(w.namespaceSelector, "apps") {
		t.Errorf("%s: namespaceSelector %s excludes an ordinary namespace", w.name, show(w.namespaceSelector))
	}
}

// excludes reports whether the namespace selector sel keeps namespace ns (with only its
// kubernetes.io/metadata.name label) from the webhook.
func excludes(sel *metav1.LabelSelector, ns string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return !s.Matches(labels.Set{"kubernetes.io/metadata.name": ns})
}

// compareWebhook compares what the chart must take from the markers as they are.
func compareWebhook(t *testing.T, got, want webhook) {
	t.Helper()
	if got.clientConfig.Service == nil || want.clientConfig.Service == nil ||
		*got.clientConfig.Service.Path != *want.clientConfig.Service.Path {
		t.Errorf("%s: path %+v, want %+v", want.name, got.clientConfig.Service, want.clientConfig.Service)
	}
	// The markers leave scope out (meaning "*"); the chart says Namespaced. Both cover
	// the namespaced kinds these webhooks see.
	gotRules := slices.Clone(got.rules)
	for i := range gotRules {
		gotRules[i].Scope = nil
	}
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"rules", gotRules, want.rules},
		{"failurePolicy", got.failurePolicy, want.failurePolicy},
		{"sideEffects", got.sideEffects, want.sideEffects},
		{"admissionReviewVersions", got.admissionVersions, want.admissionVersions},
		{"matchConditions", got.matchConditions, want.matchConditions},
		{"reinvocationPolicy", got.reinvocationPolicy, want.reinvocationPolicy},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: %s differs from the markers' (config/webhook/manifests.yaml):\n got %s\nwant %s", want.name, c.what, show(c.got), show(c.want))
		}
	}
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// checkNoWildcards fails t for a "*" anywhere in the chart's roles.
func checkNoWildcards(t *testing.T, m manifest) {
	t.Helper()
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, u := range m.ofKind(kind) {
			role := typed[rbacv1.ClusterRole](t, u) // Role and ClusterRole rules have one shape
			for _, r := range role.Rules {
				for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames, r.NonResourceURLs} {
					if slices.ContainsFunc(list, func(s string) bool { return strings.Contains(s, "*") }) {
						t.Errorf("%s %s grants a wildcard: %+v", kind, u.GetName(), r)
					}
				}
			}
		}
	}
}
