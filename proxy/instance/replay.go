package instance

import (
	"github.com/proxychain/proxychain/proxy/shadowsocks"
	"github.com/proxychain/proxychain/proxy/vmess"
)

// replayFilters are the replay filters of one generation's inbounds: one for all VMess
// inbounds, whose users' requests cannot collide, and one per Shadowsocks method and
// key. A build takes over the filters of the generation it replaces for what its config
// still has, so that a reload lets no captured request in again; filters for what the
// config no longer has go with the old generation.
type replayFilters struct {
	vmess       *vmess.ReplayFilter
	shadowsocks map[shadowsocks.ReplayKey]*shadowsocks.ReplayFilter
}

func newReplayFilters() *replayFilters {
	return &replayFilters{shadowsocks: make(map[shadowsocks.ReplayKey]*shadowsocks.ReplayFilter)}
}

// vmessReplayFilter returns the filter of every VMess inbound of this build.
func (b *builder) vmessReplayFilter() *vmess.ReplayFilter {
	if b.replay.vmess == nil {
		b.replay.vmess = b.prevReplay.vmess
	}
	if b.replay.vmess == nil {
		b.replay.vmess = new(vmess.ReplayFilter)
	}
	return b.replay.vmess
}

// shadowsocksReplayFilter returns the filter of the Shadowsocks inbounds of c's method
// and key in this build.
func (b *builder) shadowsocksReplayFilter(c *shadowsocks.Cipher) *shadowsocks.ReplayFilter {
	key := c.ReplayKey()
	f := b.replay.shadowsocks[key]
	if f == nil {
		f = b.prevReplay.shadowsocks[key]
	}
	if f == nil {
		f = shadowsocks.NewReplayFilter(c, 0)
	}
	b.replay.shadowsocks[key] = f
	return f
}
