// Command manager runs the proxychain operator: the ProxyChain reconciler and its
// validating webhook, with health and readiness probes, metrics and leader election.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/proxychain/proxychain/controllers"
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
		enableWebhooks = fs.Bool("enable-webhooks", true, "serve the validating webhook")
		webhookCertDir = fs.String("webhook-cert-dir", "", "directory holding the webhook's tls.crt and tls.key (default: the controller-runtime default)")
		enableHTTP2    = fs.Bool("enable-http2", false, "allow HTTP/2 on the metrics and webhook servers (off: CVE-2023-44487, CVE-2023-39325)")
	)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	logger := ctrl.Log.WithName("setup")

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
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                 controllers.NewScheme(),
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
	if err := controllers.Setup(mgr, controllers.Options{Webhooks: *enableWebhooks}); err != nil {
		return err
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

	logger.Info("starting manager", "leaderElection", *leaderElect, "webhooks", *enableWebhooks)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
