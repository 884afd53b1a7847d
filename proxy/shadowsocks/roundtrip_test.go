package shadowsocks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
)

// banner is what a greeting target sends before reading anything.
const banner = "220 ready\r\n"

// startTarget listens on loopback. Per connection it optionally sends banner, reads the
// client's bytes until EOF, then answers with their sha256 followed by down bytes of
// pattern(down, 0xd0), where down is the first 8 bytes of the request (big-endian).
func startTarget(t *testing.T, greet bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				if greet {
					if _, err := io.WriteString(c, banner); err != nil {
						return
					}
				}
				got, err := io.ReadAll(c)
				if err != nil || len(got) < 8 {
					return
				}
				down := binary.BigEndian.Uint64(got)
				if down > 64<<20 {
					return
				}
				h := sha256.Sum256(got)
				c.Write(h[:])
				c.Write(pattern(int(down), 0xd0))
			}()
		}
	}()
	return ln.Addr().String()
}

// startServer runs a proxy.Server with a Shadowsocks inbound on loopback. The returned
// counter counts the dials the server made.
func startServer(t *testing.T, ciph *Cipher, opts proxy.ServerOptions) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dials := new(atomic.Int64)
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	srv := &proxy.Server{
		Tag:     "ss-in",
		Inbound: NewServer(ciph, ServerOptions{Logger: quiet}),
		Dialer:  countingDialer{dials, &net.Dialer{}},
		Options: opts,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String(), dials
}

// countingDialer counts dials and refuses any destination off loopback: a probe that
// decrypts to a random address must not reach the network.
type countingDialer struct {
	n *atomic.Int64
	d proxy.Dialer
}

var errNotLoopback = errors.New("test dialer: destination is not loopback")

func (c countingDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c.n.Add(1)
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%w: %s", errNotLoopback, address)
	}
	return c.d.DialContext(ctx, network, address)
}

// exchange sends up bytes (the first 8 name down) through conn, half-closes, and checks
// the target's sha256 of them and the down bytes that follow.
func exchange(conn net.Conn, up, down int, readBanner bool) error {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if readBanner {
		b := make([]byte, len(banner))
		if _, err := io.ReadFull(conn, b); err != nil || string(b) != banner {
			return fmt.Errorf("banner %q: %v", b, err)
		}
	}
	req := pattern(max(up, 8), 0x11)
	binary.BigEndian.PutUint64(req, uint64(down))
	if _, err := conn.Write(req); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := proxy.CloseWrite(conn); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	got, err := io.ReadAll(conn)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	want := sha256.Sum256(req)
	if len(got) < len(want) || !bytes.Equal(got[:len(want)], want[:]) {
		return fmt.Errorf("target saw other bytes than sent (%d bytes back)", len(got))
	}
	if !bytes.Equal(got[len(want):], pattern(down, 0xd0)) {
		return fmt.Errorf("down: got %d bytes, sha256 %x; want %d bytes, sha256 %x",
			len(got)-len(want), sum(got[len(want):]), down, sum(pattern(down, 0xd0)))
	}
	return nil
}

func TestRoundTrip(t *testing.T) {
	target := startTarget(t, false)
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		server, dials := startServer(t, ciph, proxy.ServerOptions{})
		cl := NewClient("ss", server, ciph, &net.Dialer{})
		sizes := [][2]int{{8, 0}, {8, 1}, {maxPayload, maxPayload + 1}, {maxPayload + 1, maxPayload}, {1<<20 + 7, 3}, {9, 1<<20 + 5}}
		for _, s := range sizes {
			conn, err := cl.DialContext(context.Background(), "tcp", target)
			if err != nil {
				t.Fatal(err)
			}
			if err := exchange(conn, s[0], s[1], false); err != nil {
				t.Errorf("up %d down %d: %v", s[0], s[1], err)
			}
		}
		if got := dials.Load(); got != int64(len(sizes)) {
			t.Errorf("server dialed %d times, want %d", got, len(sizes))
		}
	})
}

// TestServerSpeaksFirst: the application reads before writing, so the client must send
// its header on its own or the server never dials and the banner never comes.
func TestServerSpeaksFirst(t *testing.T) {
	target := startTarget(t, true)
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		server, _ := startServer(t, ciph, proxy.ServerOptions{})
		cl := NewClient("ss", server, ciph, nil)
		conn, err := cl.DialContext(context.Background(), "tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		if err := exchange(conn, 100, 100, true); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConcurrentConnections(t *testing.T) {
	target := startTarget(t, false)
	for _, m := range []string{"aes-128-gcm", "2022-blake3-aes-256-gcm", "chacha20-ietf"} {
		t.Run(m, func(t *testing.T) {
			ciph := mustCipher(t, m)
			server, _ := startServer(t, ciph, proxy.ServerOptions{})
			cl := NewClient("ss", server, ciph, nil)
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for i := range 16 {
				wg.Go(func() {
					conn, err := cl.DialContext(context.Background(), "tcp", target)
					if err != nil {
						errs <- err
						return
					}
					if err := exchange(conn, 100<<10+i, 50<<10+i, false); err != nil {
						errs <- fmt.Errorf("conn %d: %w", i, err)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestChain dials through hops of mixed editions: each hop's client dials its server
// through the previous hop, so every hop's server sees only the next hop's ciphertext.
func TestChain(t *testing.T) {
	target := startTarget(t, false)
	chains := [][]string{
		{"2022-blake3-aes-128-gcm", "aes-256-cfb"},
		{"aes-128-gcm", "2022-blake3-chacha20-poly1305"},
		{"chacha20-ietf-poly1305", "none", "aes-128-ctr", "2022-blake3-aes-256-gcm"},
	}
	for _, chain := range chains {
		t.Run(fmt.Sprint(chain), func(t *testing.T) {
			var parent proxy.Dialer = &net.Dialer{}
			var counters []*atomic.Int64
			for i, m := range chain {
				ciph := mustCipher(t, m)
				server, dials := startServer(t, ciph, proxy.ServerOptions{})
				counters = append(counters, dials)
				parent = NewClient(fmt.Sprintf("hop%d", i), server, ciph, parent)
			}
			for range 3 {
				conn, err := parent.DialContext(context.Background(), "tcp", target)
				if err != nil {
					t.Fatal(err)
				}
				if err := exchange(conn, 300<<10, 200<<10, false); err != nil {
					t.Fatal(err)
				}
			}
			for i, d := range counters {
				if d.Load() != 3 {
					t.Errorf("hop %d server dialed %d times, want 3", i, d.Load())
				}
			}
		})
	}
}

func TestDialErrors(t *testing.T) {
	ciph := mustCipher(t, "aes-128-gcm")
	cl := NewClient("ss", "127.0.0.1:1", ciph, nil)
	if _, err := cl.DialContext(context.Background(), "udp", "1.2.3.4:53"); !errors.Is(err, proxy.ErrNetwork) {
		t.Errorf("udp: err = %v, want ErrNetwork", err)
	}
	if _, err := cl.DialContext(context.Background(), "tcp", "no-port"); err == nil {
		t.Error("target without port: no error")
	}
	if cl.Tag() != "ss" {
		t.Errorf("Tag() = %q", cl.Tag())
	}
}

// TestDialSendsNameUnresolved: a destination given by name reaches the server as that
// name, for the exit to resolve where it is. This machine resolves "localhost", so a
// client that resolved names itself would send 127.0.0.1 instead; "example.test"
// resolves nowhere. The other tests encode the address themselves or dial an IP.
func TestDialSendsNameUnresolved(t *testing.T) {
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		for _, dest := range []string{"example.test:80", "localhost:443"} {
			t.Run(dest, func(t *testing.T) {
				if got, payload := dialAndAccept(t, ciph, dest, "hello"); got != dest || payload != "hello" {
					t.Errorf("DialContext(%q): the server got destination %q and payload %q, want %q and %q",
						dest, got, payload, dest, "hello")
				}
			})
		}
	})
}

// dialAndAccept dials dest through a Client to a Server on loopback, sends payload and
// half-closes, and returns the destination and payload the server's handshake gave it.
// It dials nothing further.
func dialAndAccept(t *testing.T, ciph *Cipher, dest, payload string) (gotDest, gotPayload string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		dest, payload string
		err           error
	}
	accepted := make(chan result, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			accepted <- result{err: err}
			return
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := NewServer(ciph, ServerOptions{Logger: quiet}).Handshake(context.Background(), raw)
		if err != nil {
			accepted <- result{err: err}
			return
		}
		defer req.Conn.Close()
		b, err := io.ReadAll(req.Conn)
		accepted <- result{req.Destination, string(b), err}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := NewClient("ss", ln.Addr().String(), ciph, nil).DialContext(ctx, "tcp", dest)
	if err != nil {
		t.Fatalf("DialContext(%q): %v", dest, err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, payload); err != nil {
		t.Fatal(err)
	}
	if err := proxy.CloseWrite(conn); err != nil {
		t.Fatal(err)
	}
	r := <-accepted
	if r.err != nil {
		t.Fatalf("server: %v", r.err)
	}
	return r.dest, r.payload
}
