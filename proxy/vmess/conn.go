package vmess

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"

	"github.com/proxychain/proxychain/proxy"
)

// conn is a VMess stream on top of a net.Conn. Reads and writes lock separately, so one
// goroutine may read while another writes. Deadlines, addresses and Close come from the
// embedded connection.
type conn struct {
	net.Conn

	rmu  sync.Mutex
	r    *chunkReader
	head func() error // reads the response header before the first body byte (client)

	wmu sync.Mutex
	w   chunkWriter
}

func (c *conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.r == nil {
		return 0, net.ErrClosed
	}
	if c.head != nil {
		if err := c.head(); err != nil {
			return 0, err
		}
		c.head = nil
	}
	return c.r.Read(p)
}

// WriteTo lets io.Copy (and so proxy.Relay) take decrypted chunks without another copy.
func (c *conn) WriteTo(w io.Writer) (int64, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.r == nil {
		return 0, net.ErrClosed
	}
	if c.head != nil {
		if err := c.head(); err != nil {
			return 0, err
		}
		c.head = nil
	}
	return c.r.WriteTo(w)
}

// WaitReadable blocks until a Read would not block, holding no buffer while it waits:
// if the reader has nothing undelivered it lets its buffer go and waits on the conn
// beneath (or returns at once if that conn cannot wait).
func (c *conn) WaitReadable() error {
	c.rmu.Lock()
	if c.r == nil {
		c.rmu.Unlock()
		return net.ErrClosed
	}
	buffered := c.r.buffered()
	c.rmu.Unlock()
	if buffered {
		return nil
	}
	return proxy.WaitReadable(c.Conn)
}

func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.w.Write(p)
}

// CloseWrite sends VMess's end of stream (an empty chunk), then half-closes the
// connection beneath so the peer's read sees EOF.
//
// V2Ray closes a connection outright once its side is done, and our end chunk arriving
// at the closed socket draws a reset, which can beat our own shutdown. A peer that has
// gone is not told anything, and CloseWrite reports no error for it: there is no one left
// to tell, and reads still report how the stream ended.
func (c *conn) CloseWrite() error {
	c.wmu.Lock()
	err := c.w.end()
	c.wmu.Unlock()
	if err == nil {
		err = proxy.CloseWrite(c.Conn)
	}
	if peerGone(err) {
		return nil
	}
	return err
}

func peerGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ENOTCONN)
}

// Close closes the connection beneath, then returns the read buffer to its pool once no
// Read is using it.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.rmu.Lock()
	if c.r != nil {
		c.r.release()
		c.r = nil
	}
	c.rmu.Unlock()
	return err
}

// NetConn returns the connection beneath, as crypto/tls.Conn does.
func (c *conn) NetConn() net.Conn { return c.Conn }
