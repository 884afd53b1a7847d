package capture

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// tool names the save and restore commands of one address family.
type tool struct {
	v6            bool
	save, restore string
}

var tools = []tool{
	{false, "iptables-save", "iptables-restore"},
	{true, "ip6tables-save", "ip6tables-restore"},
}

// Apply installs the rules in the current network namespace, IPv4 then IPv6. Running it
// again replaces the contents of our chains and leaves one jump to each, first in OUTPUT.
// iptables-restore commits each table atomically, so a failure leaves no table half
// written, and an init container that exits non-zero keeps the pod from starting.
func Apply(ctx context.Context, opts Options) error {
	p, err := opts.parse()
	if err != nil {
		return err
	}
	for _, t := range tools {
		have, err := existingJumps(ctx, t.save)
		if err != nil {
			return err
		}
		// -w waits for the xtables lock instead of failing if another writer holds it.
		if _, err := run(ctx, p.render(t.v6, have), t.restore, "--noflush", "-w"); err != nil {
			return err
		}
	}
	return nil
}

// existingJumps counts the jumps to ours that the OUTPUT chains already hold.
func existingJumps(ctx context.Context, save string) (jumps, error) {
	nat, err := run(ctx, "", save, "-t", "nat")
	if err != nil {
		return jumps{}, err
	}
	filter, err := run(ctx, "", save, "-t", "filter")
	if err != nil {
		return jumps{}, err
	}
	return jumps{nat: countJumps(nat, natJump), filter: countJumps(filter, filterJump)}, nil
}

// countJumps counts the lines of iptables-save output that are exactly jump in OUTPUT. A
// jump with more conditions (-d X -j PROXYCHAIN_OUTPUT) is not ours, and is left alone.
func countJumps(save []byte, jump string) int {
	n := 0
	for line := range strings.SplitSeq(string(save), "\n") {
		if line == "-A OUTPUT "+jump {
			n++
		}
	}
	return n
}

// run runs name with stdin and returns its stdout; a failure carries its stderr.
func run(ctx context.Context, stdin, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("capture: %s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
