// Package blackhole is the outbound that drops everything: a dial fails, or, with the
// "http" response, returns a connection that answers 403 Forbidden and swallows what the
// client sends.
package blackhole

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/proxychain/proxychain/proxy"
)

// Responses, V2Ray's names.
const (
	ResponseNone = "none"
	ResponseHTTP = "http"
)

// ErrBlocked is what a dial through a blackhole with no response returns.
var ErrBlocked = errors.New("blackhole: blocked")

// httpForbidden is V2Ray's blackhole HTTP answer.
const httpForbidden = "HTTP/1.1 403 Forbidden\r\nConnection: close\r\nCache-Control: max-age=3600, public\r\nContent-Length: 0\r\n\r\n"

// Blackhole is the dropping outbound.
type Blackhole struct {
	tag  string
	http bool
}

var _ proxy.Outbound = (*Blackhole)(nil)

// New returns a blackhole answering with response: "none" (or "") or "http".
func New(tag, response string) (*Blackhole, error) {
	switch response {
	case "", ResponseNone:
		return &Blackhole{tag: tag}, nil
	case ResponseHTTP:
		return &Blackhole{tag: tag, http: true}, nil
	}
	return nil, fmt.Errorf("blackhole: unknown response %q", response)
}

// Tag names the outbound.
func (b *Blackhole) Tag() string { return b.tag }

// DialContext returns ErrBlocked, or with the http response a connection that reads as
// a 403 answer followed by EOF and discards writes.
func (b *Blackhole) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if err := proxy.CheckNetwork(network); err != nil {
		return nil, err
	}
	if !b.http {
		return nil, fmt.Errorf("%w: %s", ErrBlocked, address)
	}
	return &forbiddenConn{unread: []byte(httpForbidden)}, nil
}

// forbiddenConn never blocks, so deadlines have nothing to interrupt and are accepted
// only for the net.Conn contract.
type forbiddenConn struct {
	mu     sync.Mutex
	unread []byte
	closed bool
}

func (c *forbiddenConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if len(c.unread) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.unread)
	c.unread = c.unread[n:]
	return n, nil
}

func (c *forbiddenConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return len(p), nil
}

func (c *forbiddenConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	c.closed = true
	return nil
}

// CloseWrite accepts the client's half-close; the answer is already queued.
func (c *forbiddenConn) CloseWrite() error { return nil }

func (c *forbiddenConn) LocalAddr() net.Addr  { return addr{} }
func (c *forbiddenConn) RemoteAddr() net.Addr { return addr{} }

func (c *forbiddenConn) SetDeadline(t time.Time) error      { return c.checkOpen() }
func (c *forbiddenConn) SetReadDeadline(t time.Time) error  { return c.checkOpen() }
func (c *forbiddenConn) SetWriteDeadline(t time.Time) error { return c.checkOpen() }

func (c *forbiddenConn) checkOpen() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return os.ErrDeadlineExceeded
	}
	return nil
}

type addr struct{}

func (addr) Network() string { return "blackhole" }
func (addr) String() string  { return "blackhole" }
