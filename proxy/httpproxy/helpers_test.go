package httpproxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/goleak"

	"github.com/proxychain/proxychain/proxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTimeout = 10 * time.Second

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// target is a loopback TCP server: each connection must send exactly upLen bytes, whose
// hash goes to got; then the target sends down and closes.
type target struct {
	addr string
	got  chan [sha256.Size]byte
	// for httpTarget: each request head as the origin saw it, and how many bytes
	// arrived on its connection after that one request
	heads chan *http.Request
	extra chan int64
}

func startTarget(t *testing.T, network string, upLen int, down []byte) *target {
	t.Helper()
	host := "127.0.0.1"
	if network == "tcp6" {
		host = "::1"
	}
	ln, err := net.Listen(network, net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("listen %s: %v", network, err)
	}
	tg := &target{addr: ln.Addr().String(), got: make(chan [sha256.Size]byte, 16)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(testTimeout))
				h := sha256.New()
				if _, err := io.CopyN(h, c, int64(upLen)); err != nil {
					return
				}
				tg.got <- [sha256.Size]byte(h.Sum(nil))
				c.Write(down)
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return tg
}

// exchange sends up on conn and reads everything the peer sends back, then checks both
// directions by hash: what the target received, and what came back.
func exchange(t *testing.T, conn net.Conn, tg *target, up, down []byte) {
	t.Helper()
	conn.SetDeadline(time.Now().Add(testTimeout))
	werr := make(chan error, 1)
	go func() { _, err := conn.Write(up); werr <- err }()
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read from proxy: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write to proxy: %v", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(down) {
		t.Fatalf("downstream bytes differ: got %d bytes, want %d", len(got), len(down))
	}
	select {
	case h := <-tg.got:
		if h != sha256.Sum256(up) {
			t.Fatal("upstream bytes differ at the target")
		}
	case <-time.After(testTimeout):
		t.Fatal("target saw no complete upload")
	}
}

// recordingDialer dials TCP, records every address asked for, and maps the fake
// domains of a test onto loopback addresses.
type recordingDialer struct {
	mu    sync.Mutex
	asked []string
	hosts map[string]string // address -> loopback address
	err   error             // returned instead of dialing, when set
}

func (d *recordingDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.asked = append(d.asked, address)
	d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	if a, ok := d.hosts[address]; ok {
		address = a
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, address)
}

func (d *recordingDialer) dials() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.asked...)
}

// startProxy serves in on a loopback port through proxy.Server and returns its address.
func startProxy(t *testing.T, in proxy.Inbound, d proxy.Dialer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &proxy.Server{Tag: "test", Inbound: in, Dialer: d, Options: proxy.ServerOptions{
		HandshakeTimeout: testTimeout,
		Logger:           slog.New(slog.DiscardHandler),
	}}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, proxy.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// oneByteConn delivers one byte per Read, as a slow network might.
type oneByteConn struct{ net.Conn }

func (c oneByteConn) Read(p []byte) (int, error) { return iotest.OneByteReader(c.Conn).Read(p) }
func (c oneByteConn) CloseWrite() error          { return proxy.CloseWrite(c.Conn) }

type oneByteDialer struct{ proxy.Dialer }

func (d oneByteDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.Dialer.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return oneByteConn{c}, nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// requirePeer skips when an external program is missing, loudly, and fails under CI.
func requirePeer(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PEER MISSING: %s is required under CI: %v", path, err)
		}
		t.Skipf("PEER MISSING: %s not installed, skipping interop test: %v", path, err)
	}
}

// httpTarget is a loopback HTTP/1.1 origin for curl: it hashes each request body into
// got and answers with down, then counts what else arrives until the proxy's EOF.
func httpTarget(t *testing.T, down []byte) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{addr: ln.Addr().String(), got: make(chan [sha256.Size]byte, 16),
		heads: make(chan *http.Request, 16), extra: make(chan int64, 16)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(testTimeout))
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				h := sha256.New()
				if _, err := io.Copy(h, req.Body); err != nil {
					return
				}
				tg.got <- [sha256.Size]byte(h.Sum(nil))
				tg.heads <- req
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %s\r\nConnection: close\r\n\r\n", strconv.Itoa(len(down)))
				c.Write(down)
				proxy.CloseWrite(c)
				n, _ := io.Copy(io.Discard, br)
				tg.extra <- n
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return tg
}
