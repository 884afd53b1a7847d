package shadowsocks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxychain/proxychain/proxy/socksaddr"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

// testKeys are the passwords (or, for SIP022, base64 keys) the tests use per method.
func testPassword(method string) string {
	switch method {
	case "2022-blake3-aes-128-gcm":
		return base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	case "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305":
		return base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	}
	return "proxychain test password"
}

func mustCipher(t testing.TB, method string) *Cipher {
	t.Helper()
	c, err := NewCipher(method, testPassword(method))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// forEachMethod runs f for every method, in parallel subtests.
func forEachMethod(t *testing.T, f func(t *testing.T, c *Cipher)) {
	for _, m := range Methods() {
		t.Run(m, func(t *testing.T) {
			t.Parallel()
			f(t, mustCipher(t, m))
		})
	}
}

func addrBytes(t testing.TB, address string) []byte {
	t.Helper()
	b, err := socksaddr.Append(nil, address)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// memConn is a net.Conn over memory: Read drains in (or blocks forever when in is nil,
// returning on Close), Write appends to out. Deadlines are accepted and ignored.
type memConn struct {
	mu     sync.Mutex
	in     io.Reader
	out    bytes.Buffer
	closed chan struct{}
	once   sync.Once
}

func newMemConn(in []byte) *memConn {
	return &memConn{in: bytes.NewReader(in), closed: make(chan struct{})}
}

func (m *memConn) Read(p []byte) (int, error) {
	if m.in == nil {
		<-m.closed
		return 0, net.ErrClosed
	}
	return m.in.Read(p)
}

func (m *memConn) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.out.Write(p)
}

func (m *memConn) written() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.out.Bytes())
}

func (m *memConn) Close() error                     { m.once.Do(func() { close(m.closed) }); return nil }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

// request returns the bytes a client sends to ask for dest and then send payload.
func request(t testing.TB, cl *Client, dest string, payload []byte) []byte {
	t.Helper()
	raw := newMemConn(nil)
	c, err := cl.wrap(raw, addrBytes(t, dest))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(payload) == 0 {
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
	} else if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	return raw.written()
}

// serve runs a server handshake over the given request bytes and returns the request,
// or the handshake error.
func serve(srv *Server, req []byte) (string, []byte, error) {
	raw := newMemConn(req)
	r, err := srv.Handshake(context.Background(), raw)
	if err != nil {
		return "", nil, err
	}
	defer r.Conn.Close()
	payload, err := io.ReadAll(r.Conn)
	return r.Destination, payload, err
}

func sum(b []byte) [sha256.Size]byte { return sha256.Sum256(b) }

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed ^ byte(i>>8)
	}
	return b
}
