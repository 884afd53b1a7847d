package instance

// Wiring for proxy/shadowsocks.

import (
	"fmt"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/shadowsocks"
)

func init() {
	outboundBuilders["shadowsocks"] = buildShadowsocksOutbound
	inboundBuilders["shadowsocks"] = buildShadowsocksInbound
}

func (b *builder) cipher(method, password, path, owner string) (*shadowsocks.Cipher, error) {
	c, err := shadowsocks.NewCipher(method, password)
	if err != nil {
		return nil, pathError(path+".method", err)
	}
	if c.Insecure() {
		b.log.Warn("insecure Shadowsocks cipher: stream ciphers have no integrity and are open to replay and probing; use an AEAD method such as chacha20-ietf-poly1305",
			"owner", owner, "path", path+".method", "method", method)
	}
	return c, nil
}

func buildShadowsocksOutbound(b *builder, o *config.OutboundConfig, path string, parent proxy.Dialer) (proxy.Outbound, error) {
	servers := o.Settings.(*config.ShadowsocksOutboundSettings).Servers
	return eachServer(o.Tag, len(servers), func(i int) (proxy.Outbound, error) {
		srv := &servers[i]
		sp := fmt.Sprintf("%s.settings.servers[%d]", path, i)
		password, err := srv.ResolvedPassword()
		if err != nil {
			return nil, pathError(sp+".passwordFile", err)
		}
		c, err := b.cipher(srv.Method, password, sp, o.Tag)
		if err != nil {
			return nil, err
		}
		return shadowsocks.NewClient(o.Tag, hostPort(srv.Address, srv.Port), c, parent), nil
	})
}

func buildShadowsocksInbound(b *builder, in *config.InboundConfig, path string) (proxy.Inbound, error) {
	s := in.Settings.(*config.ShadowsocksInboundSettings)
	password, err := s.ResolvedPassword()
	if err != nil {
		return nil, pathError(path+".settings.passwordFile", err)
	}
	c, err := b.cipher(s.Method, password, path+".settings", in.Tag)
	if err != nil {
		return nil, err
	}
	return shadowsocks.NewServer(c, shadowsocks.ServerOptions{Logger: b.log, Replay: b.shadowsocksReplayFilter(c)}), nil
}
