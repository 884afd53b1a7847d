package harness

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing/iotest"
	"time"
)

// Dialer has the method set of proxychain's proxy.Dialer and of *net.Dialer, so the
// fakes below wrap and stand in for either without this package importing proxychain.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// RecordingDialer dials TCP and records every address it is asked for, so a test can
// check what a proxy dialed. Hosts maps the fake domains of a test onto loopback
// addresses; Err, when set, is returned instead of dialing. Set both before first use.
type RecordingDialer struct {
	Hosts map[string]string // asked address -> address dialed
	Err   error

	mu    sync.Mutex
	asked []string
}

// DialContext records address, then fails with Err or dials its mapped address.
func (d *RecordingDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.asked = append(d.asked, address)
	d.mu.Unlock()
	if d.Err != nil {
		return nil, d.Err
	}
	if a, ok := d.Hosts[address]; ok {
		address = a
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, address)
}

// Dials returns the addresses asked for so far, in order.
func (d *RecordingDialer) Dials() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.asked...)
}

// OneByteConn delivers one byte per Read, as a slow network might, to shake out parsers
// that assume a whole message arrives at once. CloseWrite passes through.
type OneByteConn struct{ net.Conn }

func (c OneByteConn) Read(p []byte) (int, error) { return iotest.OneByteReader(c.Conn).Read(p) }

// CloseWrite half-closes the wrapped conn if it can, and does nothing otherwise.
func (c OneByteConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// OneByteDialer wraps every conn its Dialer returns in a OneByteConn.
type OneByteDialer struct{ Dialer }

func (d OneByteDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.Dialer.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return OneByteConn{c}, nil
}

// ScriptConn is a net.Conn with no network behind it: reads play a fixed input, writes
// are kept. Fuzz tests feed a handshake through it and check how much was consumed and
// what was answered. Deadlines are accepted and ignored; addresses are fixed loopback
// ones, the local one a TCP address as a listener's conns have.
type ScriptConn struct {
	in       *bytes.Reader
	consumed int
	out      bytes.Buffer
}

// NewScriptConn returns a conn whose reads play in, then return io.EOF.
func NewScriptConn(in []byte) *ScriptConn { return &ScriptConn{in: bytes.NewReader(in)} }

// Consumed returns how many bytes of the input have been read.
func (c *ScriptConn) Consumed() int { return c.consumed }

// Written returns everything written so far.
func (c *ScriptConn) Written() []byte { return c.out.Bytes() }

func (c *ScriptConn) Read(p []byte) (int, error) {
	n, err := c.in.Read(p)
	c.consumed += n
	return n, err
}

func (c *ScriptConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *ScriptConn) Close() error                { return nil }
func (c *ScriptConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1080}
}
func (c *ScriptConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *ScriptConn) SetDeadline(time.Time) error      { return nil }
func (c *ScriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *ScriptConn) SetWriteDeadline(time.Time) error { return nil }
