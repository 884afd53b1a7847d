package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/proxychain/proxychain/proxy/chain"
	"github.com/proxychain/proxychain/proxy/config"
)

func chainCommand(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("chain", stderr)
	path := fs.String("c", "", "config file (V2Ray JSON; comments and trailing commas allowed)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("%w: -c config.json is required", errUsage)
	}
	// Only the graph is printed, so secret files are not read: this works on a machine
	// that does not hold the secrets.
	data, err := os.ReadFile(*path)
	if err != nil {
		return err
	}
	cfg, warnings, err := config.Parse(data)
	printWarnings(stderr, warnings)
	if err != nil {
		return err
	}
	printWarnings(stderr, chain.Warnings(cfg.Outbounds))
	lines, err := chain.Describe(cfg.Outbounds)
	if err != nil {
		return err
	}
	for _, line := range lines {
		fmt.Fprintln(stdout, line)
	}
	return nil
}

func printWarnings(w io.Writer, warnings []config.Warning) {
	for _, warning := range warnings {
		fmt.Fprintf(w, "warning: %s\n", warning)
	}
}
