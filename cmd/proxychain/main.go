// Command proxychain is the data plane: it runs a V2Ray-style config (inbounds, chained
// outbounds, routing) and reloads it when its files change, installs a pod's transparent
// capture, prints an outbound chain, converts a V2Ray config into a ProxyChain, and
// reports its version.
//
//	proxychain run -c config.json [-c more.json] [-log-level info] [-log-format text] [-drain 10s]
//	               [-metrics-addr 127.0.0.1:15090] [-reload-interval 2s]
//	proxychain init [-mode transparent] [-redirect-port 15001] [-sidecar-uid 1337]
//	                [-exclude-cidrs CIDR,...] [-exclude-ports P,...] [-dns IP,...] [-dry-run]
//	proxychain chain -c config.json
//	proxychain convert -f v2ray.json [-f more.json] --name NAME [--namespace NS] [--secret-name NAME]
//	proxychain version
//	proxychain help
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/proxychain/proxychain/internal/version"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"syscall"
)

// command is one subcommand. Each parses its own flags from args.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"run":     {"run the data plane from a config file", runCommand},
	"chain":   {"print the hops of each outbound's chain", chainCommand},
	"init":    {"install the pod's iptables capture (the sidecar's init step)", initCommand},
	"convert": {"print a V2Ray config as a ProxyChain and its credentials Secret", convertCommand},
	"version": {"print the version", versionCommand},
}

// errUsage marks an error whose message is a usage problem (exit status 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "-help" || name == "--help" {
		if len(args) > 1 {
			if cmd, ok := commands[args[1]]; ok {
				cmd.run(ctx, []string{"-h"}, stdout, stdout)
				return 0
			}
		}
		usage(stdout)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "proxychain: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	if err := cmd.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "proxychain %s: %v\n", name, err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "proxychain runs chained proxy outbounds (V2Ray proxySettings) from a V2Ray-style JSON config.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: proxychain <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-8s %s\n", name, commands[name].summary)
	}
	fmt.Fprintf(w, "  %-8s %s\n", "help", "show this help, or a command's: proxychain help run")
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("proxychain "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args and rejects positional leftovers.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

func versionCommand(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "proxychain %s %s %s/%s\n", version.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
