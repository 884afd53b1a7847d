package controllers

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proxychain/proxychain/api/v1alpha1"
)

// NewScheme holds the built-in types and proxychain.io/v1alpha1.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// ClientOptions keep Secrets and ConfigMaps out of the manager's cache: the reconciler
// reads the few it needs from the API server, so no Get can start an informer holding
// every Secret in the cluster.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{
		DisableFor: []client.Object{&corev1.Secret{}, &corev1.ConfigMap{}},
	}}
}

// The webhook certificates (internal/certs, --cert-mode=self-signed) patch caBundle
// into the two webhook configurations, and only those, by name. Their Secret needs
// get, create and update in the manager's namespace, which the reconciler's Secret
// rules already grant (RBAC cannot limit create to a name).
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations,verbs=get;patch,resourceNames=proxychain-mutating-webhook-configuration
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,verbs=get;patch,resourceNames=proxychain-validating-webhook-configuration

// Options configure Setup.
type Options struct {
	// Webhooks serves the validating webhook and the pod injector.
	Webhooks bool
	// Sidecar is what the pod injector adds; it must be valid when Webhooks is set.
	Sidecar SidecarConfig
	// Clock stamps condition transitions; nil is the real clock.
	Clock clock.PassiveClock
}

// Setup registers the ProxyChain reconciler and, if asked, the validating webhook and
// the pod injector with mgr. The manager binary and the tests share it.
func Setup(mgr ctrl.Manager, opts Options) error {
	r := &ProxyChainReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder(ManagerName),
		Clock:     opts.Clock,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return err
	}
	if opts.Webhooks {
		if err := SetupWebhookWithManager(mgr); err != nil {
			return fmt.Errorf("controllers: webhook: %w", err)
		}
		if err := SetupPodWebhookWithManager(mgr, opts.Sidecar); err != nil {
			return err
		}
	}
	return nil
}
