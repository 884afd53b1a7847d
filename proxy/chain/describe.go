package chain

import (
	"strings"

	"github.com/proxychain/proxychain/proxy/config"
)

// Describe returns one line per outbound, in config order, showing the hops a
// connection through it takes:
//
//	DOUS: client -> AliHK (shadowsocks 2.2.2.2:1024) -> ... -> DOUS (vmess 1.1.1.1:8888) -> destination
func Describe(outbounds []config.OutboundConfig) ([]string, error) {
	if errs := Validate(outbounds); len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	lines := make([]string, 0, len(outbounds))
	for i := range outbounds {
		hops, err := Hops(outbounds, i)
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		b.WriteString(Name(outbounds, i))
		b.WriteString(": client")
		end := "destination"
		for _, h := range hops {
			o := &outbounds[h]
			b.WriteString(" -> ")
			b.WriteString(Name(outbounds, h))
			b.WriteString(" (")
			b.WriteString(o.Protocol)
			if addrs := o.ServerAddresses(); len(addrs) > 0 {
				b.WriteString(" ")
				b.WriteString(strings.Join(addrs, ", "))
			}
			b.WriteString(")")
			if o.Protocol == "blackhole" {
				end = "dropped"
			}
		}
		b.WriteString(" -> ")
		b.WriteString(end)
		lines = append(lines, b.String())
	}
	return lines, nil
}
