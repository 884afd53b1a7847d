package instance

// Wiring for proxy/dokodemo.

import (
	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/dokodemo"
)

func init() {
	inboundBuilders["dokodemo-door"] = buildDokodemoInbound
}

func buildDokodemoInbound(b *builder, in *config.InboundConfig, _ string) (proxy.Inbound, error) {
	s := in.Settings.(*config.DokodemoSettings)
	if s.FollowRedirect {
		// V2Ray's transparent proxy: the destination is the connection's original one,
		// so address and port are ignored, as there.
		return b.redirectServer(in), nil
	}
	return dokodemo.NewServer(hostPort(s.Address, s.Port)), nil
}
