// Package capture renders and installs the iptables rules that send a pod's egress
// through its sidecar: the `proxychain init` step, run in the pod's network namespace with
// only NET_ADMIN and NET_RAW.
//
// In both the nat and the filter table, OUTPUT jumps to a chain of ours,
// PROXYCHAIN_OUTPUT:
//
//	nat     loopback, the sidecar's UID, DNS to the resolvers, excluded CIDRs and
//	        destination ports RETURN; every other new TCP connection is REDIRECTed to the
//	        sidecar's port (127.0.0.1 or ::1).
//	filter  loopback, redirected traffic (now to the sidecar's port), the sidecar's UID, DNS, and TCP
//	        that nat let through on purpose RETURN; so do replies on flows started from
//	        outside the pod (TCP, UDP, ICMP, with their ICMP errors), and on IPv6 the
//	        neighbour discovery a link needs. Everything else is dropped: UDP and ICMP the
//	        pod starts, and any TCP that slipped past nat (a raw socket's untracked
//	        segment), so nothing leaves in plaintext.
//
// IPv4 and IPv6 get the same rules (iptables-restore and ip6tables-restore), excluded
// CIDRs split by family. If the sidecar is down, redirected connections are refused by
// the kernel: the pod fails closed.
package capture

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Chain is the name of our chain in both tables. Apply replaces its contents on every
// run; rules elsewhere are left alone.
const Chain = "PROXYCHAIN_OUTPUT"

// Options describes one pod's capture.
type Options struct {
	// RedirectPort is where the sidecar's redirect inbound listens, on 127.0.0.1 and ::1.
	RedirectPort int
	// SidecarUID is the UID the sidecar runs as; its traffic goes out untouched. It may not
	// be 0: every root process would bypass capture.
	SidecarUID int
	// ExcludeCIDRs are destinations TCP reaches directly (cluster networks, the API
	// server), IPv4 and IPv6 mixed. A bare address means that one host.
	ExcludeCIDRs []string
	// ExcludePorts are TCP destination ports that are not redirected.
	ExcludePorts []int
	// DNSServers are the resolvers the pod may query directly on UDP and TCP port 53.
	// Empty means port 53 to any address, since a pod's resolver is not always known
	// when the rules are written.
	DNSServers []string
}

// OptionError names the option that is wrong.
type OptionError struct {
	Field string // as in Options, with an index for slices: "ExcludeCIDRs[1]"
	Err   error
}

func (e *OptionError) Error() string { return "capture: " + e.Field + ": " + e.Err.Error() }
func (e *OptionError) Unwrap() error { return e.Err }

// Rules renders iptables-restore input for IPv4 (v4) and ip6tables-restore input for
// IPv6 (v6), including the jumps from OUTPUT. It is meant for --noflush: declaring our
// chain flushes it, and nothing else is touched.
func Rules(opts Options) (v4, v6 string, err error) {
	p, err := opts.parse()
	if err != nil {
		return "", "", err
	}
	return p.render(false, jumps{}), p.render(true, jumps{}), nil
}

// jumps counts the jumps to our chain that OUTPUT already holds in each table. A re-run
// deletes them and inserts one again at the top, in the same commit: capture then comes
// before any rule added to OUTPUT since (an ACCEPT there would let traffic past it), and
// is never missing for a moment.
type jumps struct{ nat, filter int }

// The jumps from OUTPUT to our chain, as render inserts them and iptables-save prints
// them after "-A OUTPUT ". nat needs only TCP; filter must see everything.
const (
	natJump    = "-p tcp -j " + Chain
	filterJump = "-j " + Chain
)

// parsed is Options validated and split by family.
type parsed struct {
	port        int
	uid         int
	exclude     [2][]netip.Prefix // [0] IPv4, [1] IPv6
	dns         [2][]netip.Addr
	anyDNS      bool
	excludePort []int
}

func family(v6 bool) int {
	if v6 {
		return 1
	}
	return 0
}

func (o Options) parse() (*parsed, error) {
	p := &parsed{port: o.RedirectPort, uid: o.SidecarUID, anyDNS: len(o.DNSServers) == 0}
	if err := checkPort(o.RedirectPort); err != nil {
		return nil, &OptionError{"RedirectPort", err}
	}
	if o.SidecarUID <= 0 || o.SidecarUID >= 1<<32-1 {
		return nil, &OptionError{"SidecarUID", fmt.Errorf("%d is not a non-root UID (1 to 4294967294)", o.SidecarUID)}
	}
	for i, s := range o.ExcludeCIDRs {
		prefix, err := parsePrefix(s)
		if err != nil {
			return nil, &OptionError{fmt.Sprintf("ExcludeCIDRs[%d]", i), err}
		}
		f := family(prefix.Addr().Is6())
		p.exclude[f] = append(p.exclude[f], prefix)
	}
	for i, port := range o.ExcludePorts {
		if err := checkPort(port); err != nil {
			return nil, &OptionError{fmt.Sprintf("ExcludePorts[%d]", i), err}
		}
		p.excludePort = append(p.excludePort, port)
	}
	for i, s := range o.DNSServers {
		addr, err := netip.ParseAddr(s)
		if err != nil || addr.Zone() != "" {
			return nil, &OptionError{fmt.Sprintf("DNSServers[%d]", i), fmt.Errorf("%q is not an IP address", s)}
		}
		addr = addr.Unmap()
		f := family(addr.Is6())
		p.dns[f] = append(p.dns[f], addr)
	}
	return p, nil
}

var errPort = errors.New("not a port (1 to 65535)")

func checkPort(p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("%d is %w", p, errPort)
	}
	return nil
}

// parsePrefix accepts "10.0.0.0/8", "fd00::/8" or a bare address; host bits are cleared.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		addr, err := netip.ParseAddr(s)
		if err != nil || addr.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR or an IP address", s)
		}
		addr = addr.Unmap()
		return netip.PrefixFrom(addr, addr.BitLen()), nil
	}
	prefix, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
	}
	if prefix.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q: write IPv4 networks in IPv4 form", s)
	}
	return prefix.Masked(), nil
}

// loopback is where REDIRECT sends locally generated traffic, per family.
var loopback = [2]string{"127.0.0.1/32", "::1/128"}

// ICMPv6 types a link cannot work without (RFC 4861 router and neighbour solicitation and
// advertisement, RFC 3810 MLDv2 reports). They carry no payload off the link.
var ndpTypes = []int{133, 135, 136, 143}

func (p *parsed) render(v6 bool, have jumps) string {
	f := family(v6)
	var b strings.Builder
	rule := func(format string, args ...any) {
		fmt.Fprintf(&b, "-A "+Chain+" "+format+"\n", args...)
	}
	uid := strconv.Itoa(p.uid)
	dnsDests := []string{""}
	if !p.anyDNS {
		dnsDests = nil
		for _, a := range p.dns[f] {
			dnsDests = append(dnsDests, "-d "+netip.PrefixFrom(a, a.BitLen()).String()+" ")
		}
	}

	b.WriteString("*nat\n:" + Chain + " - [0:0]\n")
	rule("-o lo -j RETURN")
	rule("-m owner --uid-owner %s -j RETURN", uid)
	for _, d := range dnsDests {
		rule("%s-p tcp -m tcp --dport 53 -j RETURN", d)
	}
	for _, c := range p.exclude[f] {
		rule("-d %s -j RETURN", c)
	}
	for _, port := range p.excludePort {
		rule("-p tcp -m tcp --dport %d -j RETURN", port)
	}
	rule("-p tcp -j REDIRECT --to-ports %d", p.port)
	for range have.nat {
		b.WriteString("-D OUTPUT " + natJump + "\n")
	}
	b.WriteString("-I OUTPUT 1 " + natJump + "\n")
	b.WriteString("COMMIT\n")

	b.WriteString("*filter\n:" + Chain + " - [0:0]\n")
	rule("-o lo -j RETURN")
	// Redirected traffic: the header now says loopback, but the output interface this
	// hook sees is still the one routed before nat rewrote it, so -o lo misses it.
	rule("-d %s -p tcp -m tcp --dport %d -j RETURN", loopback[f], p.port)
	rule("-m owner --uid-owner %s -j RETURN", uid)
	for _, d := range dnsDests {
		rule("%s-p udp -m udp --dport 53 -j RETURN", d)
		rule("%s-p tcp -m tcp --dport 53 -j RETURN", d)
	}
	for _, c := range p.exclude[f] {
		rule("-d %s -p tcp -j RETURN", c)
	}
	for _, port := range p.excludePort {
		rule("-p tcp -m tcp --dport %d -j RETURN", port)
	}
	// Replies on flows someone else started to the pod, any protocol (a UDP server's
	// answers, ping replies) and the ICMP errors about them (RELATED: port unreachable). A
	// flow the pod starts is only tracked if its first packet passed the rules above.
	rule("-m conntrack --ctstate RELATED,ESTABLISHED --ctdir REPLY -j RETURN")
	if v6 {
		for _, t := range ndpTypes {
			rule("-p ipv6-icmp -m icmp6 --icmpv6-type %d -j RETURN", t)
		}
	}
	rule("-j DROP")
	for range have.filter {
		b.WriteString("-D OUTPUT " + filterJump + "\n")
	}
	b.WriteString("-I OUTPUT 1 " + filterJump + "\n")
	b.WriteString("COMMIT\n")
	return b.String()
}
