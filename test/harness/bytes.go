package harness

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"
)

// bytesTimeout bounds every connection a BytesTarget serves and every BytesTarget.Exchange.
const bytesTimeout = 10 * time.Second

// chanLen is how many results a BytesTarget buffers; a test that opens more connections
// than this must read them as it goes.
const chanLen = 16

// RandomBytes returns n random bytes, a payload no relay can pass by accident.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// BytesTarget is a loopback server for tests that speak raw bytes, with no Exchange
// header: a protocol package's own tests, where the proxy under test and the test's
// client carry arbitrary payloads. It reports the sha256 of what each connection
// uploaded on Got. It stops, and waits for its goroutines, when the test ends.
type BytesTarget struct {
	addr  string
	got   chan [sha256.Size]byte
	heads chan *http.Request
	extra chan int64
}

// StartBytesTarget listens on loopback for network ("tcp", "tcp4" on 127.0.0.1, "tcp6"
// on [::1]). Each connection must upload exactly upLen bytes; the target then sends down
// and closes.
func StartBytesTarget(t testing.TB, network string, upLen int, down []byte) *BytesTarget {
	t.Helper()
	return startBytesTarget(t, network, func(tg *BytesTarget, c net.Conn) {
		h := sha256.New()
		if _, err := io.CopyN(h, c, int64(upLen)); err != nil {
			return
		}
		tg.got <- [sha256.Size]byte(h.Sum(nil))
		c.Write(down)
	})
}

// StartDestination starts a BytesTarget and names it as a client of a proxy would, by
// kind: "ipv4" (127.0.0.1), "ipv6" ([::1]; without IPv6 loopback the test fails under CI
// and is skipped, loudly, elsewhere: see RequireIPv6Loopback) or
// "domain" (target.test, which only the returned dialer maps onto the target, so a test
// can check that the domain reached the proxy's dialer unresolved). The proxy under test
// should dial with d.
func StartDestination(t testing.TB, kind string, upLen int, down []byte) (tg *BytesTarget, dest string, d *RecordingDialer) {
	t.Helper()
	network := "tcp"
	if kind == "ipv6" {
		network = "tcp6"
		RequireIPv6Loopback(t)
	}
	tg = StartBytesTarget(t, network, upLen, down)
	d = &RecordingDialer{}
	switch kind {
	case "ipv4", "ipv6":
		return tg, tg.Addr(), d
	case "domain":
		_, port, _ := net.SplitHostPort(tg.Addr())
		dest = net.JoinHostPort("target.test", port)
		d.Hosts = map[string]string{dest: tg.Addr()}
		return tg, dest, d
	}
	t.Fatalf("harness: unknown destination kind %q", kind)
	return nil, "", nil
}

// RequireIPv6Loopback returns if this machine can listen on [::1]. If it cannot, the test
// fails under CI (CI=true), where every case must run, and is skipped, loudly, otherwise,
// as RequirePeer does for a missing peer.
func RequireIPv6Loopback(t testing.TB) {
	t.Helper()
	requireIPv6Loopback(t, func() error {
		ln, err := net.Listen("tcp6", "[::1]:0")
		if err == nil {
			ln.Close()
		}
		return err
	})
}

// requireIPv6Loopback is RequireIPv6Loopback with the listen passed in, so tests can take
// the missing path.
func requireIPv6Loopback(t testing.TB, listen func() error) {
	t.Helper()
	err := listen()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("IPv6 LOOPBACK MISSING: cannot listen on [::1] (%v); IPv6 destinations NOT verified", err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// StartHTTPTarget starts a loopback HTTP/1.1 origin on 127.0.0.1 that serves one request
// per connection: it reports the body's sha256 on Got and the request head on Heads,
// answers 200 with down and "Connection: close", half-closes, and reports on Extra how
// many bytes still arrived before the client's EOF (a proxy must send nothing more).
func StartHTTPTarget(t testing.TB, down []byte) *BytesTarget {
	t.Helper()
	return startBytesTarget(t, "tcp", func(tg *BytesTarget, c net.Conn) {
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
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(down))
		c.Write(down)
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		n, _ := io.Copy(io.Discard, br)
		tg.extra <- n
	})
}

func startBytesTarget(t testing.TB, network string, serve func(*BytesTarget, net.Conn)) *BytesTarget {
	t.Helper()
	host := "127.0.0.1"
	if network == "tcp6" {
		host = "::1"
	}
	ln, err := net.Listen(network, net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("harness: bytes target: listen %s: %v", network, err)
	}
	tg := &BytesTarget{
		addr:  ln.Addr().String(),
		got:   make(chan [sha256.Size]byte, chanLen),
		heads: make(chan *http.Request, chanLen),
		extra: make(chan int64, chanLen),
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(bytesTimeout))
				serve(tg, c)
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return tg
}

// Addr returns the target's host:port.
func (tg *BytesTarget) Addr() string { return tg.addr }

// Got delivers the sha256 of each complete upload, in the order they completed.
func (tg *BytesTarget) Got() <-chan [sha256.Size]byte { return tg.got }

// Heads delivers each request head an HTTP target read. Plain targets send nothing.
func (tg *BytesTarget) Heads() <-chan *http.Request { return tg.heads }

// Extra delivers, per HTTP target connection, the bytes that followed the one request.
func (tg *BytesTarget) Extra() <-chan int64 { return tg.extra }

// Exchange sends up on conn, which leads to a target started by StartBytesTarget, and
// reads until EOF; then it checks by sha256 that exactly down came back and that the
// target received exactly up. It fails the test otherwise.
func (tg *BytesTarget) Exchange(t testing.TB, conn net.Conn, up, down []byte) {
	t.Helper()
	conn.SetDeadline(time.Now().Add(bytesTimeout))
	werr := make(chan error, 1)
	go func() { _, err := conn.Write(up); werr <- err }()
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("harness: read from proxy: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("harness: write to proxy: %v", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(down) {
		t.Fatalf("harness: downstream bytes differ: got %d bytes, want %d", len(got), len(down))
	}
	select {
	case h := <-tg.got:
		if h != sha256.Sum256(up) {
			t.Fatal("harness: upstream bytes differ at the target")
		}
	case <-time.After(bytesTimeout):
		t.Fatal("harness: target saw no complete upload")
	}
}
