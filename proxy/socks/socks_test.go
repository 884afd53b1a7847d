package socks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/test/harness"
	"github.com/proxychain/proxychain/test/harness/proxytest"
)

var testAccounts = map[string]string{"alice": "wonderland", "bob": "builder"}

// dialFunc lets each SOCKS5 client implementation run the same round trip.
type dialFunc func(t *testing.T, proxyAddr, user, pass, dest string) (net.Conn, error)

func dialOurs(t *testing.T, proxyAddr, user, pass, dest string) (net.Conn, error) {
	c := NewClient("hop", proxyAddr, user, pass, &net.Dialer{})
	return c.DialContext(context.Background(), "tcp", dest)
}

func dialXNet(t *testing.T, proxyAddr, user, pass, dest string) (net.Conn, error) {
	var auth *xproxy.Auth
	if user != "" {
		auth = &xproxy.Auth{User: user, Password: pass}
	}
	d, err := xproxy.SOCKS5("tcp", proxyAddr, auth, &net.Dialer{})
	if err != nil {
		return nil, err
	}
	c, err := d.Dial("tcp", dest)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func TestSOCKS5RoundTrip(t *testing.T) {
	clients := map[string]dialFunc{"ours": dialOurs, "x/net": dialXNet}
	for _, client := range []string{"ours", "x/net"} {
		for _, auth := range []string{"noauth", "userpass"} {
			for _, addrKind := range []string{"ipv4", "ipv6", "domain"} {
				t.Run(client+"/"+auth+"/"+addrKind, func(t *testing.T) {
					up, down := harness.RandomBytes(100<<10), harness.RandomBytes(300<<10)
					tg, dest, d := harness.StartDestination(t, addrKind, len(up), down)
					opts := ServerOptions{Logger: discardLogger()}
					user, pass := "", ""
					if auth == "userpass" {
						opts.Accounts = testAccounts
						user, pass = "bob", "builder"
					}
					proxyAddr := proxytest.Serve(t, NewServer(opts), d)

					conn, err := clients[client](t, proxyAddr, user, pass, dest)
					if err != nil {
						t.Fatalf("dial: %v", err)
					}
					defer conn.Close()
					tg.Exchange(t, conn, up, down)
					if got := d.Dials(); !slices.Equal(got, []string{dest}) {
						t.Fatalf("proxy dialed %q, want exactly [%q] (domains unresolved)", got, dest)
					}
				})
			}
		}
	}
}

// rawCase is bytes a client sends to the proxy and the exact reply it must get before
// the proxy closes the connection.
type rawCase struct {
	name string
	send []byte
	want []byte
}

func expectReplies(t *testing.T, addr string, cases []rawCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.Write(tc.send)
			if got := readAll(t, c); !bytes.Equal(got, tc.want) {
				t.Fatalf("server sent % x, want % x then close", got, tc.want)
			}
		})
	}
}

// readAll reads what the proxy sends until it closes the connection.
func readAll(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(testTimeout))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSOCKS5AuthRejected(t *testing.T) {
	d := &harness.RecordingDialer{}
	addr := proxytest.Serve(t, NewServer(ServerOptions{Accounts: testAccounts, Logger: discardLogger()}), d)

	cases := []rawCase{
		// greeting offering username/password; then alice with bob's password
		{"wrong password", []byte("\x05\x01\x02\x01\x05alice\x07builder"), []byte("\x05\x02\x01\x01")},
		{"unknown user", []byte("\x05\x01\x02\x01\x03eve\x0awonderland"), []byte("\x05\x02\x01\x01")},
		{"empty user", []byte("\x05\x01\x02\x01\x00\x00"), []byte("\x05\x02\x01\x01")},
		// a prefix of the right password must not pass
		{"password prefix", []byte("\x05\x01\x02\x01\x05alice\x06wonder"), []byte("\x05\x02\x01\x01")},
		{"bad subnegotiation version", []byte("\x05\x01\x02\x02\x05"), []byte("\x05\x02\x01\x01")},
		// only "no authentication" offered while accounts are configured
		{"no acceptable method", []byte("\x05\x01\x00"), []byte("\x05\xff")},
		// SOCKS4 has no password, so it is refused outright
		{"socks4 with accounts", []byte("\x04\x01\x00\x50\x7f\x00\x00\x01"), []byte("\x00\x5b\x00\x00\x00\x00\x00\x00")},
	}
	expectReplies(t, addr, cases)

	t.Run("our client", func(t *testing.T) {
		_, err := dialOurs(t, addr, "alice", "builder", "127.0.0.1:80")
		if !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("err = %v, want ErrAuthFailed", err)
		}
		_, err = dialOurs(t, addr, "", "", "127.0.0.1:80")
		if !errors.Is(err, ErrNoAcceptableMethod) {
			t.Fatalf("err = %v, want ErrNoAcceptableMethod", err)
		}
	})
	t.Run("x/net client", func(t *testing.T) {
		if _, err := dialXNet(t, addr, "alice", "builder", "127.0.0.1:80"); err == nil {
			t.Fatal("x/net client got through with a wrong password")
		}
	})
	if got := d.Dials(); len(got) != 0 {
		t.Fatalf("proxy dialed %q after failed authentication", got)
	}
}

func TestSOCKS5Requests(t *testing.T) {
	d := &harness.RecordingDialer{Err: errors.New("must not dial")}
	addr := proxytest.Serve(t, NewServer(ServerOptions{Logger: discardLogger()}), d)
	cases := []rawCase{
		{"bind", []byte("\x05\x01\x00\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50"), []byte("\x05\x00\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00")},
		{"udp associate", []byte("\x05\x01\x00\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00"), []byte("\x05\x00\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00")},
		{"unknown address type", []byte("\x05\x01\x00\x05\x01\x00\x09\x00"), []byte("\x05\x00\x05\x08\x00\x01\x00\x00\x00\x00\x00\x00")},
		// an empty domain is as unusable downstream as a malformed one: general failure
		{"empty domain", []byte("\x05\x01\x00\x05\x01\x00\x03\x00\x00\x50"), []byte("\x05\x00\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00")},
		// domains that would not survive as the host of host:port downstream
		{"domain with bracket", []byte("\x05\x01\x00\x05\x01\x00\x03\x05a[b]c\x00\x50"), []byte("\x05\x00\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00")},
		{"domain with colon", []byte("\x05\x01\x00\x05\x01\x00\x03\x06evil:1\x00\x50"), []byte("\x05\x00\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00")},
		{"domain with space", []byte("\x05\x01\x00\x05\x01\x00\x03\x03a b\x00\x50"), []byte("\x05\x00\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00")},
		{"socks4a domain with slash", []byte("\x04\x01\x00\x50\x00\x00\x00\x01\x00a/b\x00"), []byte("\x00\x5b\x00\x00\x00\x00\x00\x00")},
		{"bad request version", []byte("\x05\x01\x00\x04\x01\x00"), []byte("\x05\x00")},
		// an HTTP request on the SOCKS port: closed without a word
		{"bad version", []byte("G"), nil},
		{"socks4 bind", []byte("\x04\x02\x00\x50\x7f\x00\x00\x01"), []byte("\x00\x5b\x00\x00\x00\x00\x00\x00")},
		{"socks4 user id too long", append([]byte("\x04\x01\x00\x50\x7f\x00\x00\x01"), bytes.Repeat([]byte("u"), 256)...), nil},
		{"no methods", []byte("\x05\x00"), []byte("\x05\xff")},
	}
	expectReplies(t, addr, cases)
	if got := d.Dials(); len(got) != 0 {
		t.Fatalf("proxy dialed %q for bad requests", got)
	}
}

func TestReplyCodes(t *testing.T) {
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: errno}}
	}
	cases := []struct {
		name string
		err  error
		want Reply
	}{
		{"refused", opErr(syscall.ECONNREFUSED), ReplyConnectionRefused},
		{"host unreachable", opErr(syscall.EHOSTUNREACH), ReplyHostUnreachable},
		{"network unreachable", opErr(syscall.ENETUNREACH), ReplyNetworkUnreachable},
		{"no such host", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}, ReplyHostUnreachable},
		{"timeout", context.DeadlineExceeded, ReplyHostUnreachable},
		{"other", errors.New("blocked by routing"), ReplyGeneralFailure},
		// a refusal reported by a SOCKS hop further along the chain keeps its meaning
		{"chained refusal", &ReplyError{Reply: ReplyConnectionRefused}, ReplyConnectionRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := proxytest.Serve(t, NewServer(ServerOptions{Logger: discardLogger()}), &harness.RecordingDialer{Err: tc.err})
			_, err := dialOurs(t, addr, "", "", "192.0.2.1:443")
			var re *ReplyError
			if !errors.As(err, &re) || re.Reply != tc.want {
				t.Fatalf("err = %v, want a ReplyError with %v", err, tc.want)
			}
			if re.Destination != "192.0.2.1:443" || re.Server != addr {
				t.Fatalf("ReplyError names %s via %s", re.Destination, re.Server)
			}
		})
	}

	t.Run("real refused dial", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		addr := proxytest.Serve(t, NewServer(ServerOptions{Logger: discardLogger()}), &harness.RecordingDialer{})
		_, err = dialOurs(t, addr, "", "", closed)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("err = %v, want connection refused", err)
		}
		// and on the wire, as the second byte of the reply
		c := dialRaw(t, addr)
		req, _ := connectRequest(closed)
		c.Write(append([]byte{5, 1, 0}, req...))
		got := readAll(t, c)
		if want := []byte("\x05\x00\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00"); !bytes.Equal(got, want) {
			t.Fatalf("server sent % x, want % x", got, want)
		}
	})
}

// connectRequest builds a SOCKS5 CONNECT request for an IPv4 host:port.
func connectRequest(address string) ([]byte, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, err
	}
	ip := ap.Addr().As4()
	return []byte{5, 1, 0, 1, ip[0], ip[1], ip[2], ip[3], byte(ap.Port() >> 8), byte(ap.Port())}, nil
}

// TestPipelined sends greeting, request and payload in one write, before any reply: the
// server must read exactly its handshake and leave the payload for the relay.
func TestPipelined(t *testing.T) {
	up, down := harness.RandomBytes(3000), harness.RandomBytes(5000)
	tg := harness.StartBytesTarget(t, "tcp", len(up), down)
	addr := proxytest.Serve(t, NewServer(ServerOptions{Logger: discardLogger()}), &harness.RecordingDialer{})
	req, err := connectRequest(tg.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, addr)
	msg := append(append([]byte{5, 1, 0}, req...), up...)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, c)
	// method choice, then a 10-byte success reply bound to 127.0.0.1, then the payload
	if len(got) < 2+10 || !bytes.Equal(got[:4], []byte{5, 0, 5, 0}) || got[5] != 1 {
		t.Fatalf("bad handshake answer % x", got[:min(len(got), 12)])
	}
	if bound := net.IP(got[6:10]).String() + ":" + strconv.Itoa(int(got[10])<<8|int(got[11])); bound != addr {
		t.Fatalf("bound address %s, want the proxy's %s", bound, addr)
	}
	if sha256.Sum256(got[12:]) != sha256.Sum256(down) {
		t.Fatal("downstream payload differs")
	}
	if h := <-tg.Got(); h != sha256.Sum256(up) {
		t.Fatal("pipelined upstream payload differs at the target")
	}
}

func TestSOCKS4(t *testing.T) {
	up, down := harness.RandomBytes(2000), harness.RandomBytes(7000)
	for _, tc := range []struct {
		name string
		head func(port uint16) []byte
		want string
	}{
		{"socks4", func(p uint16) []byte {
			return append([]byte{4, 1, byte(p >> 8), byte(p), 127, 0, 0, 1}, "someone\x00"...)
		}, "127.0.0.1"},
		{"socks4a", func(p uint16) []byte {
			return append([]byte{4, 1, byte(p >> 8), byte(p), 0, 0, 0, 1}, "\x00target.test\x00"...)
		}, "target.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := harness.StartBytesTarget(t, "tcp", len(up), down)
			ap, _ := netip.ParseAddrPort(tg.Addr())
			dest := net.JoinHostPort(tc.want, strconv.Itoa(int(ap.Port())))
			d := &harness.RecordingDialer{Hosts: map[string]string{dest: tg.Addr()}}
			addr := proxytest.Serve(t, NewServer(ServerOptions{Logger: discardLogger()}), d)
			c := dialRaw(t, addr)
			c.Write(append(tc.head(ap.Port()), up...))
			got := readAll(t, c)
			if len(got) < 8 || got[0] != 0 || got[1] != reply4Granted {
				t.Fatalf("bad SOCKS4 reply % x", got[:min(8, len(got))])
			}
			if sha256.Sum256(got[8:]) != sha256.Sum256(down) {
				t.Fatal("downstream payload differs")
			}
			if h := <-tg.Got(); h != sha256.Sum256(up) {
				t.Fatal("upstream payload differs at the target")
			}
			if got := d.Dials(); !slices.Equal(got, []string{dest}) {
				t.Fatalf("dialed %q, want [%q]", got, dest)
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		addr := proxytest.Serve(t, NewServer(ServerOptions{Logger: discardLogger()}), &harness.RecordingDialer{Err: syscall.ECONNREFUSED})
		c := dialRaw(t, addr)
		c.Write([]byte("\x04\x01\x00\x50\x7f\x00\x00\x01\x00"))
		if got := readAll(t, c); !bytes.Equal(got, []byte("\x00\x5b\x00\x00\x00\x00\x00\x00")) {
			t.Fatalf("server sent % x, want a rejection", got)
		}
	})
}

// TestOneByteReads runs both ends of the handshake over connections that deliver one
// byte per Read.
func TestOneByteReads(t *testing.T) {
	up, down := harness.RandomBytes(1000), harness.RandomBytes(1000)
	tg := harness.StartBytesTarget(t, "tcp", len(up)*2, down)

	// server side: every handshake byte arrives alone
	in := NewServer(ServerOptions{Accounts: testAccounts, Logger: discardLogger()})
	addr := proxytest.Serve(t, oneByteInbound{in}, &harness.RecordingDialer{})
	// client side: every reply byte arrives alone
	c := NewClient("slow", addr, "alice", "wonderland", harness.OneByteDialer{Dialer: &net.Dialer{}})
	conn, err := c.DialContext(context.Background(), "tcp", tg.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// a payload larger than one byte at a time reaches the target intact
	tg.Exchange(t, conn, append(up, up...), down)
}

type oneByteInbound struct{ in proxy.Inbound }

func (o oneByteInbound) Handshake(ctx context.Context, conn net.Conn) (*proxy.Request, error) {
	req, err := o.in.Handshake(ctx, harness.OneByteConn{Conn: conn})
	if err != nil {
		return nil, err
	}
	req.Conn = conn // hand the relay the plain connection again
	return req, nil
}

func TestClientContext(t *testing.T) {
	// a server that accepts and never answers
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	defer func() {
		ln.Close()
		if c := <-accepted; c != nil {
			c.Close()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	c := NewClient("stuck", ln.Addr().String(), "", "", &net.Dialer{})
	_, err = c.DialContext(ctx, "tcp", "192.0.2.1:80")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestClientErrors(t *testing.T) {
	c := NewClient("x", "127.0.0.1:1", "", "", &net.Dialer{})
	if _, err := c.DialContext(context.Background(), "udp", "127.0.0.1:53"); !errors.Is(err, proxy.ErrNetwork) {
		t.Fatalf("udp: err = %v", err)
	}
	if _, err := c.DialContext(context.Background(), "tcp", "no-port"); err == nil {
		t.Fatal("address without port accepted")
	}
	long := NewClient("x", "127.0.0.1:1", string(bytes.Repeat([]byte("u"), 256)), "p", &net.Dialer{})
	if _, err := long.DialContext(context.Background(), "tcp", "127.0.0.1:80"); !errors.Is(err, ErrCredentialsLong) {
		t.Fatalf("long user: err = %v", err)
	}
	if c.Tag() != "x" {
		t.Fatalf("Tag() = %q", c.Tag())
	}
}

// TestChain dials through two SOCKS hops: our client for hop 2 is dialed through our
// client for hop 1, each reaching its own server.
func TestChain(t *testing.T) {
	up, down := harness.RandomBytes(50<<10), harness.RandomBytes(50<<10)
	tg := harness.StartBytesTarget(t, "tcp", len(up), down)
	first := proxytest.Serve(t, NewServer(ServerOptions{Logger: discardLogger()}), &harness.RecordingDialer{})
	second := proxytest.Serve(t, NewServer(ServerOptions{Accounts: testAccounts, Logger: discardLogger()}), &harness.RecordingDialer{})
	hop1 := NewClient("hop1", first, "", "", &net.Dialer{})
	hop2 := NewClient("hop2", second, "alice", "wonderland", hop1)
	conn, err := hop2.DialContext(context.Background(), "tcp", tg.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tg.Exchange(t, conn, up, down)
}

func TestCurl(t *testing.T) {
	up, down := harness.RandomBytes(200<<10), harness.RandomBytes(500<<10)
	for _, tc := range []struct {
		name     string
		accounts map[string]string
		proxyURL func(addr string) string
	}{
		{"socks5h", nil, func(a string) string { return "socks5h://" + a }},
		{"socks5h userpass", testAccounts, func(a string) string { return "socks5h://alice:wonderland@" + a }},
		{"socks4a", nil, func(a string) string { return "socks4a://" + a }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := harness.StartHTTPTarget(t, down)
			_, port, _ := net.SplitHostPort(tg.Addr())
			dest := net.JoinHostPort("target.test", port)
			d := &harness.RecordingDialer{Hosts: map[string]string{dest: tg.Addr()}}
			addr := proxytest.Serve(t, NewServer(ServerOptions{Accounts: tc.accounts, Logger: discardLogger()}), d)
			harness.CurlUpload(t, tc.proxyURL(addr), "http://"+dest+"/upload", up, down)
			if h := <-tg.Got(); h != sha256.Sum256(up) {
				t.Fatal("origin received a different body")
			}
			if got := d.Dials(); !slices.Equal(got, []string{dest}) {
				t.Fatalf("dialed %q, want [%q]", got, dest)
			}
		})
	}
}
