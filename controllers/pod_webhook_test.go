package controllers_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/proxychain/proxychain/api/v1alpha1"
	"github.com/proxychain/proxychain/controllers"
	"github.com/proxychain/proxychain/internal/render/rendertest"
)

const denied = `admission webhook "mpod.proxychain.io" denied the request: `

// readyChain creates the seed chain with egress and its Secrets, and waits until it is
// Ready.
func readyChain(t *testing.T, ns, name string, egress v1alpha1.Egress) *v1alpha1.ProxyChain {
	t.Helper()
	spec := rendertest.SeedSpec()
	spec.Egress = egress
	createChain(t, ns, name, spec)
	return waitCondition(t, types.NamespacedName{Namespace: ns, Name: name}, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRendered)
}

func appPod(ns, name string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: corev1.PodSpec{
			// No token: envtest runs no token controller, and the test needs none.
			AutomountServiceAccountToken: ptr.To(false),
			InitContainers:               []corev1.Container{{Name: "migrate", Image: "migrate:1"}},
			Containers: []corev1.Container{
				{Name: "app", Image: "app:1", Env: []corev1.EnvVar{{Name: "KEEP", Value: "1"}}},
				{Name: "worker", Image: "worker:1"},
			},
		},
	}
}

// createPod creates pod and returns it as the API server stored it.
func createPod(t *testing.T, pod *corev1.Pod) (*corev1.Pod, error) {
	t.Helper()
	ctx := context.Background()
	if err := k8sClient.Create(ctx, pod); err != nil {
		return nil, err
	}
	var stored corev1.Pod
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), &stored); err != nil {
		t.Fatal(err)
	}
	return &stored, nil
}

// warnings collects the warnings the apiserver sends back, as kubectl prints them.
type warnings struct {
	mu   sync.Mutex
	text []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.text = append(w.text, text)
}

// createPodWarned is createPod that also returns the admission warnings.
func createPodWarned(t *testing.T, pod *corev1.Pod) (*corev1.Pod, []string) {
	t.Helper()
	w := new(warnings)
	cfg := rest.CopyConfig(restConfig)
	cfg.WarningHandler = w
	c, err := client.New(cfg, client.Options{Scheme: k8sClient.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	var stored corev1.Pod
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(pod), &stored); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return &stored, w.text
}

func container(t *testing.T, cs []corev1.Container, name string) corev1.Container {
	t.Helper()
	i := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("no container %q", name)
	}
	return cs[i]
}

func containerNames(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestInjectorTransparent(t *testing.T) {
	requireEnv(t)
	ns := newNamespace(t)
	createSeedSecrets(t, ns)
	chain := readyChain(t, ns, "us-exit", v1alpha1.Egress{ExcludeCIDRs: []string{"10.96.0.0/12"}, ExcludePorts: []int32{22}})

	pod, err := createPod(t, appPod(ns, "app", map[string]string{
		controllers.AnnotationChain:        "us-exit",
		controllers.AnnotationExcludeCIDRs: "192.168.0.0/16",
		controllers.AnnotationExcludePorts: "5432",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := containerNames(pod.Spec.InitContainers), []string{"proxychain-init", "proxychain", "migrate"}; !slices.Equal(got, want) {
		t.Fatalf("stored init containers %v, want %v", got, want)
	}
	ic := pod.Spec.InitContainers[0]
	wantArgs := []string{"init", "-mode", "transparent", "-redirect-port", "15001", "-sidecar-uid", "1337",
		"-exclude-cidrs", "10.96.0.0/12,192.168.0.0/16", "-exclude-ports", "22,5432"}
	if !slices.Equal(ic.Args, wantArgs) || ic.Image != testSidecar.Image || ic.RestartPolicy != nil {
		t.Errorf("init container: image %s args %q restartPolicy %v", ic.Image, ic.Args, ic.RestartPolicy)
	}
	if s := ic.SecurityContext; s == nil || *s.RunAsUser != 0 || *s.RunAsNonRoot || *s.Privileged ||
		!slices.Equal(s.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) ||
		!slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("init securityContext %+v", s)
	}

	sc := pod.Spec.InitContainers[1]
	wantRun := []string{"run", "-c", "/etc/proxychain/config.json", "-metrics-addr", "0.0.0.0:15090", "-log-level", "debug"}
	if !slices.Equal(sc.Command, []string{"/proxychain"}) || !slices.Equal(sc.Args, wantRun) ||
		sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("sidecar: command %q args %q restartPolicy %v", sc.Command, sc.Args, sc.RestartPolicy)
	}
	if s := sc.SecurityContext; s == nil || *s.RunAsUser != 1337 || !*s.RunAsNonRoot || !*s.ReadOnlyRootFilesystem ||
		*s.AllowPrivilegeEscalation || len(s.Capabilities.Add) != 0 || !slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("sidecar securityContext %+v", s)
	}
	if !equality.Semantic.DeepEqual(sc.Resources, testSidecar.Resources) {
		t.Errorf("sidecar resources %+v", sc.Resources)
	}
	if p := sc.StartupProbe; p == nil || p.HTTPGet.Path != "/readyz" || p.HTTPGet.Port.String() != "pc-metrics" {
		t.Errorf("startup probe %+v", p)
	}
	if m := sc.VolumeMounts; len(m) != 1 || m[0].MountPath != "/etc/proxychain" || !m[0].ReadOnly {
		t.Errorf("sidecar mounts %+v", m)
	}
	vi := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == controllers.ConfigVolumeName })
	if vi < 0 {
		t.Fatal("no config volume")
	}
	if srcs := pod.Spec.Volumes[vi].Projected.Sources; len(srcs) != 2 ||
		srcs[0].ConfigMap.Name != "us-exit-proxychain" || srcs[1].Secret.Name != "us-exit-proxychain-credentials" {
		t.Errorf("projected sources %+v", srcs)
	}
	if a := pod.Annotations; a[controllers.AnnotationInjected] != "true" || a[controllers.AnnotationConfigHash] != chain.Status.ConfigHash || chain.Status.ConfigHash == "" {
		t.Errorf("annotations %v, want config hash %q", a, chain.Status.ConfigHash)
	}
	for _, c := range pod.Spec.Containers {
		if len(c.Env) > 1 || c.SecurityContext != nil {
			t.Errorf("app container %s changed: env %v securityContext %v", c.Name, c.Env, c.SecurityContext)
		}
	}

	t.Run("update changes nothing", func(t *testing.T) {
		ctx := context.Background()
		pod.Labels = map[string]string{"touched": "yes"}
		if err := k8sClient.Update(ctx, pod); err != nil {
			t.Fatal(err)
		}
		var after corev1.Pod
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), &after); err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(after.Spec, pod.Spec) || !equality.Semantic.DeepEqual(after.Annotations, pod.Annotations) {
			t.Error("update changed the injected pod")
		}
	})

	t.Run("an injected pod is injected again unchanged", func(t *testing.T) {
		// The injected pod, resubmitted (what a reinvocation sees, or a copied
		// manifest): the webhook must not add a second sidecar or change a field.
		copied := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "copy", Annotations: pod.Annotations},
			Spec:       *pod.Spec.DeepCopy(),
		}
		copied.Spec.NodeName = ""
		again, err := createPod(t, copied)
		if err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(again.Spec.InitContainers, pod.Spec.InitContainers) ||
			!equality.Semantic.DeepEqual(again.Spec.Volumes, pod.Spec.Volumes) ||
			!equality.Semantic.DeepEqual(again.Spec.Containers, pod.Spec.Containers) ||
			!equality.Semantic.DeepEqual(again.Annotations, pod.Annotations) {
			t.Errorf("re-injection changed the pod:\n%v\n%v", containerNames(again.Spec.InitContainers), again.Annotations)
		}
	})
}

func TestInjectorExplicit(t *testing.T) {
	requireEnv(t)
	ns := newNamespace(t)
	createSeedSecrets(t, ns)
	readyChain(t, ns, "us-exit", v1alpha1.Egress{Mode: v1alpha1.EgressExplicit, ExcludeCIDRs: []string{"10.96.0.0/12"}})

	pod, err := createPod(t, appPod(ns, "app", map[string]string{controllers.AnnotationChain: "us-exit"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := containerNames(pod.Spec.InitContainers); !slices.Equal(got, []string{"proxychain", "migrate"}) {
		t.Fatalf("init containers %v", got)
	}
	want := map[string]string{
		"HTTP_PROXY": "http://127.0.0.1:15081", "HTTPS_PROXY": "http://127.0.0.1:15081",
		"ALL_PROXY": "socks5h://127.0.0.1:15080", "NO_PROXY": "localhost,127.0.0.1,::1,10.96.0.0/12",
	}
	for _, c := range append(slices.Clone(pod.Spec.Containers), container(t, pod.Spec.InitContainers, "migrate")) {
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		for k, v := range want {
			if env[k] != v || env[strings.ToLower(k)] != v {
				t.Errorf("%s: %s=%q, %s=%q, want %q", c.Name, k, env[k], strings.ToLower(k), env[strings.ToLower(k)], v)
			}
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if s := c.SecurityContext; s != nil && s.Capabilities != nil && len(s.Capabilities.Add) > 0 {
			t.Errorf("%s adds capabilities %v in explicit mode", c.Name, s.Capabilities.Add)
		}
	}

	t.Run("transparent pod on an explicit chain", func(t *testing.T) {
		pod, err := createPod(t, appPod(ns, "transparent", map[string]string{
			controllers.AnnotationChain: "us-exit", controllers.AnnotationMode: "transparent",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if got := containerNames(pod.Spec.InitContainers); !slices.Equal(got, []string{"proxychain-init", "proxychain", "migrate"}) {
			t.Fatalf("init containers %v", got)
		}
		if args := pod.Spec.InitContainers[1].Args; slices.Index(args, "-c") != 1 || slices.Contains(args[2:], "-c") {
			t.Errorf("sidecar args %q, want the chain's config alone", args)
		}
		if env := container(t, pod.Spec.Containers, "app").Env; len(env) != 1 {
			t.Errorf("transparent app has env %v", env)
		}
	})
}

func TestInjectorDenies(t *testing.T) {
	requireEnv(t)
	ns := newNamespace(t)
	createSeedSecrets(t, ns)
	readyChain(t, ns, "us-exit", v1alpha1.Egress{})
	// A chain whose Secret is missing renders nothing and is not Ready.
	broken := rendertest.SeedSpec()
	broken.Outbounds[1].Settings.Servers[0].PasswordFrom.SecretKeyRef.Name = "absent"
	createChain(t, ns, "broken", broken)
	waitCondition(t, types.NamespacedName{Namespace: ns, Name: "broken"}, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)

	chain := map[string]string{controllers.AnnotationChain: "us-exit"}
	with := func(extra map[string]string) map[string]string {
		a := map[string]string{controllers.AnnotationChain: "us-exit"}
		for k, v := range extra {
			a[k] = v
		}
		return a
	}
	tests := []struct {
		name        string
		annotations map[string]string
		edit        func(*corev1.Pod)
		want        string
	}{
		{"bad mode", with(map[string]string{controllers.AnnotationMode: "sidecar"}), nil,
			`annotation proxychain.io/mode: "sidecar" is not transparent or explicit`},
		{"bad cidr", with(map[string]string{controllers.AnnotationExcludeCIDRs: "10.0.0.0/8,10.0.0.0/40"}), nil,
			`annotation proxychain.io/exclude-cidrs: "10.0.0.0/40" is not a CIDR`},
		{"bad port", with(map[string]string{controllers.AnnotationExcludePorts: "443,70000"}), nil,
			`annotation proxychain.io/exclude-ports: "70000" is not a port (1 to 65535)`},
		{"empty chain name", map[string]string{controllers.AnnotationChain: ""}, nil,
			`annotation proxychain.io/chain: empty; name a ProxyChain in namespace "` + ns + `"`},
		{"missing chain", map[string]string{controllers.AnnotationChain: "nowhere"}, nil,
			`annotation proxychain.io/chain: ProxyChain "nowhere" not found in namespace "` + ns + `"`},
		{"chain not ready", map[string]string{controllers.AnnotationChain: "broken"}, nil,
			`annotation proxychain.io/chain: ProxyChain "broken" is not Ready: SecretNotFound: `},
		{"pod runs as the sidecar UID", chain, func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1337)}
			p.Spec.InitContainers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000)}
		}, `proxychain cannot inject this pod: container "app" runs as UID 1337, the sidecar's: its traffic would bypass the chain; ` +
			`container "worker" runs as UID 1337, the sidecar's: its traffic would bypass the chain`},
		{"container runs as the sidecar UID", chain, func(p *corev1.Pod) {
			p.Spec.Containers[1].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](1337)}
		}, `proxychain cannot inject this pod: container "worker" runs as UID 1337, the sidecar's: its traffic would bypass the chain`},
		{"NET_ADMIN", chain, func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}}
		}, `proxychain cannot inject this pod: container "app" adds capability NET_ADMIN: it could remove the capture`},
		{"privileged init container", chain, func(p *corev1.Pod) {
			p.Spec.InitContainers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		}, `proxychain cannot inject this pod: init container "migrate" is privileged: it could remove the capture`},
		{"hostNetwork", chain, func(p *corev1.Pod) { p.Spec.HostNetwork = true },
			`proxychain cannot inject this pod: hostNetwork: the pod shares the node's network namespace`},
		// Mutating webhooks run before the API server validates the pod.
		{"nameserver not an address", chain, func(p *corev1.Pod) {
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"10.0.0.10", "dns.example"}}
		}, `proxychain cannot inject this pod: spec.dnsConfig.nameservers[1]: "dns.example" is not an IP address`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := appPod(ns, "denied-"+string(rune('a'+i)), tt.annotations)
			if tt.edit != nil {
				tt.edit(pod)
			}
			_, err := createPod(t, pod)
			if err == nil {
				t.Fatal("admitted")
			}
			if got := err.Error(); !strings.HasPrefix(got, denied+tt.want) {
				t.Fatalf("got  %s\nwant %s%s", got, denied, tt.want)
			}
		})
	}
}

func TestInjectorScope(t *testing.T) {
	requireEnv(t)
	ns := newNamespace(t)

	t.Run("pod without the annotation is untouched", func(t *testing.T) {
		in := appPod(ns, "plain", map[string]string{"other": "x"})
		pod, err := createPod(t, in)
		if err != nil {
			t.Fatal(err)
		}
		if got := containerNames(pod.Spec.InitContainers); !slices.Equal(got, []string{"migrate"}) ||
			len(pod.Spec.Volumes) != 0 || len(pod.Annotations) != 1 || len(container(t, pod.Spec.Containers, "app").Env) != 1 {
			t.Errorf("stored pod changed: init %v volumes %v annotations %v", got, pod.Spec.Volumes, pod.Annotations)
		}
	})

	t.Run("kube-system is never sent to the webhook", func(t *testing.T) {
		// A chain that does not exist would be denied anywhere the webhook runs.
		pod := appPod("kube-system", "proxychain-scope-test", map[string]string{controllers.AnnotationChain: "nowhere"})
		stored, err := createPod(t, pod)
		if err != nil {
			t.Fatalf("kube-system pod reached the webhook: %v", err)
		}
		t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), stored) })
		if _, ok := stored.Annotations[controllers.AnnotationInjected]; ok || len(stored.Spec.InitContainers) != 1 {
			t.Error("kube-system pod was injected")
		}
	})

	t.Run("generated configuration", func(t *testing.T) {
		hook := installedPodWebhook(t)
		if *hook.FailurePolicy != admissionregistrationv1.Fail || *hook.TimeoutSeconds > 5 ||
			*hook.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy || *hook.SideEffects != admissionregistrationv1.SideEffectClassNone {
			t.Errorf("failurePolicy %v timeout %v reinvocation %v sideEffects %v", *hook.FailurePolicy, *hook.TimeoutSeconds, *hook.ReinvocationPolicy, *hook.SideEffects)
		}
		sel := hook.NamespaceSelector
		if sel == nil || len(sel.MatchExpressions) != 1 || sel.MatchExpressions[0].Key != "kubernetes.io/metadata.name" ||
			sel.MatchExpressions[0].Operator != metav1.LabelSelectorOpNotIn ||
			!slices.Contains(sel.MatchExpressions[0].Values, "kube-system") || !slices.Contains(sel.MatchExpressions[0].Values, "proxychain-system") {
			t.Errorf("namespaceSelector %+v", sel)
		}
		if len(hook.MatchConditions) != 1 || !strings.Contains(hook.MatchConditions[0].Expression, "'proxychain.io/chain' in object.metadata.annotations") {
			t.Errorf("matchConditions %+v", hook.MatchConditions)
		}
		if r := hook.Rules; len(r) != 1 || !slices.Equal(r[0].Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}) ||
			!slices.Equal(r[0].Resources, []string{"pods"}) {
			t.Errorf("rules %+v", r)
		}
	})
}

// ownInjectorNamespace is where startInjector's injector is the only one: the suite's
// webhook, as any install's, never sees the manager's own namespace.
const ownInjectorNamespace = "proxychain-system"

// startInjector runs a second manager until t ends, serving only the pod injector with
// sidecar, behind a copy of the installed mpod.proxychain.io webhook that sees
// ownInjectorNamespace alone. Whatever the test creates in that namespace is deleted when
// it ends, so the test can run again in the same API server.
func startInjector(t *testing.T, sidecar controllers.SidecarConfig) {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ownInjectorNamespace}}
	if err := k8sClient.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// envtest runs no garbage collector: the chain's rendered objects go by hand.
		for _, obj := range []client.Object{&corev1.Pod{}, &v1alpha1.ProxyChain{}, &corev1.ConfigMap{}, &corev1.Secret{}} {
			if err := k8sClient.DeleteAllOf(ctx, obj, client.InNamespace(ownInjectorNamespace)); err != nil {
				t.Errorf("clean up %T in %s: %v", obj, ownInjectorNamespace, err)
			}
		}
	})

	// A free port: envtest serves only the suite's webhook server.
	ln, err := net.Listen("tcp", net.JoinHostPort(webhookServing.LocalServingHost, "0"))
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:  controllers.NewScheme(),
		Client:  controllers.ClientOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"},
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: webhookServing.LocalServingHost, Port: port, CertDir: webhookServing.LocalServingCertDir,
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.SetupPodWebhookWithManager(mgr, sidecar); err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("own injector: %v", err)
		}
	})
	addr := net.JoinHostPort(webhookServing.LocalServingHost, strconv.Itoa(port))
	if err := waitForWebhook(addr); err != nil {
		t.Fatal(err)
	}

	hook := installedPodWebhook(t)
	hook.ClientConfig.URL = ptr.To("https://" + addr + controllers.PodWebhookPath)
	hook.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ownInjectorNamespace}}
	own := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "pc-test-own-injector-"},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{*hook},
	}
	if err := k8sClient.Create(ctx, own); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k8sClient.Delete(ctx, own); err != nil {
			t.Errorf("delete %s: %v", own.Name, err)
		}
	})
}

// initArgs returns the args of the pod's proxychain-init container.
func initArgs(t *testing.T, pod *corev1.Pod) []string {
	t.Helper()
	return container(t, pod.Spec.InitContainers, controllers.InitName).Args
}

// TestInjectorClusterDNS checks what -dns an injected pod's init gets: with the manager's
// cluster DNS, those addresses and the pod's own nameservers; without it, only a
// dnsPolicy None pod's own, and otherwise no -dns at all, as before the flag existed.
func TestInjectorClusterDNS(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	oldArgs := []string{"init", "-mode", "transparent", "-redirect-port", "15001", "-sidecar-uid", "1337"}
	withDNS := func(policy corev1.DNSPolicy, nameservers ...string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.DNSPolicy = policy
			if len(nameservers) > 0 {
				p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: nameservers}
			}
		}
	}
	type podCase struct {
		name string
		edit func(*corev1.Pod)
		want []string
	}
	check := func(t *testing.T, ns string, cases []podCase) {
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				pod := appPod(ns, fmt.Sprintf("dns-%d", i), map[string]string{controllers.AnnotationChain: "us-exit"})
				c.edit(pod)
				stored, warned := createPodWarned(t, pod)
				got := initArgs(t, stored)
				if !slices.Equal(got, c.want) {
					t.Errorf("init args %q\nwant %q", got, c.want)
				}
				// Whoever creates a pod whose port 53 stays open is told so.
				var want []string
				if !slices.Contains(got, "-dns") {
					want = []string{controllers.DNSOpenWarning}
				}
				if !slices.Equal(warned, want) {
					t.Errorf("warnings %q\nwant %q", warned, want)
				}
			})
		}
	}

	t.Run("with --cluster-dns", func(t *testing.T) {
		sidecar := testSidecar
		sidecar.ClusterDNS = []netip.Addr{netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("fd00:10:96::a")}
		startInjector(t, sidecar)
		ns := ownInjectorNamespace
		createSeedSecrets(t, ns)
		readyChain(t, ns, "us-exit", v1alpha1.Egress{})
		// The API server learns of the new webhook configuration asynchronously; a dry
		// run is admitted like a create and leaves nothing behind.
		eventually(t, timeout, func() error {
			probe := appPod(ns, "probe", map[string]string{controllers.AnnotationChain: "us-exit"})
			if err := k8sClient.Create(ctx, probe, client.DryRunAll); err != nil {
				return err
			}
			if i := slices.IndexFunc(probe.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == controllers.InitName }); i < 0 {
				return fmt.Errorf("a pod in %s is not injected yet", ns)
			}
			return nil
		})
		check(t, ns, []podCase{
			{"cluster first", withDNS(""), append(slices.Clone(oldArgs), "-dns", "10.96.0.10,fd00:10:96::a")},
			{"cluster first with nameservers of its own", withDNS(corev1.DNSClusterFirst, "192.0.2.53", "10.96.0.10"),
				append(slices.Clone(oldArgs), "-dns", "10.96.0.10,fd00:10:96::a,192.0.2.53")},
			{"none", withDNS(corev1.DNSNone, "192.0.2.53", "2001:db8::53"), append(slices.Clone(oldArgs), "-dns", "192.0.2.53,2001:db8::53")},
			{"default", withDNS(corev1.DNSDefault, "192.0.2.53"), oldArgs},
		})
	})

	t.Run("without --cluster-dns", func(t *testing.T) {
		ns := newNamespace(t)
		createSeedSecrets(t, ns)
		readyChain(t, ns, "us-exit", v1alpha1.Egress{})
		check(t, ns, []podCase{
			{"cluster first", withDNS(""), oldArgs},
			{"cluster first with nameservers of its own", withDNS(corev1.DNSClusterFirst, "192.0.2.53"), oldArgs},
			{"none", withDNS(corev1.DNSNone, "192.0.2.53"), append(slices.Clone(oldArgs), "-dns", "192.0.2.53")},
		})
	})
}

// installedPodWebhook reads the pod webhook as the apiserver holds it, a copy.
func installedPodWebhook(t *testing.T) *admissionregistrationv1.MutatingWebhook {
	t.Helper()
	var list admissionregistrationv1.MutatingWebhookConfigurationList
	if err := k8sClient.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	for _, c := range list.Items {
		for _, h := range c.Webhooks {
			if h.Name == "mpod.proxychain.io" {
				return h.DeepCopy()
			}
		}
	}
	t.Fatal("mpod.proxychain.io not installed")
	return nil
}
