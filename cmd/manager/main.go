// Command manager runs the proxychain operator: the ProxyChain reconciler, its
// validating webhook and the pod injector, with health and readiness probes, metrics,
// leader election and, by default, its own webhook certificates.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/proxychain/proxychain/controllers"
	"github.com/proxychain/proxychain/internal/certs"
)

// Certificate modes.
const (
	certModeSelfSigned = "self-signed"
	certModeExternal   = "external"
)

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	var (
		metricsAddr    = fs.String("metrics-bind-address", ":8443", `address of the metrics endpoint; "0" disables it`)
		metricsSecure  = fs.Bool("metrics-secure", true, "serve metrics over HTTPS, authenticated and authorized by the API server")
		probeAddr      = fs.String("health-probe-bind-address", ":8081", "address of the /healthz and /readyz probes")
		leaderElect    = fs.Bool("leader-elect", false, "elect a leader, so that only one replica reconciles")
		enableWebhooks = fs.Bool("enable-webhooks", true, "serve the validating webhook and the pod injector")
		webhookCertDir = fs.String("webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory holding the webhook's tls.crt and tls.key; written by the manager with --cert-mode=self-signed")
		enableHTTP2    = fs.Bool("enable-http2", false, "allow HTTP/2 on the metrics and webhook servers (off: CVE-2023-44487, CVE-2023-39325)")

		certMode         = fs.String("cert-mode", certModeSelfSigned, "self-signed: the manager issues, stores, rotates the webhook certificates and patches the caBundles; external: serve the files in --webhook-cert-dir (cert-manager)")
		certSecret       = fs.String("webhook-cert-secret", "proxychain-webhook-certs", "Secret in --webhook-service-namespace holding the self-signed CA and serving certificate")
		serviceName      = fs.String("webhook-service-name", "proxychain-webhook-service", "the webhook Service; the serving certificate names <service>.<namespace>.svc")
		serviceNamespace = fs.String("webhook-service-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the webhook Service and the certificate Secret (default: $POD_NAMESPACE)")
		mutatingConfig   = fs.String("mutating-webhook-configuration", "proxychain-mutating-webhook-configuration", "MutatingWebhookConfiguration whose caBundle the manager patches")
		validatingConfig = fs.String("validating-webhook-configuration", "proxychain-validating-webhook-configuration", "ValidatingWebhookConfiguration whose caBundle the manager patches")

		sidecarImage    = fs.String("sidecar-image", "", "image of the injected sidecar and init containers; it holds /proxychain (required with webhooks)")
		sidecarUID      = fs.Int64("sidecar-uid", 1337, "UID the sidecar runs as; the capture exempts it, so no app container may use it")
		sidecarCPUReq   = fs.String("sidecar-cpu-request", "50m", "the sidecar's CPU request; empty for none")
		sidecarMemReq   = fs.String("sidecar-memory-request", "32Mi", "the sidecar's memory request; empty for none")
		sidecarCPULimit = fs.String("sidecar-cpu-limit", "", "the sidecar's CPU limit; empty for none")
		sidecarMemLimit = fs.String("sidecar-memory-limit", "128Mi", "the sidecar's memory limit; empty for none")
		sidecarLogLevel = fs.String("sidecar-log-level", "info", "the sidecar's -log-level: debug, info, warning, error or none; empty for its default")
		clusterDNS      = fs.String("cluster-dns", "", "comma-separated addresses of the cluster's DNS resolvers, as the kubelet's clusterDNS lists them (e.g. the kube-dns Service's ClusterIPs); a transparent pod may send port 53 only to these and its own dnsConfig nameservers. Empty: port 53 to any address")
	)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	logger := ctrl.Log.WithName("setup")
	if *certMode != certModeSelfSigned && *certMode != certModeExternal {
		return fmt.Errorf("--cert-mode: %q is not %s or %s", *certMode, certModeSelfSigned, certModeExternal)
	}
	var sidecar controllers.SidecarConfig
	if *enableWebhooks {
		resources, err := controllers.ParseResources(*sidecarCPUReq, *sidecarMemReq, *sidecarCPULimit, *sidecarMemLimit)
		if err != nil {
			return err
		}
		dns, err := controllers.ParseClusterDNS(*clusterDNS)
		if err != nil {
			return fmt.Errorf("--cluster-dns: %w", err)
		}
		sidecar = controllers.SidecarConfig{Image: *sidecarImage, UID: *sidecarUID, Resources: resources, LogLevel: *sidecarLogLevel, ClusterDNS: dns}
		if err := sidecar.Validate(); err != nil {
			return err
		}
		if len(dns) == 0 {
			// Kept working for clusters that set nothing, but the hole must not be silent.
			logger.Info("WARNING: no --cluster-dns: transparent pods may send TCP and UDP to port 53 of any address, around the sidecar, unless their dnsPolicy is None; set it to the cluster's DNS Service addresses")
		}
	}

	var tlsOpts []func(*tls.Config)
	if !*enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{
		BindAddress:   *metricsAddr,
		SecureServing: *metricsSecure,
		TLSOpts:       tlsOpts,
	}
	if *metricsSecure {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	restConfig, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	scheme := controllers.NewScheme()

	// The webhook server reads its certificate when it starts, before any runnable
	// runs: the first certificate is issued (or fetched from the Secret) here. The
	// rotator reads through a client without a cache, which would need list and watch
	// on every Secret and webhook configuration.
	var rotator *certs.Rotator
	if *enableWebhooks && *certMode == certModeSelfSigned {
		direct, err := client.New(restConfig, client.Options{Scheme: scheme})
		if err != nil {
			return err
		}
		rotator, err = certs.New(certs.Options{
			Reader: direct, Writer: direct,
			Namespace: *serviceNamespace, SecretName: *certSecret, ServiceName: *serviceName,
			CertDir:                        *webhookCertDir,
			MutatingWebhookConfiguration:   *mutatingConfig,
			ValidatingWebhookConfiguration: *validatingConfig,
			Log:                            ctrl.Log.WithName("certs"),
		})
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = rotator.Bootstrap(ctx)
		cancel()
		if err != nil {
			return err
		}
	}

	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                 scheme,
		Client:                 controllers.ClientOptions(),
		Metrics:                metricsOpts,
		HealthProbeBindAddress: *probeAddr,
		LeaderElection:         *leaderElect,
		LeaderElectionID:       "proxychain-operator.proxychain.io",
		// The process exits right after the manager stops, so the lease can be handed
		// over at once instead of after it expires.
		LeaderElectionReleaseOnCancel: true,
		WebhookServer: webhook.NewServer(webhook.Options{
			CertDir: *webhookCertDir,
			TLSOpts: tlsOpts,
		}),
	})
	if err != nil {
		return err
	}
	if err := controllers.Setup(mgr, controllers.Options{Webhooks: *enableWebhooks, Sidecar: sidecar}); err != nil {
		return err
	}
	if rotator != nil {
		if err := rotator.AddToManager(mgr); err != nil {
			return err
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	ready := healthz.Ping
	if *enableWebhooks {
		ready = mgr.GetWebhookServer().StartedChecker()
	}
	if err := mgr.AddReadyzCheck("readyz", ready); err != nil {
		return err
	}

	logger.Info("starting manager", "leaderElection", *leaderElect, "webhooks", *enableWebhooks, "certMode", *certMode, "clusterDNS", sidecar.ClusterDNS)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
