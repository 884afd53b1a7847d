package controllers_test

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/proxychain/proxychain/api/v1alpha1"
	"github.com/proxychain/proxychain/controllers"
	"github.com/proxychain/proxychain/internal/testenv"
)

var (
	// testSidecar is what the suite's pod injector adds.
	testSidecar = controllers.SidecarConfig{
		Image: "example.test/proxychain:test", UID: 1337, LogLevel: "debug",
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
		},
	}
	k8sClient client.Client
	// restConfig reaches the suite's API server, for tests that start a manager of their own.
	restConfig *rest.Config
	// webhookServing is where the suite's webhooks are served, and with which certificate.
	webhookServing envtest.WebhookInstallOptions
	// skipReason is set when the envtest binaries are missing outside CI.
	skipReason string
	// transitionTime is the injected clock's time, so conditions' times are known.
	transitionTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testenv.LeakCheck("controllers", runSuite(m)))
}

func runSuite(m *testing.M) int {
	assets := testenv.Assets()
	if assets == "" {
		if skipReason = testenv.Missing("the operator's envtest suite"); skipReason == "" {
			return 1
		}
		return m.Run()
	}

	if testing.Verbose() {
		ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true)))
	} else {
		ctrl.SetLogger(logr.Discard())
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			Paths: []string{filepath.Join("..", "config", "webhook")},
		},
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start envtest:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}()

	restConfig = cfg
	webhookServing = env.WebhookInstallOptions

	scheme := controllers.NewScheme()
	wh := env.WebhookInstallOptions
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		Client: controllers.ClientOptions(),
		// Chains a test gives to a reconciler of its own (startReconciler) are not this
		// one's: two reconcilers of one chain would hide what the test's does.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.ProxyChain{}: {Label: mustSelector("!" + ownReconcilerLabel)},
		}},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "127.0.0.1:0",
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: wh.LocalServingHost, Port: wh.LocalServingPort, CertDir: wh.LocalServingCertDir,
		}),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "new manager:", err)
		return 1
	}
	if err := controllers.Setup(mgr, controllers.Options{
		Webhooks: true,
		Sidecar:  testSidecar,
		Clock:    clocktesting.NewFakePassiveClock(transitionTime),
	}); err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()

	if err := waitForWebhook(net.JoinHostPort(wh.LocalServingHost, strconv.Itoa(wh.LocalServingPort))); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 1
	}
	return m.Run()
}

func waitForWebhook(addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr,
			&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only waits for the listener
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("webhook server at %s: %w", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ownReconcilerLabel marks a chain that only a test's own reconciler handles.
const ownReconcilerLabel = "test.proxychain.io/own-reconciler"

func mustSelector(s string) labels.Selector {
	sel, err := labels.Parse(s)
	if err != nil {
		panic(err)
	}
	return sel
}

// startReconciler runs a second manager until t ends, with a ProxyChain reconciler that
// reads through wrap(the API reader), for the chains in ns labeled ownReconcilerLabel
// only. It returns once the manager's caches have synced.
func startReconciler(t *testing.T, ns string, wrap func(client.Reader) client.Reader) {
	t.Helper()
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme: controllers.NewScheme(),
		Client: controllers.ClientOptions(),
		Cache: cache.Options{
			DefaultNamespaces: map[string]cache.Config{ns: {}},
			ByObject: map[client.Object]cache.ByObject{
				&v1alpha1.ProxyChain{}: {Label: mustSelector(ownReconcilerLabel)},
			},
		},
		Metrics: metricsserver.Options{BindAddress: "0"},
		// The suite's manager already has a controller named proxychain in this process.
		Controller: crconfig.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &controllers.ProxyChainReconciler{
		Client:    mgr.GetClient(),
		APIReader: wrap(mgr.GetAPIReader()),
		Recorder:  mgr.GetEventRecorder(controllers.ManagerName),
		Clock:     clocktesting.NewFakePassiveClock(transitionTime),
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("own manager: %v", err)
		}
	})
	syncCtx, syncCancel := context.WithTimeout(ctx, timeout)
	defer syncCancel()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		t.Fatal("own manager: caches did not sync")
	}
}

// requireEnv skips t when the suite runs without a control plane.
func requireEnv(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip("SKIPPED, no control plane: " + skipReason)
	}
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "pc-test-"}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// eventually retries check until it returns nil or timeout passes, then fails with
// check's last error.
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// consistently fails t if check returns an error at any point during d.
func consistently(t *testing.T, d time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := check(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
