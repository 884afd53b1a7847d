package instance

// Wiring for proxy/httpproxy.

import (
	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/httpproxy"
)

func init() {
	outboundBuilders["http"] = buildHTTPOutbound
	inboundBuilders["http"] = buildHTTPInbound
}

func buildHTTPOutbound(_ *builder, o *config.OutboundConfig, path string, parent proxy.Dialer) (proxy.Outbound, error) {
	servers := o.Settings.(*config.HTTPOutboundSettings).Servers
	return proxyServers(o.Tag, servers, path, func(server, user, pass string) proxy.Outbound {
		return httpproxy.NewClient(o.Tag, server, user, pass, parent)
	})
}

func buildHTTPInbound(b *builder, in *config.InboundConfig, path string) (proxy.Inbound, error) {
	s := in.Settings.(*config.HTTPInboundSettings)
	m, err := accounts(s.Accounts, path+".settings.accounts")
	if err != nil {
		return nil, err
	}
	return httpproxy.NewServer(httpproxy.ServerOptions{Accounts: m, Logger: b.log}), nil
}
