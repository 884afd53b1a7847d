package redirect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/nettest"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/sniff"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeOrig stands for conntrack: every connection claims to have been headed for an
// address in TEST-NET-1, which nothing here ever dials.
var fakeOrig = netip.MustParseAddrPort("192.0.2.10:443")

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newTestServer(sniffers ...string) *Server {
	s := NewServer(ServerOptions{Sniff: sniffers, Logger: quietLogger(), SniffTimeout: 150 * time.Millisecond})
	s.originalDst = func(*net.TCPConn) (netip.AddrPort, error) { return fakeOrig, nil }
	return s
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server *net.TCPConn, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

// clientHello returns the first flight a crypto/tls client sends for serverName.
func clientHello(t *testing.T, serverName string) []byte {
	t.Helper()
	c1, c2 := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tls.Client(c1, &tls.Config{ServerName: serverName, InsecureSkipVerify: true}).Handshake()
		c1.Close()
	}()
	var flight []byte
	buf := make([]byte, 4096)
	for {
		n, err := c2.Read(buf)
		flight = append(flight, buf[:n]...)
		if err != nil {
			t.Fatalf("reading ClientHello: %v", err)
		}
		if _, _, more := sniff.TLS(flight); !more {
			break
		}
	}
	c2.Close()
	<-done
	return flight
}

// send writes chunks with a pause between them, so the server sees separate reads, then
// half-closes. It returns the hash of everything written.
func send(t *testing.T, c *net.TCPConn, chunks ...[]byte) (sum [32]byte, wait func()) {
	h := sha256.New()
	for _, ch := range chunks {
		h.Write(ch)
	}
	copy(sum[:], h.Sum(nil))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, ch := range chunks {
			if i > 0 {
				time.Sleep(20 * time.Millisecond)
			}
			if _, err := c.Write(ch); err != nil {
				t.Errorf("client write: %v", err)
				return
			}
		}
		c.CloseWrite()
	}()
	return sum, wg.Wait
}

func readAllHash(t *testing.T, r io.Reader) [32]byte {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatalf("reading replayed stream: %v", err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

func TestHandshakeSniff(t *testing.T) {
	hello := clientHello(t, "Sniffed.Example")
	payload := bytes.Repeat([]byte("after the hello "), 1000)
	request := []byte("GET /x HTTP/1.1\r\nUser-Agent: t\r\nHost: web.example:8080\r\n\r\n")
	tests := []struct {
		name   string
		sniff  []string
		chunks [][]byte
		dest   string
	}{
		{"tls in two reads", []string{"http", "tls"}, [][]byte{hello[:7], hello[7:], payload}, "sniffed.example:443"},
		{"http host", []string{"http", "tls"}, [][]byte{request, payload}, "web.example:443"},
		{"http request line alone first", []string{"http"}, [][]byte{request[:17], request[17:]}, "web.example:443"},
		{"tls not enabled", []string{"http"}, [][]byte{hello, payload}, fakeOrig.String()},
		{"http not enabled", []string{"tls"}, [][]byte{request}, fakeOrig.String()},
		{"unknown protocol", []string{"quic"}, [][]byte{hello}, fakeOrig.String()},
		{"neither protocol", []string{"http", "tls"}, [][]byte{[]byte("\x00binary"), payload}, fakeOrig.String()},
		{"tls without sni", []string{"tls"}, [][]byte{clientHello(t, "192.0.2.99"), payload}, fakeOrig.String()},
		{"half a request then EOF", []string{"http", "tls"}, [][]byte{request[:20]}, fakeOrig.String()},
		{"longer than the sniff limit", []string{"http"}, [][]byte{[]byte("GET /" + strings.Repeat("a", MaxSniffBytes+5000))}, fakeOrig.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := tcpPair(t)
			want, wait := send(t, client, tt.chunks...)
			defer wait()
			req, err := newTestServer(tt.sniff...).Handshake(context.Background(), server)
			if err != nil {
				t.Fatalf("Handshake: %v", err)
			}
			if req.Destination != tt.dest {
				t.Errorf("Destination = %q, want %q", req.Destination, tt.dest)
			}
			if got := readAllHash(t, req.Conn); got != want {
				t.Errorf("replayed stream differs from what the client sent")
			}
		})
	}
}

// TestHandshakeServerFirst is a client that waits for the server's banner (SSH, SMTP):
// sniffing must give up, and the connection must work in both directions afterwards.
func TestHandshakeServerFirst(t *testing.T) {
	server, client := tcpPair(t)
	s := newTestServer("http", "tls")
	done := make(chan struct{})
	var (
		req *proxy.Request
		err error
	)
	go func() {
		defer close(done)
		req, err = s.Handshake(context.Background(), server)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		server.Close()
		<-done
		t.Fatal("Handshake waited for a client that speaks second")
	}
	if err != nil {
		t.Fatalf("Handshake: %v", err)
	}
	if req.Destination != fakeOrig.String() || req.Conn != net.Conn(server) {
		t.Fatalf("Request = %q, %T; want the original destination and the bare conn", req.Destination, req.Conn)
	}
	banner := []byte("SSH-2.0-test\r\n")
	if _, err := req.Conn.Write(banner); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(banner))
	if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, banner) {
		t.Fatalf("client read %q, %v", got, err)
	}
	// The sniff deadline has passed by now; the server must still read.
	time.Sleep(200 * time.Millisecond)
	client.Write([]byte("reply"))
	client.CloseWrite()
	rest, err := io.ReadAll(req.Conn)
	if err != nil || string(rest) != "reply" {
		t.Fatalf("server read %q, %v after the sniff deadline", rest, err)
	}
}

func TestHandshakeContextDeadline(t *testing.T) {
	server, _ := tcpPair(t)
	s := NewServer(ServerOptions{Sniff: []string{"tls"}, Logger: quietLogger(), SniffTimeout: time.Hour})
	s.originalDst = func(*net.TCPConn) (netip.AddrPort, error) { return fakeOrig, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := s.Handshake(ctx, server)
	if err != nil || req.Destination != fakeOrig.String() {
		t.Fatalf("Handshake = %v, %v; want the original destination once ctx expires", req, err)
	}
}

func TestHandshakeRefuses(t *testing.T) {
	t.Run("not tcp", func(t *testing.T) {
		c1, c2 := net.Pipe()
		defer c1.Close()
		defer c2.Close()
		if _, err := newTestServer().Handshake(context.Background(), c1); !errors.Is(err, ErrNotTCP) {
			t.Fatalf("err = %v, want ErrNotTCP", err)
		}
	})
	t.Run("destination is the listener", func(t *testing.T) {
		server, _ := tcpPair(t)
		s := newTestServer()
		local := server.LocalAddr().(*net.TCPAddr).AddrPort()
		s.originalDst = func(*net.TCPConn) (netip.AddrPort, error) { return local, nil }
		if _, err := s.Handshake(context.Background(), server); !errors.Is(err, ErrNotRedirected) {
			t.Fatalf("err = %v, want ErrNotRedirected", err)
		}
	})
	t.Run("dual-stack view of the listener", func(t *testing.T) {
		server, _ := tcpPair(t)
		s := newTestServer()
		local := server.LocalAddr().(*net.TCPAddr).AddrPort()
		mapped := netip.AddrPortFrom(netip.AddrFrom16(local.Addr().As16()), local.Port())
		s.originalDst = func(*net.TCPConn) (netip.AddrPort, error) { return mapped, nil }
		if _, err := s.Handshake(context.Background(), server); !errors.Is(err, ErrNotRedirected) {
			t.Fatalf("err = %v, want ErrNotRedirected", err)
		}
	})
	// With the real getsockopt: a loopback connection nobody redirected either has no
	// conntrack entry or one whose destination is the listener. Both are refused.
	t.Run("real socket, not redirected", func(t *testing.T) {
		server, _ := tcpPair(t)
		s := NewServer(ServerOptions{Logger: quietLogger()})
		req, err := s.Handshake(context.Background(), server)
		if err == nil {
			t.Fatalf("Handshake accepted an unredirected connection: %q", req.Destination)
		}
		t.Logf("refused: %v", err)
	})
	t.Run("reset while sniffing", func(t *testing.T) {
		server, client := tcpPair(t)
		client.Write([]byte("GET / HT"))
		time.Sleep(20 * time.Millisecond)
		client.SetLinger(0)
		client.Close()
		if _, err := newTestServer("http").Handshake(context.Background(), server); err == nil {
			t.Fatal("Handshake returned a request for a reset connection")
		}
	})
}

func TestReplayConnPassThrough(t *testing.T) {
	server, client := tcpPair(t)
	var rc net.Conn = &replayConn{Conn: server, pending: []byte("early")}
	if u, ok := rc.(interface{ NetConn() net.Conn }); !ok || u.NetConn() != net.Conn(server) {
		t.Fatal("NetConn does not return the TCP connection")
	}
	if err := proxy.CloseWrite(rc); err != nil {
		t.Fatal(err)
	}
	// The client must see EOF from the half-close while it can still send.
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("client Read = %d, %v; want EOF after CloseWrite", n, err)
	}
	client.Write([]byte(" late"))
	client.Close()
	got, err := io.ReadAll(rc)
	if err != nil || string(got) != "early late" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
}

func TestReplayConnNettest(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, nil, err
		}
		defer ln.Close()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return nil, nil, nil, err
		}
		s, err := ln.Accept()
		if err != nil {
			c.Close()
			return nil, nil, nil, err
		}
		wrapped := &replayConn{Conn: s}
		return wrapped, c, func() { wrapped.Close(); c.Close() }, nil
	})
}

// TestServerRelay runs the inbound inside proxy.Server: the dialer must be asked for the
// sniffed name, and the target must receive the client's bytes, hello included, and
// answer through the relay.
func TestServerRelay(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	received := make(chan [32]byte, 1)
	go func() {
		c, err := target.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		sum := readAllHash(t, c)
		c.Write(sum[:])
		received <- sum
	}()

	var asked []string
	var mu sync.Mutex
	dialer := dialerFunc(func(ctx context.Context, network, address string) (net.Conn, error) {
		mu.Lock()
		asked = append(asked, address)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, target.Addr().String())
	})
	srv := &proxy.Server{Tag: "redirect", Inbound: newTestServer("tls", "http"), Dialer: dialer,
		Options: proxy.ServerOptions{Logger: quietLogger()}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	}()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hello := clientHello(t, "relay.example")
	want, wait := send(t, c.(*net.TCPConn), hello, bytes.Repeat([]byte{0xab}, 100000))
	wait()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	if !bytes.Equal(answer, want[:]) {
		t.Fatalf("target hashed %x, client sent %x", answer, want)
	}
	if got := <-received; got != want {
		t.Fatalf("target received %x, want %x", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 1 || asked[0] != "relay.example:443" {
		t.Fatalf("dialer asked for %q, want [relay.example:443]", asked)
	}
}

type dialerFunc func(ctx context.Context, network, address string) (net.Conn, error)

func (f dialerFunc) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return f(ctx, network, address)
}
