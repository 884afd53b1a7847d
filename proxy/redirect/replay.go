package redirect

import (
	"net"

	"github.com/proxychain/proxychain/proxy"
)

// replayConn returns the bytes sniffing consumed before reading on. Reads, waits and the
// pending buffer belong to one goroutine, as with any net.Conn reader.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil // let the sniff buffer go
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// WaitReadable returns at once while sniffed bytes wait to be replayed, and otherwise
// waits on the connection beneath, so a relay reading through us holds no buffer while
// the client is quiet.
func (c *replayConn) WaitReadable() error {
	if len(c.pending) > 0 {
		return nil
	}
	return proxy.WaitReadable(c.Conn)
}

// CloseWrite passes the half-close on, so proxy.Relay can end one direction.
func (c *replayConn) CloseWrite() error { return proxy.CloseWrite(c.Conn) }

// NetConn returns the TCP connection beneath, so proxy.Relay can turn a close into a reset.
func (c *replayConn) NetConn() net.Conn { return c.Conn }
