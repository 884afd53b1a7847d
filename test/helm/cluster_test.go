package helm

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/yaml"

	"github.com/proxychain/proxychain/api/v1alpha1"
	"github.com/proxychain/proxychain/controllers"
)

const (
	// appNamespace is an ordinary namespace: the webhooks see it.
	appNamespace = "apps"
	// serviceAccountUser is the chart's ServiceAccount as the API server names it.
	serviceAccountUser = "system:serviceaccount:" + releaseNamespace + ":" + fullname
	sidecarImage       = "ghcr.io/proxychain/proxychain-sidecar:0.1.0"
)

// cluster is a running envtest control plane and what the test needs to talk to it.
type cluster struct {
	env        *envtest.Environment
	admin      client.Client
	kubeconfig string // the admin's, for kubectl and helm
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	if testing.Verbose() {
		ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true)))
	} else {
		ctrllog.SetLogger(logr.Discard())
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		// No webhooks to install: envtest only issues the serving certificate and picks
		// the local host and port; the chart's own configurations are applied below.
		WebhookInstallOptions: envtest.WebhookInstallOptions{LocalServingHost: "127.0.0.1"},
	}
	if _, err := env.Start(); err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	admin, err := env.AddUser(envtest.User{Name: "helm-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{env: env, kubeconfig: filepath.Join(t.TempDir(), "kubeconfig")}
	if err := os.WriteFile(c.kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	c.admin, err = client.New(admin.Config(), client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// kubectl runs bin/k8s/.../kubectl as the admin.
func (c *cluster) kubectl(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	return mustRun(t, stdin, kubectl, append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
}

// TestCluster installs the chart into a real kube-apiserver: a server-side dry run of
// every object, then the CRD, RBAC and webhook configurations for real, with the manager
// running out of cluster as the chart's ServiceAccount. Samples must go Ready, an
// annotated pod must come back injected, and the ServiceAccount may do what the manager
// needs and nothing more.
func TestCluster(t *testing.T) {
	requireCluster(t)
	c := startCluster(t)
	ctx := t.Context()
	for _, ns := range []string{releaseNamespace, appNamespace} {
		c.kubectl(t, nil, "create", "namespace", ns)
	}

	t.Run("dry run", func(t *testing.T) {
		// cert-manager is not installed here; stand-in CRDs let the API server check the
		// Issuer and Certificate as objects of those kinds.
		c.kubectl(t, nil, "apply", "-f", filepath.Join("testdata", "cert-manager-crds.yaml"))
		c.kubectl(t, nil, "wait", "--for=condition=Established", "--timeout=30s",
			"crd/issuers.cert-manager.io", "crd/certificates.cert-manager.io")
		for name, flags := range map[string][]string{
			"defaults":     nil,
			"cert-manager": {"--set", "certManager.enabled=true", "--set", "sidecar.uid=2000"},
		} {
			t.Run(name, func(t *testing.T) {
				rendered := template(t, append([]string{"--include-crds"}, flags...)...)
				out := string(c.kubectl(t, rendered, "apply", "--dry-run=server", "-f", "-"))
				objs := parse(t, rendered)
				if got := strings.Count(out, "(server dry run)"); got != len(objs) {
					t.Fatalf("server dry run accepted %d of %d objects:\n%s", got, len(objs), out)
				}
			})
		}
	})

	t.Run("notes", func(t *testing.T) {
		out := string(helm(t, "install", releaseName, chart, "--namespace", releaseNamespace,
			"--kubeconfig", c.kubeconfig, "--dry-run=server"))
		for _, want := range []string{"proxychain.io/chain: <chain>", "UID 1337", "kube-system, " + releaseNamespace,
			// No kube-dns Service yet.
			"WARNING: no cluster DNS resolvers"} {
			if !strings.Contains(out, want) {
				t.Errorf("NOTES lack %q:\n%s", want, out)
			}
		}
	})

	t.Run("cluster DNS from kube-dns", func(t *testing.T) {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP},
			}},
		}
		if err := c.admin.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := c.admin.Delete(context.Background(), svc); err != nil {
				t.Errorf("delete kube-dns: %v", err)
			}
		})
		if len(svc.Spec.ClusterIPs) == 0 {
			t.Fatalf("kube-dns got no ClusterIP: %+v", svc.Spec)
		}
		want := "--cluster-dns=" + strings.Join(svc.Spec.ClusterIPs, ",")
		managerArgs := func(flags ...string) []string {
			out := helm(t, append([]string{"template", releaseName, chart, "--namespace", releaseNamespace,
				"--kubeconfig", c.kubeconfig, "--dry-run=server"}, flags...)...)
			return typed[appsv1.Deployment](t, parse(t, out).find(t, "Deployment", fullname)).Spec.Template.Spec.Containers[0].Args
		}
		if args := managerArgs(); !slices.Contains(args, want) {
			t.Errorf("manager args %q lack %q, the kube-dns Service's", args, want)
		}
		if args := managerArgs("--set", "clusterDNS={169.254.20.10}"); !slices.Contains(args, "--cluster-dns=169.254.20.10") || slices.Contains(args, want) {
			t.Errorf("manager args %q: want clusterDNS to replace the lookup", args)
		}
		notes := string(helm(t, "install", releaseName, chart, "--namespace", releaseNamespace,
			"--kubeconfig", c.kubeconfig, "--dry-run=server"))
		if strings.Contains(notes, "WARNING: no cluster DNS") || !strings.Contains(notes, "Cluster DNS: "+strings.Join(svc.Spec.ClusterIPs, ",")) {
			t.Errorf("NOTES with kube-dns in place:\n%s", notes)
		}
	})

	rendered := parse(t, template(t, "--include-crds"))
	t.Run("install", func(t *testing.T) {
		c.install(t, rendered)
	})
	if t.Failed() {
		return
	}

	sa, err := c.env.AddUser(envtest.User{Name: serviceAccountUser}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stopManager := c.runManager(t, sa.Config())
	defer stopManager()

	t.Run("samples go Ready", func(t *testing.T) {
		for _, f := range []string{"proxychain_v1alpha1_transit.yaml", "proxychain_v1alpha1_chain.yaml"} {
			c.kubectl(t, nil, "apply", "-n", appNamespace, "-f", filepath.Join(root, "config", "samples", f))
		}
		c.kubectl(t, nil, "wait", "-n", appNamespace, "--for=condition=Ready", "--timeout=60s",
			"proxychain/transit", "proxychain/us-exit")
		var pc v1alpha1.ProxyChain
		if err := c.admin.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: "us-exit"}, &pc); err != nil {
			t.Fatal(err)
		}
		if pc.Status.Entry != "AliHK" || pc.Status.Exit != "DOUS" || pc.Status.Hops != 4 {
			t.Errorf("us-exit status entry %q exit %q hops %d, want AliHK, DOUS, 4", pc.Status.Entry, pc.Status.Exit, pc.Status.Hops)
		}
		var cm corev1.ConfigMap
		if err := c.admin.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: "us-exit-proxychain"}, &cm); err != nil {
			t.Fatalf("the rendered ConfigMap: %v", err)
		}
	})

	t.Run("validating webhook", func(t *testing.T) {
		cycle := []byte(`apiVersion: proxychain.io/v1alpha1
kind: ProxyChain
metadata: {name: loop}
spec:
  outbounds:
  - {tag: a, protocol: socks, settings: {servers: [{address: 127.0.0.1, port: 1080}]}, proxySettings: {tag: b}}
  - {tag: b, protocol: socks, settings: {servers: [{address: 127.0.0.1, port: 1081}]}, proxySettings: {tag: a}}
`)
		_, err := run(cycle, kubectl, "--kubeconfig", c.kubeconfig, "apply", "-n", appNamespace, "-f", "-")
		// CEL cannot see cycles; only the webhook (render.CheckChain) says this.
		if err == nil || !strings.Contains(err.Error(), "outbound cycle: a -> b -> a") {
			t.Fatalf("a cyclic chain: want the validating webhook to deny it, got %v", err)
		}
	})

	t.Run("pod injection", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(root, "controllers", "pod_webhook.go")); err != nil {
			t.Skip("SKIPPED: the pod injector (controllers/pod_webhook.go) is not in the tree")
		}
		injected := c.createPod(t, appNamespace, "annotated", map[string]string{controllers.AnnotationChain: "us-exit"})
		sidecar := findContainer(injected, controllers.SidecarName)
		if sidecar == nil {
			t.Fatalf("the annotated pod came back without a %s container: %+v", controllers.SidecarName, injected.Spec)
		}
		if sidecar.Image != sidecarImage {
			t.Errorf("sidecar image %q, want %q", sidecar.Image, sidecarImage)
		}
		// us-exit captures transparently: the init step installs the capture.
		if init := findContainer(injected, controllers.InitName); init == nil || init.Image != sidecarImage {
			t.Errorf("the annotated pod's %s container: %+v, want one from %s", controllers.InitName, init, sidecarImage)
		}
		if _, ok := injected.Annotations[controllers.AnnotationInjected]; !ok {
			t.Errorf("the injected pod lacks the %s annotation: %v", controllers.AnnotationInjected, injected.Annotations)
		}

		// Not sent to the injector: a pod without the annotation, and annotated pods in
		// the namespaces the chart excludes.
		for _, p := range []struct {
			ns, name    string
			annotations map[string]string
		}{
			{appNamespace, "plain", nil},
			{releaseNamespace, "operator-namespace", map[string]string{controllers.AnnotationChain: "us-exit"}},
			{"kube-system", "system", map[string]string{controllers.AnnotationChain: "us-exit"}},
		} {
			pod := c.createPod(t, p.ns, p.name, p.annotations)
			if len(pod.Spec.Containers) != 1 || len(pod.Spec.InitContainers) != 0 {
				t.Errorf("pod %s/%s was changed: %d containers, %d init containers", p.ns, p.name, len(pod.Spec.Containers), len(pod.Spec.InitContainers))
			}
		}
	})

	t.Run("leader election", func(t *testing.T) {
		var lease coordinationv1.Lease
		if err := c.admin.Get(ctx, types.NamespacedName{Namespace: releaseNamespace, Name: leaderElectionID}, &lease); err != nil {
			t.Fatalf("the manager's Lease in %s: %v", releaseNamespace, err)
		}
	})

	t.Run("rbac", func(t *testing.T) {
		c.checkRBAC(t, sa.Config())
	})
}

// install applies the chart's CRD, ServiceAccount, RBAC and webhook configurations. The
// webhook configurations keep everything but their clientConfig: the API server cannot
// reach an in-cluster Service from here, so each points at the local webhook server
// with envtest's CA, as envtest does for the configurations it installs.
func (c *cluster) install(t *testing.T, m manifest) {
	t.Helper()
	opts := c.env.WebhookInstallOptions
	base := "https://" + net.JoinHostPort(opts.LocalServingHost, strconv.Itoa(opts.LocalServingPort))
	point := func(cc *admissionv1.WebhookClientConfig) {
		if cc.Service == nil || cc.Service.Path == nil {
			t.Fatalf("webhook clientConfig %+v has no service path", cc)
		}
		url := base + *cc.Service.Path
		cc.URL, cc.Service, cc.CABundle = &url, nil, opts.LocalServingCAData
	}
	var docs [][]byte
	add := func(obj any) {
		b, err := yaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b)
	}
	for _, u := range m {
		switch u.GetKind() {
		case "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			add(u.Object)
		case "MutatingWebhookConfiguration":
			mwc := typed[admissionv1.MutatingWebhookConfiguration](t, u)
			for i := range mwc.Webhooks {
				point(&mwc.Webhooks[i].ClientConfig)
			}
			add(mwc)
		case "ValidatingWebhookConfiguration":
			vwc := typed[admissionv1.ValidatingWebhookConfiguration](t, u)
			for i := range vwc.Webhooks {
				point(&vwc.Webhooks[i].ClientConfig)
			}
			add(vwc)
		}
	}
	out := c.kubectl(t, joinDocs(docs), "apply", "-f", "-")
	t.Logf("kubectl apply:\n%s", out)
	c.kubectl(t, nil, "wait", "--for=condition=Established", "--timeout=30s", "crd/proxychains.proxychain.io")
}

func joinDocs(docs [][]byte) []byte {
	var b []byte
	for _, d := range docs {
		b = append(b, "---\n"...)
		b = append(b, d...)
	}
	return b
}

// leaderElectionID is the manager binary's Lease name.
const leaderElectionID = "proxychain-operator.proxychain.io"

// runManager runs the operator in process as cfg's user, configured as the chart
// configures the binary, with the webhook server on envtest's local host, port and
// certificate. It returns once the webhook server answers.
func (c *cluster) runManager(t *testing.T, cfg *rest.Config) (stop func()) {
	t.Helper()
	opts := c.env.WebhookInstallOptions
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        controllers.NewScheme(),
		Client:                        controllers.ClientOptions(),
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		LeaderElection:                true,
		LeaderElectionID:              leaderElectionID,
		LeaderElectionNamespace:       releaseNamespace,
		LeaderElectionReleaseOnCancel: true,
		WebhookServer: ctrlwebhook.NewServer(ctrlwebhook.Options{
			Host: opts.LocalServingHost, Port: opts.LocalServingPort, CertDir: opts.LocalServingCertDir,
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	sidecar := controllers.SidecarConfig{Image: sidecarImage, UID: 1337, LogLevel: "info"}
	if err := controllers.Setup(mgr, controllers.Options{Webhooks: true, Sidecar: sidecar}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}
	addr := net.JoinHostPort(opts.LocalServingHost, strconv.Itoa(opts.LocalServingPort))
	if err := poll(30*time.Second, func() error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr,
			&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only waits for the listener
		if err != nil {
			return err
		}
		return conn.Close()
	}); err != nil {
		stop()
		t.Fatalf("webhook server at %s: %v", addr, err)
	}
	return stop
}

// createPod creates a one-container pod and returns it as the API server stored it,
// after every admission webhook.
func (c *cluster) createPod(t *testing.T, ns, name string, annotations map[string]string) *corev1.Pod {
	t.Helper()
	nonRoot := int64(1000)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: &nonRoot},
			Containers:      []corev1.Container{{Name: "app", Image: "example.com/app:1"}},
		},
	}
	if err := c.admin.Create(t.Context(), pod); err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	return pod
}

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		if i := slices.IndexFunc(list, func(c corev1.Container) bool { return c.Name == name }); i >= 0 {
			return &list[i]
		}
	}
	return nil
}

// access is one question for the API server's authorizer.
type access struct {
	verb, group, resource, subresource, namespace, name string
}

func (a access) String() string {
	r := a.resource
	if a.group != "" {
		r += "." + a.group
	}
	if a.subresource != "" {
		r += "/" + a.subresource
	}
	if a.name != "" {
		r += "/" + a.name
	}
	where := "cluster-wide"
	if a.namespace != "" {
		where = "in " + a.namespace
	}
	return fmt.Sprintf("%s %s %s", a.verb, r, where)
}

// checkRBAC asks, as the ServiceAccount's user (no groups), what it may do. The manager
// has already done the "may" part for real as this user (reconciled the samples, held
// its Lease, answered admission); this pins it down and checks the "no more".
func (c *cluster) checkRBAC(t *testing.T, cfg *rest.Config) {
	t.Helper()
	self, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	mwc, vwc := "proxychain-mutating-webhook-configuration", "proxychain-validating-webhook-configuration"
	const adm = "admissionregistration.k8s.io"
	allowed := []access{
		{verb: "list", group: "proxychain.io", resource: "proxychains"},
		{verb: "watch", group: "proxychain.io", resource: "proxychains"},
		{verb: "update", group: "proxychain.io", resource: "proxychains", subresource: "status", namespace: appNamespace},
		{verb: "create", resource: "configmaps", namespace: appNamespace},
		{verb: "update", resource: "configmaps", namespace: appNamespace},
		{verb: "get", resource: "secrets", namespace: appNamespace},
		{verb: "create", resource: "secrets", namespace: appNamespace},
		{verb: "update", resource: "secrets", namespace: releaseNamespace},
		{verb: "create", group: "events.k8s.io", resource: "events", namespace: appNamespace},
		{verb: "create", resource: "events", namespace: releaseNamespace}, // leader election's events
		{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: releaseNamespace},
		{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: releaseNamespace, name: leaderElectionID},
		{verb: "get", group: adm, resource: "mutatingwebhookconfigurations", name: mwc},
		{verb: "patch", group: adm, resource: "mutatingwebhookconfigurations", name: mwc},
		{verb: "patch", group: adm, resource: "validatingwebhookconfigurations", name: vwc},
		{verb: "create", group: "authentication.k8s.io", resource: "tokenreviews"},
		{verb: "create", group: "authorization.k8s.io", resource: "subjectaccessreviews"},
	}
	denied := []access{
		{verb: "delete", resource: "secrets", namespace: appNamespace},
		{verb: "delete", resource: "secrets", namespace: releaseNamespace},
		{verb: "deletecollection", resource: "secrets", namespace: appNamespace},
		{verb: "delete", resource: "configmaps", namespace: appNamespace},
		{verb: "patch", resource: "secrets", namespace: appNamespace},
		{verb: "list", resource: "pods"},
		{verb: "get", resource: "pods", namespace: appNamespace},
		{verb: "create", resource: "pods", namespace: appNamespace},
		{verb: "create", resource: "pods", subresource: "exec", namespace: appNamespace},
		{verb: "get", resource: "nodes"},
		{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: releaseNamespace, name: fullname},
		{verb: "update", group: "proxychain.io", resource: "proxychains", namespace: appNamespace},
		{verb: "delete", group: "proxychain.io", resource: "proxychains", namespace: appNamespace},
		{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: appNamespace},
		{verb: "patch", group: adm, resource: "mutatingwebhookconfigurations", name: "someone-elses"},
		{verb: "patch", group: adm, resource: "validatingwebhookconfigurations", name: "someone-elses"},
		{verb: "list", group: adm, resource: "mutatingwebhookconfigurations"},
		{verb: "delete", group: adm, resource: "mutatingwebhookconfigurations", name: mwc},
		{verb: "create", group: adm, resource: "mutatingwebhookconfigurations"},
		{verb: "update", group: "apiextensions.k8s.io", resource: "customresourcedefinitions", name: "proxychains.proxychain.io"},
		{verb: "create", group: "rbac.authorization.k8s.io", resource: "clusterrolebindings"},
		{verb: "escalate", group: "rbac.authorization.k8s.io", resource: "clusterroles"},
		{verb: "bind", group: "rbac.authorization.k8s.io", resource: "clusterroles"},
		{verb: "impersonate", resource: "users"},
		{verb: "create", resource: "events", namespace: appNamespace}, // the core API only for leader election, in its namespace
	}
	ask := func(a access) bool {
		t.Helper()
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource,
				Namespace: a.namespace, Name: a.name,
			},
		}}
		if err := self.Create(t.Context(), review); err != nil {
			t.Fatalf("SelfSubjectAccessReview %s: %v", a, err)
		}
		return review.Status.Allowed
	}
	for _, a := range allowed {
		if !ask(a) {
			t.Errorf("%s may not %s; the manager needs it", serviceAccountUser, a)
		}
	}
	for _, a := range denied {
		if ask(a) {
			t.Errorf("%s may %s; it must not", serviceAccountUser, a)
		}
	}

	// And for real: the ServiceAccount patches its own webhook configuration, and no
	// other.
	other := &admissionv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "someone-elses"}}
	if err := c.admin.Create(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"proxychain.io/test":"patched"}}}`))
	own := &admissionv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: mwc}}
	if err := self.Patch(t.Context(), own, patch); err != nil {
		t.Errorf("patch %s as %s: %v", mwc, serviceAccountUser, err)
	}
	if err := self.Patch(t.Context(), other, patch); !apierrors.IsForbidden(err) {
		t.Errorf("patch someone-elses as %s: want Forbidden, got %v", serviceAccountUser, err)
	}
}

// poll runs check until it returns nil or timeout passes, then returns its last error.
func poll(timeout time.Duration, check func() error) error {
	end := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil || time.Now().After(end) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
