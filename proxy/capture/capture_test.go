package capture

import (
	"errors"
	"strings"
	"testing"
)

func TestRulesMinimal(t *testing.T) {
	v4, v6, err := Rules(Options{RedirectPort: 15001, SidecarUID: 1337})
	if err != nil {
		t.Fatal(err)
	}
	wantV4 := `*nat
:PROXYCHAIN_OUTPUT - [0:0]
-A PROXYCHAIN_OUTPUT -o lo -j RETURN
-A PROXYCHAIN_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A PROXYCHAIN_OUTPUT -p tcp -m tcp --dport 53 -j RETURN
-A PROXYCHAIN_OUTPUT -p tcp -j REDIRECT --to-ports 15001
-I OUTPUT 1 -p tcp -j PROXYCHAIN_OUTPUT
COMMIT
*filter
:PROXYCHAIN_OUTPUT - [0:0]
-A PROXYCHAIN_OUTPUT -o lo -j RETURN
-A PROXYCHAIN_OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 15001 -j RETURN
-A PROXYCHAIN_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A PROXYCHAIN_OUTPUT -p udp -m udp --dport 53 -j RETURN
-A PROXYCHAIN_OUTPUT -p tcp -m tcp --dport 53 -j RETURN
-A PROXYCHAIN_OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED --ctdir REPLY -j RETURN
-A PROXYCHAIN_OUTPUT -j DROP
-I OUTPUT 1 -j PROXYCHAIN_OUTPUT
COMMIT
`
	wantV6 := `*nat
:PROXYCHAIN_OUTPUT - [0:0]
-A PROXYCHAIN_OUTPUT -o lo -j RETURN
-A PROXYCHAIN_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A PROXYCHAIN_OUTPUT -p tcp -m tcp --dport 53 -j RETURN
-A PROXYCHAIN_OUTPUT -p tcp -j REDIRECT --to-ports 15001
-I OUTPUT 1 -p tcp -j PROXYCHAIN_OUTPUT
COMMIT
*filter
:PROXYCHAIN_OUTPUT - [0:0]
-A PROXYCHAIN_OUTPUT -o lo -j RETURN
-A PROXYCHAIN_OUTPUT -d ::1/128 -p tcp -m tcp --dport 15001 -j RETURN
-A PROXYCHAIN_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A PROXYCHAIN_OUTPUT -p udp -m udp --dport 53 -j RETURN
-A PROXYCHAIN_OUTPUT -p tcp -m tcp --dport 53 -j RETURN
-A PROXYCHAIN_OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED --ctdir REPLY -j RETURN
-A PROXYCHAIN_OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 133 -j RETURN
-A PROXYCHAIN_OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j RETURN
-A PROXYCHAIN_OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 136 -j RETURN
-A PROXYCHAIN_OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 143 -j RETURN
-A PROXYCHAIN_OUTPUT -j DROP
-I OUTPUT 1 -j PROXYCHAIN_OUTPUT
COMMIT
`
	diff(t, "v4", v4, wantV4)
	diff(t, "v6", v6, wantV6)
}

func TestRulesFull(t *testing.T) {
	v4, v6, err := Rules(Options{
		RedirectPort: 15001,
		SidecarUID:   65532,
		ExcludeCIDRs: []string{"10.96.0.0/12", "fd00:10:96::/112", "192.168.7.9", "10.244.1.77/16", "2001:db8::1"},
		ExcludePorts: []int{22, 6443},
		DNSServers:   []string{"10.96.0.10", "fd00:10:96::a"},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantV4 := `*nat
:PROXYCHAIN_OUTPUT - [0:0]
-A PROXYCHAIN_OUTPUT -o lo -j RETURN
-A PROXYCHAIN_OUTPUT -m owner --uid-owner 65532 -j RETURN
-A PROXYCHAIN_OUTPUT -d 10.96.0.10/32 -p tcp -m tcp --dport 53 -j RETURN
-A PROXYCHAIN_OUTPUT -d 10.96.0.0/12 -j RETURN
-A PROXYCHAIN_OUTPUT -d 192.168.7.9/32 -j RETURN
-A PROXYCHAIN_OUTPUT -d 10.244.0.0/16 -j RETURN
-A PROXYCHAIN_OUTPUT -p tcp -m tcp --dport 22 -j RETURN
-A PROXYCHAIN_OUTPUT -p tcp -m tcp --dport 6443 -j RETURN
-A PROXYCHAIN_OUTPUT -p tcp -j REDIRECT --to-ports 15001
-I OUTPUT 1 -p tcp -j PROXYCHAIN_OUTPUT
COMMIT
*filter
:PROXYCHAIN_OUTPUT - [0:0]
-A PROXYCHAIN_OUTPUT -o lo -j RETURN
-A PROXYCHAIN_OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 15001 -j RETURN
-A PROXYCHAIN_OUTPUT -m owner --uid-owner 65532 -j RETURN
-A PROXYCHAIN_OUTPUT -d 10.96.0.10/32 -p udp -m udp --dport 53 -j RETURN
-A PROXYCHAIN_OUTPUT -d 10.96.0.10/32 -p tcp -m tcp --dport 53 -j RETURN
-A PROXYCHAIN_OUTPUT -d 10.96.0.0/12 -p tcp -j RETURN
-A PROXYCHAIN_OUTPUT -d 192.168.7.9/32 -p tcp -j RETURN
-A PROXYCHAIN_OUTPUT -d 10.244.0.0/16 -p tcp -j RETURN
-A PROXYCHAIN_OUTPUT -p tcp -m tcp --dport 22 -j RETURN
-A PROXYCHAIN_OUTPUT -p tcp -m tcp --dport 6443 -j RETURN
-A PROXYCHAIN_OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED --ctdir REPLY -j RETURN
-A PROXYCHAIN_OUTPUT -j DROP
-I OUTPUT 1 -j PROXYCHAIN_OUTPUT
COMMIT
`
	wantV6 := `*nat
:PROXYCHAIN_OUTPUT - [0:0]
-A PROXYCHAIN_OUTPUT -o lo -j RETURN
-A PROXYCHAIN_OUTPUT -m owner --uid-owner 65532 -j RETURN
-A PROXYCHAIN_OUTPUT -d fd00:10:96::a/128 -p tcp -m tcp --dport 53 -j RETURN
-A PROXYCHAIN_OUTPUT -d fd00:10:96::/112 -j RETURN
-A PROXYCHAIN_OUTPUT -d 2001:db8::1/128 -j RETURN
-A PROXYCHAIN_OUTPUT -p tcp -m tcp --dport 22 -j RETURN
-A PROXYCHAIN_OUTPUT -p tcp -m tcp --dport 6443 -j RETURN
-A PROXYCHAIN_OUTPUT -p tcp -j REDIRECT --to-ports 15001
-I OUTPUT 1 -p tcp -j PROXYCHAIN_OUTPUT
COMMIT
*filter
:PROXYCHAIN_OUTPUT - [0:0]
-A PROXYCHAIN_OUTPUT -o lo -j RETURN
-A PROXYCHAIN_OUTPUT -d ::1/128 -p tcp -m tcp --dport 15001 -j RETURN
-A PROXYCHAIN_OUTPUT -m owner --uid-owner 65532 -j RETURN
-A PROXYCHAIN_OUTPUT -d fd00:10:96::a/128 -p udp -m udp --dport 53 -j RETURN
-A PROXYCHAIN_OUTPUT -d fd00:10:96::a/128 -p tcp -m tcp --dport 53 -j RETURN
-A PROXYCHAIN_OUTPUT -d fd00:10:96::/112 -p tcp -j RETURN
-A PROXYCHAIN_OUTPUT -d 2001:db8::1/128 -p tcp -j RETURN
-A PROXYCHAIN_OUTPUT -p tcp -m tcp --dport 22 -j RETURN
-A PROXYCHAIN_OUTPUT -p tcp -m tcp --dport 6443 -j RETURN
-A PROXYCHAIN_OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED --ctdir REPLY -j RETURN
-A PROXYCHAIN_OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 133 -j RETURN
-A PROXYCHAIN_OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j RETURN
-A PROXYCHAIN_OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 136 -j RETURN
-A PROXYCHAIN_OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 143 -j RETURN
-A PROXYCHAIN_OUTPUT -j DROP
-I OUTPUT 1 -j PROXYCHAIN_OUTPUT
COMMIT
`
	diff(t, "v4", v4, wantV4)
	diff(t, "v6", v6, wantV6)
}

// TestRulesDNSOneFamily: resolvers of one family allow no DNS at all in the other.
func TestRulesDNSOneFamily(t *testing.T) {
	_, v6, err := Rules(Options{RedirectPort: 1, SidecarUID: 1, DNSServers: []string{"10.0.0.10"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(v6, "--dport 53") {
		t.Fatalf("IPv6 rules allow DNS with only an IPv4 resolver:\n%s", v6)
	}
}

// TestRenderMovesExistingJumpsFirst is what makes Apply idempotent: the jumps already
// there are deleted and one is inserted at the top, in the same commit.
func TestRenderMovesExistingJumpsFirst(t *testing.T) {
	p, err := Options{RedirectPort: 15001, SidecarUID: 1337}.parse()
	if err != nil {
		t.Fatal(err)
	}
	for _, have := range []jumps{{}, {nat: 1}, {filter: 2}, {1, 1}} {
		out := p.render(false, have)
		for _, c := range []struct {
			table, jump string
			had         int
		}{{"nat", "-p tcp -j " + Chain, have.nat}, {"filter", "-j " + Chain, have.filter}} {
			section := tableSection(out, c.table)
			if n := strings.Count(section, "-D OUTPUT "+c.jump+"\n"); n != c.had {
				t.Errorf("with %+v: %d deletions of the %s jump, want %d\n%s", have, n, c.table, c.had, out)
			}
			if n := strings.Count(section, "-I OUTPUT 1 "+c.jump+"\n"); n != 1 {
				t.Errorf("with %+v: %d insertions of the %s jump, want 1\n%s", have, n, c.table, out)
			}
		}
	}
}

func TestRulesInvalid(t *testing.T) {
	ok := Options{RedirectPort: 15001, SidecarUID: 1337}
	tests := []struct {
		name  string
		edit  func(*Options)
		field string
		msg   string
	}{
		{"port zero", func(o *Options) { o.RedirectPort = 0 }, "RedirectPort", "capture: RedirectPort: 0 is not a port (1 to 65535)"},
		{"port too big", func(o *Options) { o.RedirectPort = 65536 }, "RedirectPort", ""},
		{"root sidecar", func(o *Options) { o.SidecarUID = 0 }, "SidecarUID", "capture: SidecarUID: 0 is not a non-root UID (1 to 4294967294)"},
		{"negative uid", func(o *Options) { o.SidecarUID = -5 }, "SidecarUID", ""},
		{"uid -1 as unsigned", func(o *Options) { o.SidecarUID = 1<<32 - 1 }, "SidecarUID", ""},
		{"bad cidr", func(o *Options) { o.ExcludeCIDRs = []string{"10.0.0.0/8", "10.0.0.0/33"} }, "ExcludeCIDRs[1]", `capture: ExcludeCIDRs[1]: "10.0.0.0/33" is not a CIDR`},
		{"hostname", func(o *Options) { o.ExcludeCIDRs = []string{"kubernetes.default"} }, "ExcludeCIDRs[0]", ""},
		{"zone", func(o *Options) { o.ExcludeCIDRs = []string{"fe80::1%eth0"} }, "ExcludeCIDRs[0]", ""},
		{"mapped cidr", func(o *Options) { o.ExcludeCIDRs = []string{"::ffff:10.0.0.0/104"} }, "ExcludeCIDRs[0]", ""},
		{"empty cidr", func(o *Options) { o.ExcludeCIDRs = []string{""} }, "ExcludeCIDRs[0]", ""},
		{"bad port", func(o *Options) { o.ExcludePorts = []int{443, -1} }, "ExcludePorts[1]", "capture: ExcludePorts[1]: -1 is not a port (1 to 65535)"},
		{"bad resolver", func(o *Options) { o.DNSServers = []string{"10.0.0.10", "dns"} }, "DNSServers[1]", `capture: DNSServers[1]: "dns" is not an IP address`},
		{"resolver cidr", func(o *Options) { o.DNSServers = []string{"10.0.0.0/24"} }, "DNSServers[0]", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			_, _, err := Rules(o)
			var oe *OptionError
			if !errors.As(err, &oe) || oe.Field != tt.field {
				t.Fatalf("err = %v, want an OptionError for %s", err, tt.field)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Fatalf("err = %q, want %q", err, tt.msg)
			}
		})
	}
}

func diff(t *testing.T, name, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Fatalf("%s rules differ at line %d:\n got: %q\nwant: %q\nall:\n%s", name, i+1, gl, wl, got)
		}
	}
}
