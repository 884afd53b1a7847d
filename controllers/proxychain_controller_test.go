package controllers_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proxychain/proxychain/api/v1alpha1"
	"github.com/proxychain/proxychain/internal/render"
	"github.com/proxychain/proxychain/internal/render/rendertest"
	"github.com/proxychain/proxychain/proxy/config"
)

const timeout = 20 * time.Second

func createSeedSecrets(t *testing.T, ns string) {
	t.Helper()
	for name, data := range rendertest.SeedSecrets() {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
		if err := k8sClient.Create(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
}

func createChain(t *testing.T, ns, name string, spec v1alpha1.ProxyChainSpec) *v1alpha1.ProxyChain {
	t.Helper()
	pc := &v1alpha1.ProxyChain{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	if err := k8sClient.Create(context.Background(), pc); err != nil {
		t.Fatal(err)
	}
	return pc
}

// waitCondition waits until the chain's condition has status and reason, and returns
// the chain as read then.
func waitCondition(t *testing.T, key types.NamespacedName, typ string, status metav1.ConditionStatus, reason string) *v1alpha1.ProxyChain {
	t.Helper()
	var pc v1alpha1.ProxyChain
	eventually(t, timeout, func() error {
		if err := k8sClient.Get(context.Background(), key, &pc); err != nil {
			return err
		}
		c := meta.FindStatusCondition(pc.Status.Conditions, typ)
		if c == nil || c.Status != status || c.Reason != reason || pc.Status.ObservedGeneration != pc.Generation {
			return fmt.Errorf("condition %s = %+v, want %s/%s at generation %d", typ, c, status, reason, pc.Generation)
		}
		return nil
	})
	return &pc
}

func TestSeedChainRendersAsSeed(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	ns := newNamespace(t)
	createSeedSecrets(t, ns)
	created := createChain(t, ns, "us-exit", rendertest.SeedSpec())
	key := client.ObjectKeyFromObject(created)
	pc := waitCondition(t, key, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRendered)

	var cm corev1.ConfigMap
	var creds corev1.Secret
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "us-exit-proxychain"}, &cm); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "us-exit-proxychain-credentials"}, &creds); err != nil {
		t.Fatal(err)
	}

	t.Run("owner references", func(t *testing.T) {
		for _, o := range []client.Object{&cm, &creds} {
			refs := o.GetOwnerReferences()
			if len(refs) != 1 || refs[0].UID != pc.UID || refs[0].Kind != "ProxyChain" ||
				refs[0].APIVersion != "proxychain.io/v1alpha1" || refs[0].Controller == nil || !*refs[0].Controller {
				t.Errorf("%s: ownerReferences %+v", o.GetName(), refs)
			}
		}
	})

	t.Run("loads as the seed", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, render.ConfigKey), []byte(cm.Data[render.ConfigKey]), 0o600); err != nil {
			t.Fatal(err)
		}
		for name, value := range creds.Data {
			if err := os.WriteFile(filepath.Join(dir, name), value, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		got := loadResolved(t, filepath.Join(dir, render.ConfigKey))
		want := loadResolved(t, filepath.Join("..", "proxy", "config", "testdata", "seed-chain.json"))
		if len(want) != 4 || !reflect.DeepEqual(got, want) {
			t.Errorf("rendered outbounds\n got %+v\nwant %+v", got, want)
		}
	})

	t.Run("no credential in the ConfigMap", func(t *testing.T) {
		text := cm.Data[render.ConfigKey]
		for _, secret := range []string{rendertest.DOUSID, rendertest.DOSGID, `"password"`, `"id"`} {
			if strings.Contains(text, secret) {
				t.Errorf("ConfigMap holds %s:\n%s", secret, text)
			}
		}
	})

	t.Run("status", func(t *testing.T) {
		want := []v1alpha1.OutboundStatus{
			{Tag: "DOUS", Path: rendertest.SeedPath, Hops: 4},
			{Tag: "AliHK", Path: "AliHK", Hops: 1},
			{Tag: "AliSG", Path: "AliHK -> AliSG", Hops: 2},
			{Tag: "DOSG", Path: "AliHK -> AliSG -> DOSG", Hops: 3},
		}
		if !reflect.DeepEqual(pc.Status.Outbounds, want) {
			t.Errorf("status.outbounds %+v", pc.Status.Outbounds)
		}
		if pc.Status.Entry != "AliHK" || pc.Status.Exit != "DOUS" || pc.Status.Hops != 4 {
			t.Errorf("entry %q exit %q hops %d", pc.Status.Entry, pc.Status.Exit, pc.Status.Hops)
		}
		spec := rendertest.SeedSpec()
		res, err := render.Render(&spec, rendertest.SeedSecrets())
		if err != nil {
			t.Fatal(err)
		}
		if pc.Status.ConfigHash != res.Hash {
			t.Errorf("configHash %q, want %q", pc.Status.ConfigHash, res.Hash)
		}
		secure := meta.FindStatusCondition(pc.Status.Conditions, v1alpha1.ConditionSecure)
		wantMsg := "weak crypto on DOUS (legacy VMess alterId 64), AliHK (stream cipher aes-256-cfb), " +
			"AliSG (stream cipher aes-256-cfb), DOSG (legacy VMess alterId 64)"
		if secure == nil || secure.Status != metav1.ConditionFalse || secure.Reason != v1alpha1.ReasonInsecureHops || secure.Message != wantMsg {
			t.Errorf("Secure condition %+v", secure)
		}
		for _, c := range pc.Status.Conditions {
			if !c.LastTransitionTime.Time.Equal(transitionTime) {
				t.Errorf("%s transitioned at %v, want the injected clock's %v", c.Type, c.LastTransitionTime, transitionTime)
			}
		}
	})

	t.Run("events", func(t *testing.T) {
		waitEvents(t, ns, "us-exit", "Normal/Rendered", "Warning/InsecureHops")
	})

	t.Run("no writes when nothing changed", func(t *testing.T) {
		// Touch the chain without changing its spec: the reconcile it causes must write
		// nothing, and nothing may loop.
		var fresh v1alpha1.ProxyChain
		if err := k8sClient.Get(ctx, key, &fresh); err != nil {
			t.Fatal(err)
		}
		fresh.Annotations = map[string]string{"test": "touch"}
		if err := k8sClient.Update(ctx, &fresh); err != nil {
			t.Fatal(err)
		}
		versions := func() (string, error) {
			var p v1alpha1.ProxyChain
			var c corev1.ConfigMap
			var s corev1.Secret
			for _, get := range []struct {
				name string
				obj  client.Object
			}{{key.Name, &p}, {"us-exit-proxychain", &c}, {"us-exit-proxychain-credentials", &s}} {
				if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: get.name}, get.obj); err != nil {
					return "", err
				}
			}
			return strings.Join([]string{p.ResourceVersion, c.ResourceVersion, s.ResourceVersion}, "/"), nil
		}
		want := strings.Join([]string{fresh.ResourceVersion, cm.ResourceVersion, creds.ResourceVersion}, "/")
		consistently(t, 3*time.Second, func() error {
			got, err := versions()
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("resourceVersions (chain/configmap/secret) moved from %s to %s", want, got)
			}
			return nil
		})
	})

	t.Run("secret rotation re-renders", func(t *testing.T) {
		var s corev1.Secret
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: rendertest.ShadowsocksSecret}, &s); err != nil {
			t.Fatal(err)
		}
		s.Data["AliHK"] = []byte("rotated-password")
		if err := k8sClient.Update(ctx, &s); err != nil {
			t.Fatal(err)
		}
		oldHash := pc.Status.ConfigHash
		eventually(t, timeout, func() error {
			var p v1alpha1.ProxyChain
			if err := k8sClient.Get(ctx, key, &p); err != nil {
				return err
			}
			if p.Status.ConfigHash == oldHash {
				return fmt.Errorf("configHash still %s", oldHash)
			}
			return nil
		})
		var rotated corev1.Secret
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "us-exit-proxychain-credentials"}, &rotated); err != nil {
			t.Fatal(err)
		}
		if got := string(rotated.Data["AliHK-0-password"]); got != "rotated-password" {
			t.Errorf("credentials Secret has %q", got)
		}
		// The topology did not change, so neither did the ConfigMap.
		var after corev1.ConfigMap
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "us-exit-proxychain"}, &after); err != nil {
			t.Fatal(err)
		}
		if after.ResourceVersion != cm.ResourceVersion {
			t.Errorf("ConfigMap rewritten (%s -> %s) though only a credential changed", cm.ResourceVersion, after.ResourceVersion)
		}
	})
}

func loadResolved(t *testing.T, path string) []rendertest.Outbound {
	t.Helper()
	cfg, _, err := config.Load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	out, err := rendertest.ResolvedOutbounds(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitEvents waits for events about the named chain with each "type/reason" in want.
func waitEvents(t *testing.T, ns, name string, want ...string) {
	t.Helper()
	eventually(t, timeout, func() error {
		var list eventsv1.EventList
		if err := k8sClient.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, e := range list.Items {
			if e.Regarding.Kind == "ProxyChain" && e.Regarding.Name == name && e.ReportingController == "proxychain-operator" {
				seen[e.Type+"/"+e.Reason] = true
			}
		}
		for _, w := range want {
			if !seen[w] {
				return fmt.Errorf("no %s event among %v", w, seen)
			}
		}
		return nil
	})
}

func TestMissingSecret(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	ns := newNamespace(t)
	pc := createChain(t, ns, "waiting", rendertest.SeedSpec())
	key := client.ObjectKeyFromObject(pc)
	got := waitCondition(t, key, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
	ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
	for _, name := range []string{`secret "ss-passwords" not found`, `secret "vmess-ids" not found`} {
		if !strings.Contains(ready.Message, name) {
			t.Errorf("Ready message %q does not name %s", ready.Message, name)
		}
	}
	// Nothing half-written: no ConfigMap, no credentials Secret.
	consistently(t, time.Second, func() error {
		for _, obj := range []client.Object{
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "waiting-proxychain"}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "waiting-proxychain-credentials"}},
		} {
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%T %s: %v (want NotFound)", obj, obj.GetName(), err)
			}
		}
		return nil
	})
	waitEvents(t, ns, "waiting", "Warning/SecretNotFound")

	// The Secrets arrive: the watch on them renders the chain.
	createSeedSecrets(t, ns)
	waitCondition(t, key, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRendered)
	var cm corev1.ConfigMap
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "waiting-proxychain"}, &cm); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, ns, "waiting", "Normal/Rendered")

	// A key goes missing: Ready=False names it, and the last good ConfigMap stays.
	var s corev1.Secret
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: rendertest.VMessSecret}, &s); err != nil {
		t.Fatal(err)
	}
	delete(s.Data, "DOSG")
	if err := k8sClient.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
	got = waitCondition(t, key, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
	ready = meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
	if want := `secret "vmess-ids" has no key "DOSG"`; !strings.Contains(ready.Message, want) {
		t.Errorf("Ready message %q does not say %s", ready.Message, want)
	}
	var after corev1.ConfigMap
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "waiting-proxychain"}, &after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != cm.ResourceVersion {
		t.Error("ConfigMap changed while a key was missing")
	}
}

// flakyReader fails the first failures Gets of a Secret with 503, as an overloaded API
// server does, and passes every other read to the API server.
type flakyReader struct {
	client.Reader
	failures atomic.Int32 // still to inject
}

func (f *flakyReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.Secret); ok && f.failures.Add(-1) >= 0 {
		return apierrors.NewServiceUnavailable("injected by the test")
	}
	return f.Reader.Get(ctx, key, obj, opts...)
}

// TestSecretReadErrorRetried: a failing read of a referenced Secret is no fault of the
// chain's, so the reconciler retries it by itself, and the chain becomes Ready with no
// change to it or to its Secrets to wake it.
func TestSecretReadErrorRetried(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	ns := newNamespace(t)
	createSeedSecrets(t, ns)
	// More failures than there are events to wake the chain (its creation, its status
	// write, the Secrets' initial listing), so only a retry gets past them.
	const failures = 5
	reader := &flakyReader{}
	reader.failures.Store(failures)
	startReconciler(t, ns, func(r client.Reader) client.Reader { reader.Reader = r; return reader })

	pc := &v1alpha1.ProxyChain{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "flaky", Labels: map[string]string{ownReconcilerLabel: "true"}},
		Spec:       rendertest.SeedSpec(),
	}
	if err := k8sClient.Create(ctx, pc); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, client.ObjectKeyFromObject(pc), v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonRendered)
	if left := reader.failures.Load(); left > 0 {
		t.Fatalf("Ready with %d of %d injected failures unused: the test did not test", left, failures)
	}
	if got.Generation != pc.Generation {
		t.Errorf("chain generation %d, created at %d", got.Generation, pc.Generation)
	}
	// The failures were reported as reads, not as writes.
	waitEvents(t, ns, "flaky", "Warning/"+v1alpha1.ReasonReadFailed, "Normal/"+v1alpha1.ReasonRendered)
	var cm corev1.ConfigMap
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "flaky-proxychain"}, &cm); err != nil {
		t.Fatal(err)
	}
}

// TestManyMissingKeys: a chain referencing hundreds of missing keys still gets its Ready
// condition. Listing each would pass the 32768 characters the API server allows a
// condition's message.
func TestManyMissingKeys(t *testing.T) {
	requireEnv(t)
	ns := newNamespace(t)
	spec := rendertest.ManyRefsSpec(2, "absent") // 512 references
	pc := createChain(t, ns, "wide", spec)
	got := waitCondition(t, client.ObjectKeyFromObject(pc), v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
	msg := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady).Message
	first := `render: secret "absent" not found (spec.outbounds[0].settings.vnext[0].users[0].idFrom); `
	if !strings.HasPrefix(msg, first) || !strings.HasSuffix(msg, "; and 502 more") || len(msg) > 2048 {
		t.Errorf("Ready message (%d bytes) does not name the first 10 references and count the rest:\n%s", len(msg), msg)
	}
	waitEvents(t, ns, "wide", "Warning/"+v1alpha1.ReasonSecretNotFound)
}
