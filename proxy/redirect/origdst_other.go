//go:build !linux

package redirect

import (
	"errors"
	"net"
	"net/netip"
)

// originalDst needs Linux conntrack; elsewhere every connection is refused.
func originalDst(*net.TCPConn) (netip.AddrPort, error) {
	return netip.AddrPort{}, errors.New("redirect: original destination is only available on linux")
}
