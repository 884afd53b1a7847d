package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/httpproxy"
	"github.com/proxychain/proxychain/proxy/shadowsocks"
	"github.com/proxychain/proxychain/proxy/socks"
	"github.com/proxychain/proxychain/proxy/vmess"
	"github.com/proxychain/proxychain/test/harness"
)

const (
	testUUID  = "b12614c5-5ca4-4eba-a215-c61d642116ce"
	ss2022Key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
)

// captureConn records what a client outbound writes; reads block until Close.
type captureConn struct {
	net.Conn // nil: only the methods below are used
	mu       sync.Mutex
	out      bytes.Buffer
	closed   chan struct{}
	once     sync.Once
}

func newCaptureConn() *captureConn { return &captureConn{closed: make(chan struct{})} }

func (c *captureConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}
func (c *captureConn) Read([]byte) (int, error)           { <-c.closed; return 0, net.ErrClosed }
func (c *captureConn) Close() error                       { c.once.Do(func() { close(c.closed) }); return nil }
func (c *captureConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *captureConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }
func (c *captureConn) SetDeadline(t time.Time) error      { return nil }
func (c *captureConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *captureConn) SetWriteDeadline(t time.Time) error { return nil }
func (c *captureConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

type captureDialer struct{ conn *captureConn }

func (d captureDialer) DialContext(context.Context, string, string) (net.Conn, error) {
	return d.conn, nil
}

// clientHandshake returns the bytes a genuine client outbound sends to ask its server for
// dest and then send payload.
func clientHandshake(t testing.TB, newClient func(parent proxy.Dialer) proxy.Dialer, dest string, payload []byte) []byte {
	t.Helper()
	raw := newCaptureConn()
	c, err := newClient(captureDialer{raw}).DialContext(context.Background(), "tcp", dest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	c.Close()
	return raw.bytes()
}

// inboundCase is an inbound type under test with a genuine client's first bytes.
type inboundCase struct {
	name      string
	inbound   proxy.Inbound
	handshake []byte
}

// inboundCases covers every inbound type that faces a network: SOCKS, HTTP, Shadowsocks
// (AEAD and SIP022) and VMess (AEAD). dest is where each handshake asks to go.
func inboundCases(t testing.TB, dest string) []inboundCase {
	t.Helper()
	payload := []byte("hello")
	var cases []inboundCase
	socksReq := []byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 9}
	cases = append(cases,
		inboundCase{"socks", socks.NewServer(socks.ServerOptions{Logger: quiet}), socksReq},
		inboundCase{"http", httpproxy.NewServer(httpproxy.ServerOptions{Logger: quiet}),
			[]byte("CONNECT " + dest + " HTTP/1.1\r\nHost: " + dest + "\r\n\r\n")},
	)
	for _, m := range []struct{ method, password string }{{"aes-256-gcm", "password"}, {"2022-blake3-aes-256-gcm", ss2022Key}} {
		ciph, err := shadowsocks.NewCipher(m.method, m.password)
		if err != nil {
			t.Fatal(err)
		}
		hs := clientHandshake(t, func(p proxy.Dialer) proxy.Dialer {
			return shadowsocks.NewClient("out", "127.0.0.1:1", ciph, p)
		}, dest, payload)
		cases = append(cases, inboundCase{"shadowsocks/" + m.method, shadowsocks.NewServer(ciph, shadowsocks.ServerOptions{Logger: quiet}), hs})
	}
	id, err := vmess.ParseUUID(testUUID)
	if err != nil {
		t.Fatal(err)
	}
	vsrv, err := vmess.NewServer([]vmess.User{{ID: id}}, vmess.ServerOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	hs := clientHandshake(t, func(p proxy.Dialer) proxy.Dialer {
		c, err := vmess.NewClient("out", "127.0.0.1:1", vmess.User{ID: id}, "aes-128-gcm", p)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}, dest, payload)
	return append(cases, inboundCase{"vmess/aead", vsrv, hs})
}

// readUntilClosed reads and discards from c until it fails and returns when that was
// and the error.
func readUntilClosed(c net.Conn, limit time.Duration) (n int64, at time.Time, err error) {
	c.SetReadDeadline(time.Now().Add(limit))
	n, err = io.Copy(io.Discard, c)
	if err == nil {
		err = io.EOF
	}
	return n, time.Now(), err
}

// TestHandshakeDeadlineTrickle: a client that sends a genuine handshake one byte per
// second never gets past the handshake deadline, whatever the inbound: the server closes
// at the deadline (absolute from accept) and dials nothing. By outcome, not elapsed time:
// the connection is still open at half the deadline after the moment before the dial
// (no correct server can have closed it by then), the server then closes it while the
// handshake is still incomplete (a deadline that each byte pushed back would wait for
// all of it), and nothing is dialed. When it closed is a figure.
func TestHandshakeDeadlineTrickle(t *testing.T) {
	const deadline = 3 * time.Second
	for _, tc := range inboundCases(t, "127.0.0.1:9") {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dialer := &countingDialer{refuse: true}
			addr, _ := startServer(t, tc.inbound, dialer, proxy.ServerOptions{HandshakeTimeout: deadline})
			beforeDial := time.Now()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var sent atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for _, b := range tc.handshake {
					if _, err := conn.Write([]byte{b}); err != nil {
						return
					}
					sent.Add(1)
					select {
					case <-tick.C:
					case <-stop:
						return
					}
				}
			})
			// SOCKS answers its greeting, so bytes back are no failure here.
			_, heldErr := harness.HeldOpen(conn, beforeDial.Add(deadline/2))
			_, closedAt, err := readUntilClosed(conn, 3*deadline)
			close(stop)
			wg.Wait()
			after := closedAt.Sub(beforeDial)
			figure(t, "%s: trickling 1 byte/s, closed after %v with %d of %d handshake bytes sent (deadline %v), %d dials",
				tc.name, after.Round(10*time.Millisecond), sent.Load(), len(tc.handshake), deadline, dialer.dials.Load())
			if heldErr != nil {
				t.Errorf("within %v of the dial, before the %v deadline, the server %v", deadline/2, deadline, heldErr)
			}
			// A reset is a close too: the server may leave trickled bytes unread.
			if harness.IsTimeout(err) {
				t.Errorf("the server still held the connection %v after the dial, past its %v deadline", after.Round(time.Second), deadline)
			}
			if n := sent.Load(); n >= int64(len(tc.handshake)) {
				t.Errorf("the whole handshake (%d bytes) was sent before the server closed: the deadline is not absolute", n)
			}
			if d := dialer.dials.Load(); d != 0 {
				t.Errorf("%d dials", d)
			}
		})
	}
}

// TestIdleTimeout: a relayed connection with no traffic either way is closed after the
// idle timeout; one with a byte every fraction of it stays open. The silent one's close
// is judged by outcome: still open at half the timeout after the moment before its last
// byte (the timer cannot have started earlier), then closed with EOF, not left open.
// When it closed is a figure.
func TestIdleTimeout(t *testing.T) {
	if proxy.DefaultIdleTimeout != 300*time.Second {
		t.Errorf("default idle timeout %v, want 300 s", proxy.DefaultIdleTimeout)
	}
	const idle = 500 * time.Millisecond
	target := echoServer(t)
	addr, _ := startServer(t, socks.NewServer(socks.ServerOptions{Logger: quiet}), &countingDialer{}, proxy.ServerOptions{IdleTimeout: idle})

	quietConn, err := socksConnect(addr, target)
	if err != nil {
		t.Fatal(err)
	}
	defer quietConn.Close()
	busyConn, err := socksConnect(addr, target)
	if err != nil {
		t.Fatal(err)
	}
	defer busyConn.Close()
	if err := echoOnce(busyConn); err != nil {
		t.Fatal(err)
	}
	beforeLast := time.Now()
	if err := echoOnce(quietConn); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	var busyErr error
	wg.Go(func() {
		// Three idle periods' worth of traffic, a byte every 150 ms.
		for time.Since(start) < 3*idle {
			if err := echoOnce(busyConn); err != nil {
				busyErr = fmt.Errorf("after %v: %w", time.Since(start), err)
				return
			}
			time.Sleep(150 * time.Millisecond)
		}
	})
	held, heldErr := harness.HeldOpen(quietConn, beforeLast.Add(idle/2))
	n, closedAt, err := readUntilClosed(quietConn, 10*idle)
	wg.Wait()
	// The check runs every idle period, so an idle connection lives between one and two.
	after := closedAt.Sub(beforeLast)
	figure(t, "idle timeout %v: a silent connection closed after %v (%v); one with a byte every 150 ms stayed open for %v",
		idle, after.Round(10*time.Millisecond), err, 3*idle)
	if heldErr != nil {
		t.Errorf("silent connection, within %v of its last byte: %v", idle/2, heldErr)
	}
	if err != io.EOF || n+held != 0 {
		t.Errorf("silent connection ended with %v after %d bytes, want EOF and none", err, n+held)
	}
	if busyErr != nil {
		t.Errorf("busy connection: %v", busyErr)
	}
}

func echoOnce(c net.Conn) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte{'x'}); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return err
	}
	if b[0] != 'x' {
		return fmt.Errorf("echo %q", b[0])
	}
	return nil
}

// sourceServer sends an endless counting pattern (byte i is i mod 251) to every client.
func sourceServer(t testing.TB) string {
	return harness.ServeTCP(t, func(c net.Conn) {
		buf := make([]byte, 32<<10)
		var off int64
		for {
			for i := range buf {
				buf[i] = byte((off + int64(i)) % 251)
			}
			n, err := c.Write(buf)
			off += int64(n)
			if err != nil {
				return
			}
		}
	})
}

// patternReader reads a sourceServer stream, checking every byte.
type patternReader struct {
	conn  net.Conn
	off   atomic.Int64
	err   atomic.Value
	bytes atomic.Int64
}

func (p *patternReader) run() {
	buf := make([]byte, 32<<10)
	for {
		n, err := p.conn.Read(buf)
		off := p.off.Load()
		for i, b := range buf[:n] {
			if b != byte((off+int64(i))%251) {
				p.err.Store(fmt.Errorf("byte %d is %d, want %d", off+int64(i), b, (off+int64(i))%251))
				return
			}
		}
		p.off.Add(int64(n))
		p.bytes.Add(int64(n))
		if err != nil {
			p.err.Store(err)
			return
		}
	}
}

// TestConnectionCap: with MaxConns streams open, further connections are refused at
// accept (reset, no reply) while the open streams keep moving bytes, intact.
func TestConnectionCap(t *testing.T) {
	const maxConns, extra, window = 3, 20, 500 * time.Millisecond
	target := sourceServer(t)
	addr, srv := startServer(t, socks.NewServer(socks.ServerOptions{Logger: quiet}), &countingDialer{}, proxy.ServerOptions{MaxConns: maxConns})
	streams := make([]*patternReader, maxConns)
	var wg sync.WaitGroup
	for i := range streams {
		c, err := socksConnect(addr, target)
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = &patternReader{conn: c}
		wg.Go(streams[i].run)
	}
	defer func() {
		for _, s := range streams {
			s.conn.Close()
		}
		wg.Wait()
	}()
	moved := func() []int64 {
		before := make([]int64, len(streams))
		for i, s := range streams {
			before[i] = s.bytes.Load()
		}
		time.Sleep(window)
		for i, s := range streams {
			before[i] = s.bytes.Load() - before[i]
		}
		return before
	}
	under := moved()

	refused := 0
	var refusedErrs []string
	extraDone := make(chan struct{})
	go func() {
		defer close(extraDone)
		for range extra {
			_, err := socksConnect(addr, target)
			if err != nil {
				refused++
				if len(refusedErrs) < 2 {
					refusedErrs = append(refusedErrs, err.Error())
				}
			}
		}
	}()
	over := moved()
	<-extraDone
	figure(t, "MaxConns %d: %d of %d extra connections refused (e.g. %q); bytes moved per stream in %v: %v before, %v while refusing",
		maxConns, refused, extra, refusedErrs, window, under, over)
	if refused != extra {
		t.Errorf("%d of %d connections over the cap were served", extra-refused, extra)
	}
	for i, n := range over {
		if n == 0 {
			t.Errorf("stream %d moved nothing while the cap refused others", i)
		}
		if err, _ := streams[i].err.Load().(error); err != nil {
			t.Errorf("stream %d: %v", i, err)
		}
	}
	if n := srv.ActiveConns(); n != maxConns {
		t.Errorf("%d active connections, want %d", n, maxConns)
	}
	// A freed slot is usable again.
	streams[0].conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for srv.ActiveConns() >= maxConns && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c, err := socksConnect(addr, target)
	if err != nil {
		t.Fatalf("after a stream closed: %v", err)
	}
	c.Close()
}

// errIs reports whether err wraps any of targets.
func errIs(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
