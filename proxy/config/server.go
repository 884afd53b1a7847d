package config

import (
	"net"
	"strconv"
)

// ServerAddress is the host:port of the first server an outbound's settings name, the
// one proxychain dials, or "" for outbounds with no server (freedom, blackhole).
func (o *OutboundConfig) ServerAddress() string {
	hostPort := func(host string, port int) string {
		return net.JoinHostPort(host, strconv.Itoa(port))
	}
	switch s := o.Settings.(type) {
	case *ShadowsocksOutboundSettings:
		if len(s.Servers) > 0 {
			return hostPort(s.Servers[0].Address, s.Servers[0].Port)
		}
	case *VMessOutboundSettings:
		if len(s.Vnext) > 0 {
			return hostPort(s.Vnext[0].Address, s.Vnext[0].Port)
		}
	case *SocksOutboundSettings:
		if len(s.Servers) > 0 {
			return hostPort(s.Servers[0].Address, s.Servers[0].Port)
		}
	case *HTTPOutboundSettings:
		if len(s.Servers) > 0 {
			return hostPort(s.Servers[0].Address, s.Servers[0].Port)
		}
	}
	return ""
}
