package router

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
	domainSubstring domainKind = iota // "example" or "keyword:example"
	domainSuffix                      // "domain:example.com": the domain or any subdomain
	domainFull                        // "full:example.com"
	domainRegexp                      // "regexp:\\.goo.*\\.com$"
)

type domainMatcher struct {
	kind    domainKind
	value   string
	pattern *regexp.Regexp
}

func parseDomain(s string) (domainMatcher, error) {
	prefix, value, hasPrefix := strings.Cut(s, ":")
	if !hasPrefix {
		prefix, value = "", s
	}
	switch prefix {
	case "", "keyword":
		return domainMatcher{kind: domainSubstring, value: strings.ToLower(value)}, checkEmpty(value)
	case "domain":
		return domainMatcher{kind: domainSuffix, value: strings.ToLower(strings.TrimSuffix(value, "."))}, checkEmpty(value)
	case "full":
		return domainMatcher{kind: domainFull, value: strings.ToLower(strings.TrimSuffix(value, "."))}, checkEmpty(value)
	case "regexp":
		re, err := regexp.Compile(value)
		if err != nil {
			return domainMatcher{}, err
		}
		return domainMatcher{kind: domainRegexp, pattern: re}, nil
	case "geosite", "ext":
		return domainMatcher{}, fmt.Errorf("%q: %s lists are not supported; list the domains instead", s, prefix)
	}
	// Not a known prefix: V2Ray reads the whole string as a plain substring.
	return domainMatcher{kind: domainSubstring, value: strings.ToLower(s)}, nil
}

func checkEmpty(value string) error {
	if value == "" {
		return errors.New("empty domain pattern")
	}
	return nil
}

// match reports whether domain (lower case, no trailing dot; empty for an IP
// destination) matches. Domain rules never match IP destinations.
func (m domainMatcher) match(domain string) bool {
	if domain == "" {
		return false
	}
	switch m.kind {
	case domainSubstring:
		return strings.Contains(domain, m.value)
	case domainSuffix:
		return domain == m.value || strings.HasSuffix(domain, "."+m.value)
	case domainFull:
		return domain == m.value
	case domainRegexp:
		return m.pattern.MatchString(domain)
	}
	return false
}

// privateRanges is what "geoip:private" stands for here: the addresses that do not
// route on the public internet (RFC 1918, RFC 6598 shared, loopback, link-local,
// unspecified, IPv6 unique local).
var privateRanges = []netip.Prefix{
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

func parseIP(s string) ([]netip.Prefix, error) {
	switch {
	case s == "geoip:private":
		return privateRanges, nil
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

type portRange struct{ from, to uint16 }

// parsePorts reads "53", "1000-2000", "80,443" and combinations.
func parsePorts(s string) ([]portRange, error) {
	var ranges []portRange
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
		ranges = append(ranges, portRange{from, to})
	}
	return ranges, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, errors.New("bad port")
	}
	return uint16(n), nil
}
