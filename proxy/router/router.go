// Package router picks the outbound for each connection with V2Ray's field rules: the
// first rule whose conditions all match names the outbound; no match means the default
// outbound, the first in the config.
//
// Matching uses the destination as the client gave it (V2Ray's "AsIs"): a domain is
// never resolved here, so IP rules match only destinations that are literal IPs.
package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/router/match"
)

// Router is a proxy.Dialer that dials through the outbound its rules pick.
type Router struct {
	rules    []rule
	fallback proxy.Outbound
}

var _ proxy.Dialer = (*Router)(nil)

type rule struct {
	domains  []match.Domain
	prefixes []netip.Prefix
	ports    []match.PortRange
	inbounds []string
	tcp      bool // the network condition admits TCP; without it the rule never matches
	outbound proxy.Outbound
}

// New builds a router over outbounds, in config order: the first is the default.
// A nil routing config routes everything to the default. Errors name JSON paths.
func New(routing *config.RoutingConfig, outbounds []proxy.Outbound) (*Router, error) {
	if len(outbounds) == 0 {
		return nil, errors.New("router: no outbounds")
	}
	r := &Router{fallback: outbounds[0]}
	if routing == nil {
		return r, nil
	}
	byTag := make(map[string]proxy.Outbound, len(outbounds))
	for _, o := range outbounds {
		if _, dup := byTag[o.Tag()]; !dup && o.Tag() != "" {
			byTag[o.Tag()] = o
		}
	}
	var errs []error
	for i, cr := range routing.Rules {
		rule, ruleErrs := compile(cr, fmt.Sprintf("routing.rules[%d]", i), byTag)
		errs = append(errs, ruleErrs...)
		r.rules = append(r.rules, rule)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// PathError names the JSON path of a routing rule entry the router cannot use.
type PathError struct {
	Path string
	Err  error
}

func (e *PathError) Error() string { return "router: " + e.Path + ": " + e.Err.Error() }
func (e *PathError) Unwrap() error { return e.Err }

func compile(cr config.RoutingRule, path string, byTag map[string]proxy.Outbound) (rule, []error) {
	var errs []error
	fail := func(p string, err error) { errs = append(errs, &PathError{Path: p, Err: err}) }
	var r rule
	for i, d := range cr.Domain {
		m, err := match.ParseDomain(d)
		if err != nil {
			fail(fmt.Sprintf("%s.domain[%d]", path, i), err)
			continue
		}
		r.domains = append(r.domains, m)
	}
	for i, s := range cr.IP {
		ps, err := match.ParseIP(s)
		if err != nil {
			fail(fmt.Sprintf("%s.ip[%d]", path, i), err)
			continue
		}
		r.prefixes = append(r.prefixes, ps...)
	}
	if cr.Port != "" {
		ports, err := match.ParsePorts(string(cr.Port))
		if err != nil {
			fail(path+".port", err)
		}
		r.ports = ports
	}
	r.inbounds = cr.InboundTag
	tcp, err := match.MatchesTCP(cr.Network)
	if err != nil {
		fail(path+".network", err)
	}
	r.tcp = tcp
	if !cr.HasCondition() {
		fail(path, config.ErrNoCondition)
	}
	o, ok := byTag[cr.OutboundTag]
	if !ok {
		fail(path+".outboundTag", fmt.Errorf("no outbound tagged %q", cr.OutboundTag))
	}
	r.outbound = o
	return r, errs
}

// DialContext dials address through the outbound the rules pick.
func (r *Router) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	o, err := r.Pick(ctx, address)
	if err != nil {
		return nil, err
	}
	return o.DialContext(ctx, network, address)
}

// Pick returns the outbound for address (host:port), taking the inbound tag from ctx
// (see WithInbound).
func (r *Router) Pick(ctx context.Context, address string) (proxy.Outbound, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("router: bad port in %q", address)
	}
	dest := destination{port: uint16(port), inbound: inboundTag(ctx)}
	if ip, err := netip.ParseAddr(host); err == nil {
		dest.ip = ip.Unmap()
	} else {
		dest.domain = strings.ToLower(strings.TrimSuffix(host, "."))
	}
	for _, rule := range r.rules {
		if rule.match(dest) {
			return rule.outbound, nil
		}
	}
	return r.fallback, nil
}

type destination struct {
	domain  string     // lower case, without a trailing dot; empty for an IP
	ip      netip.Addr // invalid for a domain
	port    uint16
	inbound string
}

// match: all given conditions must hold; within one, any entry may.
func (r *rule) match(d destination) bool {
	if !r.tcp {
		return false
	}
	if len(r.domains) > 0 && !anyOf(r.domains, func(m match.Domain) bool { return m.Match(d.domain) }) {
		return false
	}
	if len(r.prefixes) > 0 && !anyOf(r.prefixes, func(p netip.Prefix) bool { return d.ip.IsValid() && p.Contains(d.ip) }) {
		return false
	}
	if len(r.ports) > 0 && !anyOf(r.ports, func(p match.PortRange) bool { return p.Contains(d.port) }) {
		return false
	}
	if len(r.inbounds) > 0 && !anyOf(r.inbounds, func(tag string) bool { return d.inbound != "" && tag == d.inbound }) {
		return false
	}
	return true
}

func anyOf[T any](list []T, f func(T) bool) bool {
	for _, v := range list {
		if f(v) {
			return true
		}
	}
	return false
}

type inboundKey struct{}

// WithInbound returns a context carrying the tag of the inbound a connection came in on,
// for rules with inboundTag.
func WithInbound(ctx context.Context, tag string) context.Context {
	return context.WithValue(ctx, inboundKey{}, tag)
}

func inboundTag(ctx context.Context) string {
	tag, _ := ctx.Value(inboundKey{}).(string)
	return tag
}
