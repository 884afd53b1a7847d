package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/proxychain/proxychain/proxy/capture"
)

// Defaults shared with the sidecar's config: where the redirect inbound listens and the
// UID the sidecar runs as.
const (
	defaultRedirectPort = 15001
	defaultSidecarUID   = 1337
)

// initCommand is the pod's init step: in transparent mode it installs the capture rules
// in the current network namespace; in explicit mode the app is given proxy variables
// instead, and there is nothing to install.
func initCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("init", stderr)
	mode := fs.String("mode", "transparent", "transparent (install iptables capture) or explicit (install nothing)")
	port := fs.Int("redirect-port", defaultRedirectPort, "port of the sidecar's redirect inbound on 127.0.0.1 and ::1")
	uid := fs.Int("sidecar-uid", defaultSidecarUID, "UID the sidecar runs as; its traffic is not captured")
	cidrs := fs.String("exclude-cidrs", "", "comma-separated CIDRs (IPv4 and IPv6) that TCP reaches directly, e.g. the cluster and API server networks")
	ports := fs.String("exclude-ports", "", "comma-separated TCP destination ports that are not captured")
	dns := fs.String("dns", "", "comma-separated resolver IPs the pod may query on port 53 (default: port 53 to any address)")
	dryRun := fs.Bool("dry-run", false, "print the rules without installing them")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch *mode {
	case "explicit":
		fmt.Fprintln(stdout, "proxychain init: explicit mode: no capture rules installed; the app uses HTTP_PROXY/ALL_PROXY")
		return nil
	case "transparent":
	default:
		return fmt.Errorf("%w: -mode: %q is not transparent or explicit", errUsage, *mode)
	}
	opts := capture.Options{
		RedirectPort: *port,
		SidecarUID:   *uid,
		ExcludeCIDRs: splitList(*cidrs),
		DNSServers:   splitList(*dns),
	}
	for _, p := range splitList(*ports) {
		n, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("%w: -exclude-ports: %q is not a port number", errUsage, p)
		}
		opts.ExcludePorts = append(opts.ExcludePorts, n)
	}
	v4, v6, err := capture.Rules(opts)
	if err != nil {
		return flagError(err)
	}
	if !*dryRun {
		if err := capture.Apply(ctx, opts); err != nil {
			return err
		}
	}
	verb := "installed"
	if *dryRun {
		verb = "would install"
	}
	fmt.Fprintf(stdout, "proxychain init: %s capture rules: TCP to 127.0.0.1/::1 port %d, sidecar UID %d exempt\n", verb, *port, *uid)
	fmt.Fprintf(stdout, "# iptables-restore --noflush\n%s# ip6tables-restore --noflush\n%s", v4, v6)
	return nil
}

// flagNames maps capture.Options fields to the flags that set them.
var flagNames = map[string]string{
	"RedirectPort": "-redirect-port",
	"SidecarUID":   "-sidecar-uid",
	"ExcludeCIDRs": "-exclude-cidrs",
	"ExcludePorts": "-exclude-ports",
	"DNSServers":   "-dns",
}

// flagError renames a capture option error after its flag.
func flagError(err error) error {
	var oe *capture.OptionError
	if !errors.As(err, &oe) {
		return err
	}
	field, _, _ := strings.Cut(oe.Field, "[")
	if name, ok := flagNames[field]; ok {
		return fmt.Errorf("%w: %s: %v", errUsage, name, oe.Err)
	}
	return fmt.Errorf("%w: %v", errUsage, err)
}

// splitList splits a comma-separated flag value, dropping blanks around and between.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
