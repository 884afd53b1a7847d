package harness

import (
	"context"
	"fmt"
	"net"
	"time"

	"golang.org/x/net/proxy"
)

// dialTimeout bounds connecting to a proxy and its SOCKS handshake.
const dialTimeout = 10 * time.Second

// socksConnector is what golang.org/x/net/proxy's SOCKS5 dialer can do beyond Dial: run
// the handshake on a connection we made, so we keep the *net.TCPConn (and its
// CloseWrite) instead of a wrapper that hides it.
type socksConnector interface {
	DialWithConn(ctx context.Context, c net.Conn, network, address string) (net.Addr, error)
}

// DialSOCKS5 connects to target through the SOCKS5 proxy at proxyAddr. A domain name in
// target is sent to the proxy unresolved. The returned conn can half-close.
func DialSOCKS5(proxyAddr, target string) (net.Conn, error) {
	d, err := proxy.SOCKS5("tcp", proxyAddr, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("harness: socks5 %s: %w", proxyAddr, err)
	}
	connector, ok := d.(socksConnector)
	if !ok {
		return nil, fmt.Errorf("harness: socks5 dialer %T cannot handshake on an existing conn", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, "tcp", proxyAddr)
	if err != nil {
		return nil, fmt.Errorf("harness: socks5 %s: %w", proxyAddr, err)
	}
	if _, err := connector.DialWithConn(ctx, conn, "tcp", target); err != nil {
		conn.Close()
		return nil, fmt.Errorf("harness: socks5 %s to %s: %w", proxyAddr, target, err)
	}
	return conn, nil
}
