// Package freedom is the direct exit: it dials the destination itself (through its parent
// dialer, normally a proxy.SocketDialer), optionally resolving domains first or redirecting
// every connection to a fixed address.
package freedom

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/config"
)

// Domain strategies, V2Ray's names. AsIs hands domains to the dialer unresolved.
const (
	AsIs    = "AsIs"
	UseIP   = "UseIP"
	UseIPv4 = "UseIPv4"
	UseIPv6 = "UseIPv6"
)

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Options configure a Freedom outbound. The zero value dials as is, directly.
type Options struct {
	DomainStrategy string // AsIs (default), UseIP, UseIPv4, UseIPv6
	// Redirect sends every connection to host:port instead; an empty host or a zero port
	// keeps the destination's.
	Redirect string
	Dialer   proxy.Dialer // default &proxy.SocketDialer{}
	Resolver Resolver     // default net.DefaultResolver; used by the Use* strategies
}

// Freedom is the direct outbound.
type Freedom struct {
	tag          string
	lookup       string // "" for AsIs, else the LookupNetIP network
	redirectHost string
	redirectPort string
	dialer       proxy.Dialer
	resolver     Resolver
}

var _ proxy.Outbound = (*Freedom)(nil)

// ErrNoAddress is returned when a Use* strategy finds no address of the wanted family.
var ErrNoAddress = errors.New("freedom: no address of the wanted family")

// New returns a direct outbound.
func New(tag string, opts Options) (*Freedom, error) {
	f := &Freedom{tag: tag, dialer: opts.Dialer, resolver: opts.Resolver}
	switch opts.DomainStrategy {
	case "", AsIs:
	case UseIP:
		f.lookup = "ip"
	case UseIPv4:
		f.lookup = "ip4"
	case UseIPv6:
		f.lookup = "ip6"
	default:
		return nil, fmt.Errorf("freedom: unknown domain strategy %q", opts.DomainStrategy)
	}
	if opts.Redirect != "" {
		host, port, err := config.ParseRedirect(opts.Redirect)
		if err != nil {
			return nil, fmt.Errorf("freedom: redirect: %w", err)
		}
		f.redirectHost, f.redirectPort = host, port
	}
	if f.dialer == nil {
		f.dialer = &proxy.SocketDialer{}
	}
	if f.resolver == nil {
		f.resolver = net.DefaultResolver
	}
	return f, nil
}

// Tag names the outbound.
func (f *Freedom) Tag() string { return f.tag }

// DialContext dials address (after any redirect), resolving a domain first under a Use*
// strategy and trying its addresses in the resolver's order, each with its share of the
// time left (proxy.DialInTurn) as net.Dialer does, so one that never answers leaves time
// for the rest.
func (f *Freedom) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if err := proxy.CheckNetwork(network); err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("freedom: %w", err)
	}
	if f.redirectHost != "" {
		host = f.redirectHost
	}
	if f.redirectPort != "" {
		port = f.redirectPort
	}
	if f.lookup == "" {
		return f.dialer.DialContext(ctx, network, net.JoinHostPort(host, port))
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !f.wants(ip) {
			return nil, fmt.Errorf("%w: %s", ErrNoAddress, host)
		}
		return f.dialer.DialContext(ctx, network, net.JoinHostPort(host, port))
	}
	ips, err := f.resolver.LookupNetIP(ctx, f.lookup, host)
	if err != nil {
		return nil, fmt.Errorf("freedom: %w", err)
	}
	var addrs []string
	for _, ip := range ips {
		if f.wants(ip) {
			addrs = append(addrs, net.JoinHostPort(ip.Unmap().String(), port))
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoAddress, host)
	}
	return proxy.DialInTurn(ctx, len(addrs), func(ctx context.Context, i int) (net.Conn, error) {
		conn, err := f.dialer.DialContext(ctx, network, addrs[i])
		if err != nil {
			return nil, fmt.Errorf("freedom: %s at %s: %w", host, addrs[i], err)
		}
		return conn, nil
	}, nil)
}

func (f *Freedom) wants(ip netip.Addr) bool {
	switch f.lookup {
	case "ip4":
		return ip.Unmap().Is4()
	case "ip6":
		return ip.Is6() && !ip.Is4In6()
	}
	return true
}
