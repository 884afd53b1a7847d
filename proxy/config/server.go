package config

import (
	"net"
	"strconv"
)

// ServerAddresses are the host:port of every server an outbound's settings name, in
// order (connections take them in turn), or none for outbounds with no server (freedom,
// blackhole).
func (o *OutboundConfig) ServerAddresses() []string {
	var addrs []string
	add := func(host string, port int) {
		addrs = append(addrs, net.JoinHostPort(host, strconv.Itoa(port)))
	}
	switch s := o.Settings.(type) {
	case *ShadowsocksOutboundSettings:
		for _, srv := range s.Servers {
			add(srv.Address, srv.Port)
		}
	case *VMessOutboundSettings:
		for _, srv := range s.Vnext {
			add(srv.Address, srv.Port)
		}
	case *SocksOutboundSettings:
		for _, srv := range s.Servers {
			add(srv.Address, srv.Port)
		}
	case *HTTPOutboundSettings:
		for _, srv := range s.Servers {
			add(srv.Address, srv.Port)
		}
	}
	return addrs
}
