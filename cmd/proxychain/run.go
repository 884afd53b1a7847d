package main

import (
	"context"
	"fmt"
	"github.com/proxychain/proxychain/internal/version"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/proxychain/proxychain/proxy/chain"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/instance"
	"github.com/proxychain/proxychain/proxy/metrics"
)

func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	var paths configFiles
	fs.Var(&paths, "c", "config file (V2Ray JSON; comments and trailing commas allowed); repeat to merge several, as V2Ray does")
	level := fs.String("log-level", "", `debug, info, warning, error or none (default: the config's log.loglevel, else "info")`)
	format := fs.String("log-format", "text", "text or json")
	drain := fs.Duration("drain", 10*time.Second, "on SIGINT or SIGTERM, how long open connections may finish before they are cut")
	metricsAddr := fs.String("metrics-addr", "127.0.0.1:15090", `where /metrics, /readyz and /healthz are served; "" disables them`)
	reloadEvery := fs.Duration("reload-interval", 2*time.Second, "how often the config and secret files are checked for changes; 0 disables hot reload")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(paths) == 0 {
		return fmt.Errorf("%w: -c config.json is required", errUsage)
	}
	if *drain < 0 || *reloadEvery < 0 {
		return fmt.Errorf("%w: -drain and -reload-interval may not be negative", errUsage)
	}
	// Taken before loading, so a change made while loading is seen by the first poll.
	loaded := fingerprint(paths)
	cfg, warnings, err := config.Load(paths...)
	printWarnings(stderr, warnings)
	if err != nil {
		return err
	}
	printWarnings(stderr, chain.Warnings(cfg.Outbounds))

	logOut := stderr
	if cfg.Log != nil && cfg.Log.Error != "" {
		f, err := os.OpenFile(cfg.Log.Error, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("log.error: %w", err)
		}
		defer f.Close()
		logOut = f
	}
	if *level == "" && cfg.Log != nil {
		*level = cfg.Log.Loglevel
	}
	log, err := newLogger(logOut, *level, *format)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}

	m := metrics.NewProxy(version.Version)
	var health metrics.Health
	if *metricsAddr != "" {
		ln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fmt.Errorf("-metrics-addr: %w", err)
		}
		srv := &metrics.Server{Registry: m.Registry, Health: &health}
		go srv.Serve(ln)
		defer srv.Close()
		log.Info("metrics listening", "address", ln.Addr().String())
	}

	in, err := instance.Build(cfg, instance.Options{Logger: log, Metrics: m})
	if err != nil {
		return err
	}
	for _, line := range in.Describe() {
		log.Info("outbound", "chain", line)
	}
	if err := in.Start(ctx); err != nil {
		return err
	}
	if len(cfg.Inbounds) == 0 {
		log.Warn("the config has no inbounds, so nothing will be accepted")
	}
	health.SetReady()
	log.Info("proxychain running", "version", version.Version, "config", strings.Join(paths, ","))

	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		if *reloadEvery > 0 {
			r := &reloader{paths: paths, instance: in, metrics: m, log: log, last: loaded}
			r.watch(ctx, *reloadEvery)
		}
	}()
	<-ctx.Done()
	<-watchDone
	health.SetDraining()
	log.Info("shutting down: no new connections; open ones may finish", "drain", *drain)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	if err := in.Shutdown(shutdownCtx); err != nil {
		log.Warn("connections cut at the end of the drain", "err", err)
	}
	return nil
}

// newLogger maps V2Ray's log levels onto slog.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lvl = slog.LevelDebug
	case "", "info":
		lvl = slog.LevelInfo
	case "warning", "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	case "none":
		return slog.New(slog.DiscardHandler), nil
	default:
		return nil, fmt.Errorf("unknown log level %q (want debug, info, warning, error or none)", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q (want text or json)", format)
}

// configFiles collects repeated -c flags.
type configFiles []string

func (f *configFiles) String() string     { return strings.Join(*f, ",") }
func (f *configFiles) Set(v string) error { *f = append(*f, v); return nil }
