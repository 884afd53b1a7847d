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
// again replaces the contents of our chains and adds no second jump. A failure leaves
// the family it happened in unchanged (iptables-restore commits a table atomically), so
// an init container that exits non-zero keeps the pod from starting.
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

// existingJumps reads which OUTPUT chains already jump to ours.
func existingJumps(ctx context.Context, save string) (jumps, error) {
	nat, err := run(ctx, "", save, "-t", "nat")
	if err != nil {
		return jumps{}, err
	}
	filter, err := run(ctx, "", save, "-t", "filter")
	if err != nil {
		return jumps{}, err
	}
	return jumps{nat: hasJump(nat, natJump), filter: hasJump(filter, filterJump)}, nil
}

// hasJump reports whether iptables-save output holds exactly jump in OUTPUT. A jump with
// more conditions (-d X -j PROXYCHAIN_OUTPUT) does not count: taking it for ours would
// leave all other traffic uncaptured.
func hasJump(save []byte, jump string) bool {
	for line := range strings.SplitSeq(string(save), "\n") {
		if line == "-A OUTPUT "+jump {
			return true
		}
	}
	return false
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
