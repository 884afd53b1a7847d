package capture

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const helperEnv = "PROXYCHAIN_CAPTURE_APPLY_HELPER"

// TestApply runs TestApplyHelper in a fresh network namespace (unshare --net), where it
// may change iptables without touching the host's.
func TestApply(t *testing.T) {
	if os.Geteuid() != 0 {
		msg := "SKIPPING: TestApply needs root to create a network namespace and run iptables-restore"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for _, tool := range []string{"unshare", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "--", os.Args[0], "-test.run=^TestApplyHelper$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestApplyHelper") {
		t.Fatalf("helper in a new network namespace: %v\n%s", err, out)
	}
}

// narrowed is a jump to our chain that only some traffic takes, as another tool or a
// hand edit might leave; per family, for iptables-restore --noflush.
var narrowed = [2]string{
	"*nat\n:" + Chain + " - [0:0]\n-A OUTPUT -d 192.0.2.1/32 -p tcp -j " + Chain + "\nCOMMIT\n" +
		"*filter\n:" + Chain + " - [0:0]\n-A OUTPUT -d 192.0.2.1/32 -j " + Chain + "\nCOMMIT\n",
	"*nat\n:" + Chain + " - [0:0]\n-A OUTPUT -d 2001:db8::1/128 -p tcp -j " + Chain + "\nCOMMIT\n" +
		"*filter\n:" + Chain + " - [0:0]\n-A OUTPUT -d 2001:db8::1/128 -j " + Chain + "\nCOMMIT\n",
}

// ahead puts an ACCEPT at the top of OUTPUT in both tables, per family.
var ahead = [2]string{
	"*nat\n-I OUTPUT 1 -d 192.0.2.2/32 -j ACCEPT\nCOMMIT\n*filter\n-I OUTPUT 1 -d 192.0.2.2/32 -j ACCEPT\nCOMMIT\n",
	"*nat\n-I OUTPUT 1 -d 2001:db8::2/128 -j ACCEPT\nCOMMIT\n*filter\n-I OUTPUT 1 -d 2001:db8::2/128 -j ACCEPT\nCOMMIT\n",
}

// firstOutputRule returns the first OUTPUT rule of iptables-save output.
func firstOutputRule(save string) string {
	for line := range strings.SplitSeq(save, "\n") {
		if strings.HasPrefix(line, "-A OUTPUT ") {
			return line
		}
	}
	return ""
}

// fullJump is the unconditional jump of each table as iptables-save prints it, written
// out here rather than taken from the code under test.
var fullJump = map[string]string{
	"nat":    "-A OUTPUT -p tcp -j PROXYCHAIN_OUTPUT",
	"filter": "-A OUTPUT -j PROXYCHAIN_OUTPUT",
}

// TestApplyHelper applies three times, twice with different options, over a narrowed jump
// left by someone else and, after the first, an ACCEPT put ahead of ours. It checks that
// each table has exactly one unconditional jump, first in OUTPUT, and the second options'
// rules, the narrowed jump left alone.
func TestApplyHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("runs only inside TestApply's network namespace")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tl := range tools {
		if _, err := run(ctx, narrowed[family(tl.v6)], tl.restore, "--noflush", "-w"); err != nil {
			t.Fatal(err)
		}
	}
	first := Options{RedirectPort: 15001, SidecarUID: 1337, ExcludeCIDRs: []string{"10.96.0.0/12", "fd00::/8"}}
	second := Options{RedirectPort: 15006, SidecarUID: 1338, ExcludePorts: []int{22}}
	if err := Apply(ctx, first); err != nil {
		t.Fatalf("first Apply: %v", err)
	}
	// A rule put ahead of the jump since, which a re-run must not leave ahead of it.
	for _, tl := range tools {
		if _, err := run(ctx, ahead[family(tl.v6)], tl.restore, "--noflush", "-w"); err != nil {
			t.Fatal(err)
		}
	}
	if err := Apply(ctx, second); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if err := Apply(ctx, second); err != nil {
		t.Fatalf("third Apply: %v", err)
	}
	p, err := second.parse()
	if err != nil {
		t.Fatal(err)
	}
	for _, tl := range tools {
		want := p.render(tl.v6, jumps{})
		for _, table := range []string{"nat", "filter"} {
			out, err := run(ctx, "", tl.save, "-t", table)
			if err != nil {
				t.Fatal(err)
			}
			got, jumpCount := ourRules(string(out))
			if jumpCount != 2 {
				t.Errorf("%s -t %s: %d jumps to %s, want the narrowed one and ours:\n%s", tl.save, table, jumpCount, Chain, out)
			}
			if n := strings.Count(string(out), fullJump[table]+"\n"); n != 1 {
				t.Errorf("%s -t %s: %d of %q, want 1:\n%s", tl.save, table, n, fullJump[table], out)
			}
			if first := firstOutputRule(string(out)); first != fullJump[table] {
				t.Errorf("%s -t %s: OUTPUT starts with %q, want %q:\n%s", tl.save, table, first, fullJump[table], out)
			}
			for _, rule := range got {
				if !strings.Contains(want, rule+"\n") {
					t.Errorf("%s -t %s: rule %q is not in the rendered rules", tl.save, table, rule)
				}
			}
			if wantCount := strings.Count(tableSection(want, table), "-A "+Chain); len(got) != wantCount {
				t.Errorf("%s -t %s: %d rules in %s, want %d:\n%s", tl.save, table, len(got), Chain, wantCount, out)
			}
		}
	}
}

// ourRules returns the rules of our chain from iptables-save output and counts the jumps
// from OUTPUT to it.
func ourRules(save string) (rules []string, jumps int) {
	for line := range strings.SplitSeq(save, "\n") {
		switch {
		case strings.HasPrefix(line, "-A "+Chain+" "):
			rules = append(rules, line)
		case strings.HasPrefix(line, "-A OUTPUT ") && strings.HasSuffix(line, "-j "+Chain):
			jumps++
		}
	}
	return rules, jumps
}

// tableSection returns the part of restore input between *table and its COMMIT.
func tableSection(in, table string) string {
	start := strings.Index(in, "*"+table+"\n")
	if start < 0 {
		return ""
	}
	end := strings.Index(in[start:], "COMMIT\n")
	return in[start : start+end]
}

// TestCountJumps: only the exact unconditional jump counts as ours.
func TestCountJumps(t *testing.T) {
	const head = "*filter\n:OUTPUT ACCEPT [0:0]\n:PROXYCHAIN_OUTPUT - [0:0]\n"
	tests := []struct {
		name  string
		lines string
		jump  string
		want  int
	}{
		{"filter jump", "-A OUTPUT -j PROXYCHAIN_OUTPUT\n", filterJump, 1},
		{"nat jump", "-A OUTPUT -p tcp -j PROXYCHAIN_OUTPUT\n", natJump, 1},
		{"after other rules", "-A OUTPUT -o eth0 -j ACCEPT\n-A OUTPUT -j PROXYCHAIN_OUTPUT\n", filterJump, 1},
		{"narrowed one too", "-A OUTPUT -d 10.0.0.1/32 -j PROXYCHAIN_OUTPUT\n-A OUTPUT -j PROXYCHAIN_OUTPUT\n", filterJump, 1},
		{"twice", "-A OUTPUT -j PROXYCHAIN_OUTPUT\n-A OUTPUT -o eth0 -j ACCEPT\n-A OUTPUT -j PROXYCHAIN_OUTPUT\n", filterJump, 2},
		{"no rules", "", filterJump, 0},
		{"destination", "-A OUTPUT -d 10.0.0.1/32 -j PROXYCHAIN_OUTPUT\n", filterJump, 0},
		{"negated", "-A OUTPUT ! -o eth0 -j PROXYCHAIN_OUTPUT\n", filterJump, 0},
		{"nat's jump in filter", "-A OUTPUT -p tcp -j PROXYCHAIN_OUTPUT\n", filterJump, 0},
		{"narrowed nat", "-A OUTPUT -d 10.0.0.1/32 -p tcp -j PROXYCHAIN_OUTPUT\n", natJump, 0},
		{"port", "-A OUTPUT -p tcp -m tcp --dport 80 -j PROXYCHAIN_OUTPUT\n", natJump, 0},
		{"other chain", "-A PREROUTING -j PROXYCHAIN_OUTPUT\n", filterJump, 0},
		{"longer name", "-A OUTPUT -j PROXYCHAIN_OUTPUT_OLD\n", filterJump, 0},
		{"goto", "-A OUTPUT -g PROXYCHAIN_OUTPUT\n", filterJump, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := countJumps([]byte(head+tt.lines+"COMMIT\n"), tt.jump); got != tt.want {
				t.Fatalf("countJumps(%q, %q) = %d, want %d", tt.lines, tt.jump, got, tt.want)
			}
		})
	}
}
