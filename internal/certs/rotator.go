package certs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// DefaultInterval is how often the leader checks the certificates and caBundles, and
// every replica its files. Each check is a few GETs; checking often heals a caBundle
// that an upgrade reset, and spreads a renewal to every replica soon.
const DefaultInterval = time.Minute

// Options configure a Rotator.
type Options struct {
	// Reader reads the Secret and the webhook configurations from the API server. It
	// must not be a cache: that would list and watch every Secret and webhook
	// configuration, which the manager's RBAC does not allow.
	Reader client.Reader
	// Writer creates and updates the Secret and patches the webhook configurations.
	Writer client.Writer

	// Namespace and SecretName locate the Secret holding the Bundle.
	Namespace, SecretName string
	// ServiceName is the webhook Service in Namespace; it names the certificate.
	ServiceName string
	// CertDir receives tls.crt and tls.key for the webhook server.
	CertDir string
	// MutatingWebhookConfiguration and ValidatingWebhookConfiguration are patched with
	// the caBundle; an empty name is skipped.
	MutatingWebhookConfiguration, ValidatingWebhookConfiguration string

	// Clock defaults to the real clock; Interval to DefaultInterval; Lifetimes to the
	// defaults.
	Clock     clock.WithTicker
	Interval  time.Duration
	Lifetimes Lifetimes
	Log       logr.Logger
}

// Rotator keeps the webhook's certificates current. All writes are optimistic
// (create, or update at the resourceVersion read), so replicas that race converge on
// one Bundle; only the leader writes after start-up.
type Rotator struct {
	o Options
}

// New checks opts and fills in defaults.
func New(opts Options) (*Rotator, error) {
	switch {
	case opts.Reader == nil || opts.Writer == nil:
		return nil, errors.New("certs: a reader and a writer are required")
	case opts.Namespace == "":
		return nil, errors.New("certs: the webhook service namespace is empty (set it, or POD_NAMESPACE)")
	case opts.SecretName == "" || opts.ServiceName == "" || opts.CertDir == "":
		return nil, errors.New("certs: the secret name, service name and certificate directory are required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Lifetimes.CA <= 0 {
		opts.Lifetimes.CA = DefaultCALifetime
	}
	if opts.Lifetimes.Serving <= 0 {
		opts.Lifetimes.Serving = DefaultServingLifetime
	}
	if opts.Lifetimes.Serving > opts.Lifetimes.CA {
		return nil, errors.New("certs: the serving certificate cannot outlive the CA")
	}
	return &Rotator{o: opts}, nil
}

// DNSNames are the names the serving certificate carries.
func (r *Rotator) DNSNames() []string { return DNSNames(r.o.ServiceName, r.o.Namespace) }

// Bootstrap makes sure a usable Bundle exists and its files are in CertDir. The
// manager calls it before starting: the webhook server reads the files at start.
func (r *Rotator) Bootstrap(ctx context.Context) error {
	b, err := r.Ensure(ctx)
	if err != nil {
		return err
	}
	return r.WriteFiles(b)
}

// maxAttempts bounds the create/update races Ensure retries.
const maxAttempts = 5

// Ensure reads the Bundle from its Secret, creating or renewing it as Check says, and
// returns the Bundle now stored.
func (r *Rotator) Ensure(ctx context.Context) (*Bundle, error) {
	key := types.NamespacedName{Namespace: r.o.Namespace, Name: r.o.SecretName}
	var lastErr error
	for range maxAttempts {
		var secret corev1.Secret
		err := r.o.Reader.Get(ctx, key, &secret)
		exists := err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("certs: get secret %s: %w", key, err)
		}
		have := &Bundle{}
		if exists {
			have = FromData(secret.Data)
		}
		now := r.o.Clock.Now()
		due := Check(have, r.DNSNames(), now)
		if !due.Due() {
			return have, nil
		}
		next, err := Renew(have, due, r.DNSNames(), now, r.o.Lifetimes)
		if err != nil {
			return nil, err
		}
		r.o.Log.Info("issuing webhook certificates", "secret", key.String(), "ca", due.CA, "reason", due.Reason)
		if exists {
			secret.Data = next.Data()
			err = r.o.Writer.Update(ctx, &secret) // at the resourceVersion read: a race conflicts
		} else {
			secret = corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: map[string]string{
					"app.kubernetes.io/managed-by": "proxychain-operator",
					"app.kubernetes.io/component":  "webhook-certificates",
				}},
				Type: corev1.SecretTypeOpaque,
				Data: next.Data(),
			}
			err = r.o.Writer.Create(ctx, &secret)
		}
		switch {
		case err == nil:
			return next, nil
		case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
			lastErr = err // another replica wrote first; take what it wrote
			continue
		default:
			return nil, fmt.Errorf("certs: write secret %s: %w", key, err)
		}
	}
	return nil, fmt.Errorf("certs: secret %s kept changing: %w", key, lastErr)
}

// WriteFiles puts the serving certificate and key into CertDir, each replaced by a
// rename so the webhook server never reads half a file. Unchanged files are left alone.
func (r *Rotator) WriteFiles(b *Bundle) error {
	if err := os.MkdirAll(r.o.CertDir, 0o700); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	// Between the two renames the pair does not match: the webhook server's watcher
	// fails that load and keeps the old pair until the second rename loads the new one.
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{KeyKey, b.Key, 0o600}, {KeyCert, b.Cert, 0o644}} {
		path := filepath.Join(r.o.CertDir, f.name)
		if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, f.data) {
			continue
		}
		if err := writeAtomic(path, f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: %w", err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

// PatchCABundles sets caBundle on every webhook of the two configurations whose
// caBundle differs from b's, and reports how many configurations it patched.
func (r *Rotator) PatchCABundles(ctx context.Context, b *Bundle) (int, error) {
	want := b.CABundle(r.o.Clock.Now())
	patched := 0
	var errs []error
	for _, cfg := range []struct {
		obj  client.Object
		name string
	}{
		{&admissionregistrationv1.MutatingWebhookConfiguration{}, r.o.MutatingWebhookConfiguration},
		{&admissionregistrationv1.ValidatingWebhookConfiguration{}, r.o.ValidatingWebhookConfiguration},
	} {
		if cfg.name == "" {
			continue
		}
		if err := r.o.Reader.Get(ctx, types.NamespacedName{Name: cfg.name}, cfg.obj); err != nil {
			errs = append(errs, fmt.Errorf("certs: get %T %s: %w", cfg.obj, cfg.name, err))
			continue
		}
		stale := staleWebhooks(cfg.obj, want)
		if len(stale) == 0 {
			continue
		}
		// A strategic merge patch: webhooks merge by name, so only caBundle changes and
		// nothing else in the configuration is touched.
		type clientConfig struct {
			CABundle []byte `json:"caBundle"`
		}
		type entry struct {
			Name         string       `json:"name"`
			ClientConfig clientConfig `json:"clientConfig"`
		}
		var patch struct {
			Webhooks []entry `json:"webhooks"`
		}
		for _, name := range stale {
			patch.Webhooks = append(patch.Webhooks, entry{Name: name, ClientConfig: clientConfig{CABundle: want}})
		}
		data, err := json.Marshal(patch)
		if err != nil {
			return patched, fmt.Errorf("certs: %w", err)
		}
		if err := r.o.Writer.Patch(ctx, cfg.obj, client.RawPatch(types.StrategicMergePatchType, data)); err != nil {
			errs = append(errs, fmt.Errorf("certs: patch %T %s: %w", cfg.obj, cfg.name, err))
			continue
		}
		patched++
	}
	return patched, errors.Join(errs...)
}

// staleWebhooks names the configuration's webhooks whose caBundle is not want.
func staleWebhooks(obj client.Object, want []byte) []string {
	var stale []string
	switch c := obj.(type) {
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		for _, w := range c.Webhooks {
			if !bytes.Equal(w.ClientConfig.CABundle, want) {
				stale = append(stale, w.Name)
			}
		}
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		for _, w := range c.Webhooks {
			if !bytes.Equal(w.ClientConfig.CABundle, want) {
				stale = append(stale, w.Name)
			}
		}
	}
	return stale
}

// Refresh copies the stored Bundle into CertDir without writing the Secret: what a
// replica that is not the leader does.
func (r *Rotator) Refresh(ctx context.Context) error {
	var secret corev1.Secret
	key := types.NamespacedName{Namespace: r.o.Namespace, Name: r.o.SecretName}
	if err := r.o.Reader.Get(ctx, key, &secret); err != nil {
		return fmt.Errorf("certs: get secret %s: %w", key, err)
	}
	b := FromData(secret.Data)
	if _, err := parseKeyPair(b.Cert, b.Key); err != nil {
		return err // the leader will replace it; keep serving the files we have
	}
	return r.WriteFiles(b)
}

// Rotate is one pass of the leader: renew what is due, update the files, patch the
// caBundles.
func (r *Rotator) Rotate(ctx context.Context) error {
	b, err := r.Ensure(ctx)
	if err != nil {
		return err
	}
	if err := r.WriteFiles(b); err != nil {
		return err
	}
	n, err := r.PatchCABundles(ctx, b)
	if n > 0 {
		r.o.Log.Info("patched caBundle", "configurations", n)
	}
	return err
}

// AddToManager runs Rotate on the leader and Refresh on every replica, now and every
// Interval, until the manager stops. Errors are logged and retried at the next tick.
func (r *Rotator) AddToManager(mgr manager.Manager) error {
	if err := mgr.Add(&loop{r: r, leader: true, pass: r.Rotate, what: "rotate webhook certificates"}); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := mgr.Add(&loop{r: r, leader: false, pass: r.Refresh, what: "refresh webhook certificate files"}); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

// loop is a manager.Runnable calling pass every Interval.
type loop struct {
	r      *Rotator
	leader bool
	pass   func(context.Context) error
	what   string
}

var (
	_ manager.Runnable               = (*loop)(nil)
	_ manager.LeaderElectionRunnable = (*loop)(nil)
)

func (l *loop) NeedLeaderElection() bool { return l.leader }

func (l *loop) Start(ctx context.Context) error {
	t := l.r.o.Clock.NewTicker(l.r.o.Interval)
	defer t.Stop()
	for {
		if err := l.pass(ctx); err != nil && ctx.Err() == nil {
			l.r.o.Log.Error(err, l.what)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}
