// Package match is the language of V2Ray's field rules: the domain, IP, port and network
// conditions, parsed from their config strings and matched against a destination.
// Package config parses with it to validate a config; package router matches with it.
package match

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

type domainKind int

const (
	substring  domainKind = iota // "example" or "keyword:example"
	suffix                       // "domain:example.com": the domain or any subdomain
	full                         // "full:example.com"
	regexpKind                   // "regexp:\\.goo.*\\.com$"
)

type Domain struct {
	kind    domainKind
	value   string
	pattern *regexp.Regexp
}

func ParseDomain(s string) (Domain, error) {
	prefix, value, hasPrefix := strings.Cut(s, ":")
	if !hasPrefix {
		prefix, value = "", s
	}
	switch prefix {
	case "", "keyword":
		return Domain{kind: substring, value: strings.ToLower(value)}, checkEmpty(value)
	case "domain":
		return Domain{kind: suffix, value: strings.ToLower(strings.TrimSuffix(value, "."))}, checkEmpty(value)
	case "full":
		return Domain{kind: full, value: strings.ToLower(strings.TrimSuffix(value, "."))}, checkEmpty(value)
	case "regexp":
		re, err := regexp.Compile(value)
		if err != nil {
			return Domain{}, err
		}
		return Domain{kind: regexpKind, pattern: re}, nil
	case "geosite", "ext":
		return Domain{}, fmt.Errorf("%q: %s lists are not supported; list the domains instead", s, prefix)
	}
	// Not a known prefix: V2Ray reads the whole string as a plain substring.
	return Domain{kind: substring, value: strings.ToLower(s)}, nil
}

func checkEmpty(value string) error {
	if value == "" {
		return errors.New("empty domain pattern")
	}
	return nil
}

// Match reports whether domain (lower case, no trailing dot; empty for an IP
// destination) matches. Domain rules never match IP destinations.
func (m Domain) Match(domain string) bool {
	if domain == "" {
		return false
	}
	switch m.kind {
	case substring:
		return strings.Contains(domain, m.value)
	case suffix:
		return domain == m.value || strings.HasSuffix(domain, "."+m.value)
	case full:
		return domain == m.value
	case regexpKind:
		return m.pattern.MatchString(domain)
	}
	return false
}

// PrivateRanges is what "geoip:private" stands for here: the addresses that do not
// route on the public internet (RFC 1918, RFC 6598 shared, loopback, link-local,
// unspecified, IPv6 unique local).
var PrivateRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

func ParseIP(s string) ([]netip.Prefix, error) {
	switch {
	case s == "geoip:private":
		return PrivateRanges, nil
	case strings.HasPrefix(s, "geoip:") || strings.HasPrefix(s, "ext:"):
		return nil, fmt.Errorf("%q: geoip lists are not supported (only geoip:private); list the CIDRs instead", s)
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return []netip.Prefix{p.Masked()}, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return nil, fmt.Errorf("want an IP address or CIDR, got %q", s)
	}
	ip = ip.Unmap()
	return []netip.Prefix{netip.PrefixFrom(ip, ip.BitLen())}, nil
}

// PortRange is an inclusive range of ports.
type PortRange struct{ From, To uint16 }

// Contains reports whether port is in the range.
func (r PortRange) Contains(port uint16) bool { return r.From <= port && port <= r.To }

// ParsePorts reads "53", "1000-2000", "80,443" and combinations.
func ParsePorts(s string) ([]PortRange, error) {
	var ranges []PortRange
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		from, err := parsePort(lo)
		if err != nil {
			return nil, fmt.Errorf("want ports like \"53\", \"1000-2000\" or \"80,443\", got %q", s)
		}
		to := from
		if isRange {
			if to, err = parsePort(hi); err != nil || to < from {
				return nil, fmt.Errorf("want ports like \"53\", \"1000-2000\" or \"80,443\", got %q", s)
			}
		}
		ranges = append(ranges, PortRange{from, to})
	}
	return ranges, nil
}

func parsePort(s string) (uint16, error) {
	// 0 is allowed, as in V2Ray ("0-65535"): no destination has it, so it widens nothing.
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil {
		return 0, errors.New("bad port")
	}
	return uint16(n), nil
}

// MatchesTCP reads a rule's network condition ("tcp", "udp", in any case) and reports
// whether the rule can match a TCP connection, the only kind proxychain routes. An empty
// list is no condition.
func MatchesTCP(networks []string) (bool, error) {
	tcp := len(networks) == 0
	for _, n := range networks {
		switch strings.ToLower(strings.TrimSpace(n)) {
		case "tcp":
			tcp = true
		case "udp":
		default:
			return false, fmt.Errorf("want \"tcp\" or \"udp\", got %q", n)
		}
	}
	return tcp, nil
}
