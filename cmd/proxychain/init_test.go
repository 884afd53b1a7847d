package main

import (
	"context"
	"strings"
	"testing"
)

// TestInitRejectsBadFlags checks that every bad value exits 2 with a message naming
// its flag, before any rule is installed (these never reach iptables).
func TestInitRejectsBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-mode", "sideways"}, `-mode: "sideways" is not transparent or explicit`},
		{[]string{"-redirect-port", "0"}, "-redirect-port: 0 is not a port (1 to 65535)"},
		{[]string{"-redirect-port", "70000"}, "-redirect-port: 70000 is not a port"},
		{[]string{"-redirect-port", "x"}, `invalid value "x" for flag -redirect-port`},
		{[]string{"-sidecar-uid", "0"}, "-sidecar-uid: 0 is not a non-root UID"},
		{[]string{"-sidecar-uid", "-5"}, "-sidecar-uid: -5 is not a non-root UID"},
		{[]string{"-exclude-cidrs", "10.0.0.0/8,10.0.0.0/33"}, `-exclude-cidrs: "10.0.0.0/33" is not a CIDR`},
		{[]string{"-exclude-cidrs", "cluster"}, `-exclude-cidrs: "cluster" is not a CIDR or an IP address`},
		{[]string{"-exclude-ports", "443,https"}, `-exclude-ports: "https" is not a port number`},
		{[]string{"-exclude-ports", "22,0"}, "-exclude-ports: 0 is not a port"},
		{[]string{"-dns", "10.96.0.10,resolver"}, `-dns: "resolver" is not an IP address`},
		{[]string{"extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		code, stdout, stderr := runMain(t, context.Background(), append([]string{"init"}, tt.args...)...)
		if code != 2 || !strings.Contains(stderr, tt.want) || stdout != "" {
			t.Errorf("init %q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args, code, stdout, stderr, tt.want)
		}
	}
}

func TestInitDryRunPrintsRules(t *testing.T) {
	code, stdout, stderr := runMain(t, context.Background(), "init", "-dry-run", "-redirect-port", "15006",
		"-sidecar-uid", "2000", "-exclude-cidrs", " 10.96.0.0/12, fd00::/8 ", "-exclude-ports", "22", "-dns", "10.96.0.10")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		"would install capture rules: TCP to 127.0.0.1/::1 port 15006, sidecar UID 2000 exempt",
		"# iptables-restore --noflush\n*nat\n",
		"-A PROXYCHAIN_OUTPUT -p tcp -j REDIRECT --to-ports 15006\n",
		"-A PROXYCHAIN_OUTPUT -m owner --uid-owner 2000 -j RETURN\n",
		"-A PROXYCHAIN_OUTPUT -d 10.96.0.0/12 -j RETURN\n",
		"-A PROXYCHAIN_OUTPUT -d fd00::/8 -j RETURN\n",
		"-A PROXYCHAIN_OUTPUT -p tcp -m tcp --dport 22 -j RETURN\n",
		"-A PROXYCHAIN_OUTPUT -d 10.96.0.10/32 -p udp -m udp --dport 53 -j RETURN\n",
		"-A PROXYCHAIN_OUTPUT -j DROP\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	// Each family gets only its own networks.
	v4, v6, _ := strings.Cut(stdout, "# ip6tables-restore")
	if strings.Contains(v4, "fd00::/8") || strings.Contains(v6, "10.96.0.0/12") {
		t.Errorf("networks in the wrong family:\n%s", stdout)
	}
}

func TestInitExplicitInstallsNothing(t *testing.T) {
	code, stdout, _ := runMain(t, context.Background(), "init", "-mode", "explicit", "-sidecar-uid", "0")
	if code != 0 || !strings.Contains(stdout, "explicit mode: no capture rules installed") {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
}
