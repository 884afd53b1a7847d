package certs

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/proxychain/proxychain/internal/testenv"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

var (
	k8sClient  client.Client
	skipReason string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testenv.LeakCheck("certs", runSuite(m)))
}

func runSuite(m *testing.M) int {
	assets := testenv.Assets()
	if assets == "" {
		if skipReason = testenv.Missing("the certificate envtest"); skipReason == "" {
			return 1
		}
		return m.Run()
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
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
	k8sClient, err = client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 1
	}
	return m.Run()
}

func requireEnv(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip("SKIPPED, no control plane: " + skipReason)
	}
}

// webhookConfigs creates a mutating configuration with two webhooks and a validating
// one with one, pointing at the Service as the chart does, with no caBundle.
func webhookConfigs(t *testing.T, ctx context.Context, prefix, namespace string) (mutating, validating string) {
	t.Helper()
	cc := func(path string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
			Namespace: namespace, Name: "proxychain-webhook-service", Path: ptr.To(path),
		}}
	}
	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Fail
	rules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}}
	// An objectSelector no object matches keeps these from affecting anything else.
	never := &metav1.LabelSelector{MatchLabels: map[string]string{"proxychain.io/certs-test": "never"}}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: prefix + "-mutating"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			{Name: "a.proxychain.io", ClientConfig: cc("/a"), Rules: rules, SideEffects: &none, FailurePolicy: &fail,
				AdmissionReviewVersions: []string{"v1"}, ObjectSelector: never},
			{Name: "b.proxychain.io", ClientConfig: cc("/b"), Rules: rules, SideEffects: &none, FailurePolicy: &fail,
				AdmissionReviewVersions: []string{"v1"}, ObjectSelector: never},
		},
	}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: prefix + "-validating"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{
			{Name: "v.proxychain.io", ClientConfig: cc("/v"), Rules: rules, SideEffects: &none, FailurePolicy: &fail,
				AdmissionReviewVersions: []string{"v1"}, ObjectSelector: never},
		},
	}
	for _, o := range []client.Object{m, v} {
		if err := k8sClient.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), o) })
	}
	return m.Name, v.Name
}

func newNamespace(t *testing.T, ctx context.Context) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "certs-"}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// caBundles returns every webhook's caBundle and checks the rest of each webhook
// survived the patch.
func caBundles(t *testing.T, ctx context.Context, mutating, validating string) [][]byte {
	t.Helper()
	var m admissionregistrationv1.MutatingWebhookConfiguration
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	if err := k8sClient.Get(ctx, types.NamespacedName{Name: mutating}, &m); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Get(ctx, types.NamespacedName{Name: validating}, &v); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, w := range m.Webhooks {
		if w.ClientConfig.Service == nil || *w.ClientConfig.Service.Path != "/"+w.Name[:1] || len(w.Rules) != 1 {
			t.Errorf("webhook %s lost fields: %+v", w.Name, w)
		}
		out = append(out, w.ClientConfig.CABundle)
	}
	for _, w := range v.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	if len(out) != 3 {
		t.Fatalf("%d webhooks, want 3", len(out))
	}
	return out
}

func TestRotatorPatchesAndRotates(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	ns := newNamespace(t, ctx)
	mutating, validating := webhookConfigs(t, ctx, ns, ns)
	clock := clocktesting.NewFakeClock(t0)
	newRotator := func(dir string) *Rotator {
		r, err := New(Options{
			Reader: k8sClient, Writer: k8sClient,
			Namespace: ns, SecretName: "proxychain-webhook-certs", ServiceName: "proxychain-webhook-service",
			CertDir: dir, MutatingWebhookConfiguration: mutating, ValidatingWebhookConfiguration: validating,
			Clock: clock,
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	leaderDir, followerDir := t.TempDir(), t.TempDir()
	leader, follower := newRotator(leaderDir), newRotator(followerDir)

	stored := func() *Bundle {
		t.Helper()
		var s corev1.Secret
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "proxychain-webhook-certs"}, &s); err != nil {
			t.Fatal(err)
		}
		return FromData(s.Data)
	}
	files := func(dir string) (cert, key []byte) {
		t.Helper()
		cert, err := os.ReadFile(filepath.Join(dir, KeyCert))
		if err != nil {
			t.Fatal(err)
		}
		key, err = os.ReadFile(filepath.Join(dir, KeyKey))
		if err != nil {
			t.Fatal(err)
		}
		return cert, key
	}
	checkServing := func(b *Bundle, dir string) {
		t.Helper()
		cert, key := files(dir)
		if !bytes.Equal(cert, b.Cert) || !bytes.Equal(key, b.Key) {
			t.Errorf("%s does not hold the stored serving certificate", dir)
		}
		if fi, err := os.Stat(filepath.Join(dir, KeyKey)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("tls.key mode: %v %v", fi.Mode(), err)
		}
	}
	verify := func(t *testing.T, caBundle, cert []byte, now time.Time) error {
		t.Helper()
		return verifyFor(t, leader.DNSNames()[0], caBundle, cert, now)
	}
	checkBundles := func(want []byte) {
		t.Helper()
		for i, got := range caBundles(t, ctx, mutating, validating) {
			if !bytes.Equal(got, want) {
				t.Errorf("webhook %d caBundle: %d bytes, want %d", i, len(got), len(want))
			}
		}
	}

	t.Run("first start", func(t *testing.T) {
		// Two replicas start at once; both bootstrap, one Secret results.
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, r := range []*Rotator{leader, follower} {
			wg.Go(func() { errs[i] = r.Bootstrap(ctx) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		b := stored()
		if due := Check(b, leader.DNSNames(), t0); due.Due() {
			t.Fatalf("stored bundle: %+v", due)
		}
		checkServing(b, leaderDir)
		checkServing(b, followerDir)
		for _, got := range caBundles(t, ctx, mutating, validating) {
			if len(got) != 0 {
				t.Fatal("bootstrap patched a caBundle; only the leader does")
			}
		}
		if err := leader.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		checkBundles(b.CACert)
		if err := verify(t, b.CACert, b.Cert, t0); err != nil {
			t.Error(err)
		}
	})

	t.Run("caBundle reset is healed", func(t *testing.T) {
		var m admissionregistrationv1.MutatingWebhookConfiguration
		if err := k8sClient.Get(ctx, types.NamespacedName{Name: mutating}, &m); err != nil {
			t.Fatal(err)
		}
		m.Webhooks[1].ClientConfig.CABundle = nil // as a chart upgrade would
		if err := k8sClient.Update(ctx, &m); err != nil {
			t.Fatal(err)
		}
		if err := leader.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		checkBundles(stored().CACert)
	})

	t.Run("serving certificate renewed", func(t *testing.T) {
		before := stored()
		clock.Step(DefaultServingLifetime * 2 / 3)
		if err := leader.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		after := stored()
		if bytes.Equal(after.Cert, before.Cert) || !bytes.Equal(after.CACert, before.CACert) {
			t.Fatal("serving certificate not renewed, or the CA changed")
		}
		checkServing(after, leaderDir)
		if cert, _ := files(followerDir); !bytes.Equal(cert, before.Cert) {
			t.Fatal("the follower's files changed before it refreshed")
		}
		if err := follower.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		checkServing(after, followerDir)
		checkBundles(after.CACert)
	})

	t.Run("CA renewed", func(t *testing.T) {
		// Shortly before, a routine serving renewal reached every replica.
		renewAt := t0.Add(-backdate).Add((DefaultCALifetime + backdate) * 2 / 3)
		clock.SetTime(renewAt.Add(-time.Hour))
		if err := leader.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := follower.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		before := stored()
		if cert, _ := files(followerDir); !bytes.Equal(cert, before.Cert) {
			t.Fatal("follower not refreshed")
		}

		clock.SetTime(renewAt)
		if err := leader.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		after := stored()
		if bytes.Equal(after.CACert, before.CACert) || !bytes.Equal(after.PreviousCA, before.CACert) {
			t.Fatal("CA not renewed with the old one kept")
		}
		bundle := append(bytes.Clone(after.CACert), before.CACert...)
		checkBundles(bundle)
		// The follower still serves the old CA's certificate, which the bundle trusts.
		old, _ := files(followerDir)
		if err := verify(t, bundle, old, clock.Now()); err != nil {
			t.Errorf("follower's certificate before refresh: %v", err)
		}
		if err := follower.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		checkServing(after, followerDir)
	})
}

func TestLoopRunsEachTick(t *testing.T) {
	clock := clocktesting.NewFakeClock(t0)
	r := &Rotator{o: Options{Clock: clock, Interval: time.Hour}}
	passes := make(chan struct{}, 10)
	l := &loop{r: r, pass: func(context.Context) error { passes <- struct{}{}; return nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Start(ctx) }()
	<-passes // at once
	for range 2 {
		for !clock.HasWaiters() {
			time.Sleep(time.Millisecond)
		}
		clock.Step(time.Hour)
		select {
		case <-passes:
		case <-time.After(10 * time.Second):
			t.Fatal("no pass after a tick")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l.NeedLeaderElection() {
		t.Error("a follower loop needs leader election")
	}
}
