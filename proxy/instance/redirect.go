package instance

// Wiring for proxy/redirect: the "redirect" inbound, and dokodemo-door with
// followRedirect, which V2Ray uses for the same job.

import (
	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/redirect"
)

func init() {
	inboundBuilders["redirect"] = buildRedirectInbound
}

func buildRedirectInbound(b *builder, in *config.InboundConfig, _ string) (proxy.Inbound, error) {
	return b.redirectServer(in), nil
}

// redirectServer returns an inbound that relays each captured connection to its original
// destination, or to the host name sniffing recovers from its first bytes.
func (b *builder) redirectServer(in *config.InboundConfig) *redirect.Server {
	var sniff []string
	if in.Sniffing != nil && in.Sniffing.Enabled {
		sniff = in.Sniffing.DestOverride
	}
	return redirect.NewServer(redirect.ServerOptions{Sniff: sniff, Logger: b.log.With("inbound", in.Tag)})
}
