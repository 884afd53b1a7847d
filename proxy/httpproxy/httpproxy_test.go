package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/test/harness"
	"github.com/proxychain/proxychain/test/harness/proxytest"
)

var testAccounts = map[string]string{"alice": "wonderland", "bob": "builder"}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestConnectRoundTrip(t *testing.T) {
	for _, auth := range []string{"noauth", "basic"} {
		for _, addrKind := range []string{"ipv4", "ipv6", "domain"} {
			t.Run(auth+"/"+addrKind, func(t *testing.T) {
				up, down := harness.RandomBytes(100<<10), harness.RandomBytes(300<<10)
				tg, dest, d := harness.StartDestination(t, addrKind, len(up), down)
				opts := ServerOptions{Logger: discardLogger()}
				user, pass := "", ""
				if auth == "basic" {
					opts.Accounts = testAccounts
					user, pass = "alice", "wonderland"
				}
				addr := proxytest.Serve(t, NewServer(opts), d)
				conn, err := NewClient("hop", addr, user, pass, &net.Dialer{}).DialContext(context.Background(), "tcp", dest)
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer conn.Close()
				tg.Exchange(t, conn, up, down)
				if got := d.Dials(); !slices.Equal(got, []string{dest}) {
					t.Fatalf("proxy dialed %q, want exactly [%q]", got, dest)
				}
			})
		}
	}
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { c.Close() })
	return c
}

// TestConnectPipelined sends the CONNECT head and the tunnel's first bytes in one write:
// the bytes the head parser buffered must still reach the target.
func TestConnectPipelined(t *testing.T) {
	up, down := harness.RandomBytes(40<<10), harness.RandomBytes(40<<10)
	tg := harness.StartBytesTarget(t, "tcp", len(up), down)
	addr := proxytest.Serve(t, NewServer(ServerOptions{Logger: discardLogger()}), &harness.RecordingDialer{})
	c := dialRaw(t, addr)
	head := "CONNECT " + tg.Addr() + " HTTP/1.1\r\nHost: " + tg.Addr() + "\r\nUser-Agent: test\r\n\r\n"
	if _, err := c.Write(append([]byte(head), up...)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	const answer = "HTTP/1.1 200 Connection established\r\n\r\n"
	if !bytes.HasPrefix(got, []byte(answer)) {
		t.Fatalf("answer %q", got[:min(len(got), 60)])
	}
	if sha256.Sum256(got[len(answer):]) != sha256.Sum256(down) {
		t.Fatal("downstream payload differs")
	}
	if h := <-tg.Got(); h != sha256.Sum256(up) {
		t.Fatal("pipelined payload differs at the target")
	}
}

// TestForwardRewrite checks what the origin receives for an absolute-URI request, and
// that a second request pipelined behind it never reaches the origin.
func TestForwardRewrite(t *testing.T) {
	body, down := harness.RandomBytes(30<<10), harness.RandomBytes(20<<10)
	tg := harness.StartHTTPTarget(t, down)
	_, port, _ := net.SplitHostPort(tg.Addr())
	dest := net.JoinHostPort("target.test", port)
	d := &harness.RecordingDialer{Hosts: map[string]string{dest: tg.Addr()}}
	addr := proxytest.Serve(t, NewServer(ServerOptions{Accounts: testAccounts, Logger: discardLogger()}), d)

	for _, framing := range []string{"content-length", "chunked"} {
		t.Run(framing, func(t *testing.T) {
			var req bytes.Buffer
			req.WriteString("POST http://" + dest + "/upload?x=1 HTTP/1.1\r\n" +
				"Host: ignored.example\r\n" +
				"Proxy-Connection: keep-alive\r\n" +
				"Proxy-Authorization: " + basic("bob", "builder") + "\r\n" +
				"Connection: X-Hop, keep-alive\r\n" +
				"X-Hop: for this hop only\r\n" +
				"Keep-Alive: timeout=5\r\n" +
				"X-Keep: end to end\r\n")
			if framing == "chunked" {
				req.WriteString("Transfer-Encoding: chunked\r\n\r\n")
				for rest := body; len(rest) > 0; {
					n := min(len(rest), 7000)
					req.WriteString(strings.ToUpper(strconv.FormatInt(int64(n), 16)) + ";ext=1\r\n")
					req.Write(rest[:n])
					req.WriteString("\r\n")
					rest = rest[n:]
				}
				req.WriteString("0\r\nX-Trailer: t\r\n\r\n")
			} else {
				req.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
				req.Write(body)
			}
			// a second request on the same connection, which must be dropped
			req.WriteString("GET http://other.example/ HTTP/1.1\r\nHost: other.example\r\n\r\n")

			c := dialRaw(t, addr)
			if _, err := c.Write(req.Bytes()); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 || sha256.Sum256(got) != sha256.Sum256(down) {
				t.Fatalf("response %s, %d bytes, err %v", resp.Status, len(got), err)
			}
			c.Close()

			if h := <-tg.Got(); h != sha256.Sum256(body) {
				t.Fatal("origin received a different body")
			}
			head := <-tg.Heads()
			if head.RequestURI != "/upload?x=1" || head.Host != dest || head.Method != "POST" {
				t.Fatalf("origin saw %s %s with Host %s", head.Method, head.RequestURI, head.Host)
			}
			for _, gone := range []string{"Proxy-Connection", "Proxy-Authorization", "X-Hop", "Keep-Alive"} {
				if v, ok := head.Header[gone]; ok {
					t.Errorf("hop-by-hop %s: %q reached the origin", gone, v)
				}
			}
			if v := head.Header.Get("X-Keep"); v != "end to end" {
				t.Errorf("X-Keep = %q", v)
			}
			if !head.Close {
				t.Error("upstream request lacks Connection: close")
			}
			if n := <-tg.Extra(); n != 0 {
				t.Fatalf("origin received %d bytes after the request", n)
			}
		})
	}
	if got := d.Dials(); !slices.Equal(got, []string{dest, dest}) {
		t.Fatalf("dialed %q", got)
	}
}

// TestForwardNetHTTP uses net/http's proxy support as a second client implementation.
func TestForwardNetHTTP(t *testing.T) {
	body, down := harness.RandomBytes(64<<10), harness.RandomBytes(100<<10)
	tg := harness.StartHTTPTarget(t, down)
	addr := proxytest.Serve(t, NewServer(ServerOptions{Accounts: testAccounts, Logger: discardLogger()}), &harness.RecordingDialer{})
	proxyURL := &url.URL{Scheme: "http", User: url.UserPassword("alice", "wonderland"), Host: addr}
	tr := &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: testTimeout}

	for _, name := range []string{"content-length", "chunked"} {
		t.Run(name, func(t *testing.T) {
			var rd io.Reader = bytes.NewReader(body)
			if name == "chunked" {
				rd = io.MultiReader(rd) // unknown length: net/http sends chunks
			}
			resp, err := client.Post("http://"+tg.Addr()+"/up", "application/octet-stream", rd)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || sha256.Sum256(got) != sha256.Sum256(down) {
				t.Fatalf("response %s: %d bytes, err %v", resp.Status, len(got), err)
			}
			if h := <-tg.Got(); h != sha256.Sum256(body) {
				t.Fatal("origin received a different body")
			}
			if head := <-tg.Heads(); (name == "chunked") != slices.Contains(head.TransferEncoding, "chunked") {
				t.Fatalf("origin saw framing %q", head.TransferEncoding)
			}
			<-tg.Extra()
		})
	}
}

// status sends raw bytes and returns the proxy's answer, which must end the connection.
func status(t *testing.T, addr, raw string) *http.Response {
	t.Helper()
	c := dialRaw(t, addr)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	io.ReadAll(resp.Body)
	return resp
}

func TestRefusals(t *testing.T) {
	d := &harness.RecordingDialer{Err: errors.New("must not dial")}
	addr := proxytest.Serve(t, NewServer(ServerOptions{Accounts: testAccounts, Logger: discardLogger()}), d)
	auth := "Proxy-Authorization: " + basic("alice", "wonderland") + "\r\n"
	manyHeaders := strings.Repeat("X-A: b\r\n", MaxHeaderCount+1)
	cases := []struct {
		name string
		raw  string
		want int
	}{
		{"no credentials", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 407},
		{"wrong password", "CONNECT a.example:443 HTTP/1.1\r\nProxy-Authorization: " + basic("alice", "wonder") + "\r\n\r\n", 407},
		{"unknown user", "GET http://a.example/ HTTP/1.1\r\nProxy-Authorization: " + basic("eve", "wonderland") + "\r\n\r\n", 407},
		{"not basic", "CONNECT a.example:443 HTTP/1.1\r\nProxy-Authorization: Bearer abc\r\n\r\n", 407},
		{"oversized head", "CONNECT a.example:443 HTTP/1.1\r\nX-Big: " + strings.Repeat("x", DefaultMaxHeaderBytes) + "\r\n\r\n", 431},
		{"too many fields", "CONNECT a.example:443 HTTP/1.1\r\n" + auth + manyHeaders + "\r\n", 431},
		{"garbage", "HELLO\r\n\r\n", 400},
		{"origin-form", "GET / HTTP/1.1\r\nHost: a.example\r\n" + auth + "\r\n", 400},
		{"https absolute", "GET https://a.example/ HTTP/1.1\r\n" + auth + "\r\n", 400},
		{"connect without port", "CONNECT a.example HTTP/1.1\r\n" + auth + "\r\n", 400},
		{"connect port zero", "CONNECT a.example:0 HTTP/1.1\r\n" + auth + "\r\n", 400},
		{"http/2", "GET http://a.example/ HTTP/2.0\r\n" + auth + "\r\n", 505},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := status(t, addr, tc.raw)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %s, want %d", resp.Status, tc.want)
			}
			if tc.want == 407 && resp.Header.Get("Proxy-Authenticate") != `Basic realm="proxychain"` {
				t.Fatalf("407 without a Basic challenge: %q", resp.Header)
			}
		})
	}
	if got := d.Dials(); len(got) != 0 {
		t.Fatalf("dialed %q for refused requests", got)
	}

	t.Run("our client, wrong password", func(t *testing.T) {
		_, err := NewClient("x", addr, "alice", "nope", &net.Dialer{}).DialContext(context.Background(), "tcp", "a.example:443")
		var se *StatusError
		if !errors.As(err, &se) || se.Code != 407 || se.Destination != "a.example:443" {
			t.Fatalf("err = %v, want a 407 StatusError", err)
		}
	})

	t.Run("custom limit", func(t *testing.T) {
		small := proxytest.Serve(t, NewServer(ServerOptions{MaxHeaderBytes: 256, Logger: discardLogger()}), d)
		if resp := status(t, small, "CONNECT a.example:443 HTTP/1.1\r\nX: "+strings.Repeat("y", 300)+"\r\n\r\n"); resp.StatusCode != 431 {
			t.Fatalf("status %s, want 431", resp.Status)
		}
	})
}

func TestDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	addr := proxytest.Serve(t, NewServer(ServerOptions{Logger: discardLogger()}), &harness.RecordingDialer{})
	for _, raw := range []string{
		"CONNECT " + closed + " HTTP/1.1\r\n\r\n",
		"GET http://" + closed + "/ HTTP/1.1\r\n\r\n",
	} {
		resp := status(t, addr, raw)
		if resp.StatusCode != 502 {
			t.Fatalf("status %s, want 502", resp.Status)
		}
	}
	// the body names the kind of failure
	c := dialRaw(t, addr)
	io.WriteString(c, "CONNECT "+closed+" HTTP/1.1\r\n\r\n")
	got, _ := io.ReadAll(c)
	if !bytes.HasSuffix(got, []byte("\r\n\r\nupstream connection refused\n")) {
		t.Fatalf("answer %q", got)
	}

	_, err = NewClient("x", addr, "", "", &net.Dialer{}).DialContext(context.Background(), "tcp", closed)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 502 {
		t.Fatalf("err = %v, want a 502 StatusError", err)
	}
}

// fakeProxy answers one connection with answer, after reading the CONNECT head; then it
// reads until the client closes or, with closeAtOnce, closes.
func fakeProxy(t *testing.T, answer []byte, closeAtOnce bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(testTimeout))
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		c.Write(answer)
		if !closeAtOnce {
			io.Copy(io.Discard, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func TestClientAnswers(t *testing.T) {
	t.Run("bytes after the head", func(t *testing.T) {
		for _, dialer := range []proxy.Dialer{&net.Dialer{}, harness.OneByteDialer{Dialer: &net.Dialer{}}} {
			addr := fakeProxy(t, []byte("HTTP/1.0 200 OK\r\nVia: fake\r\n\r\nfirst bytes of the tunnel"), false)
			conn, err := NewClient("x", addr, "u", "p", dialer).DialContext(context.Background(), "tcp", "a.example:443")
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(testTimeout))
			got := make([]byte, len("first bytes of the tunnel"))
			if _, err := io.ReadFull(conn, got); err != nil || string(got) != "first bytes of the tunnel" {
				t.Fatalf("read %q, %v", got, err)
			}
			conn.Close()
		}
	})
	for _, tc := range []struct {
		name   string
		answer string
		check  func(error) bool
	}{
		{"forbidden", "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", func(err error) bool {
			var se *StatusError
			return errors.As(err, &se) && se.Code == 403 && se.Status == "403 Forbidden"
		}},
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n", func(err error) bool { return errors.Is(err, ErrMalformedResponse) }},
		{"bad status", "HTTP/1.1 2000 OK\r\n\r\n", func(err error) bool { return errors.Is(err, ErrMalformedResponse) }},
		{"huge head", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxResponseHead) + "\r\n\r\n", func(err error) bool { return errors.Is(err, ErrMalformedResponse) }},
		{"closed early", "HTTP/1.1 200 OK\r\n", func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeProxy(t, []byte(tc.answer), tc.name == "closed early")
			_, err := NewClient("x", addr, "", "", &net.Dialer{}).DialContext(context.Background(), "tcp", "a.example:443")
			if !tc.check(err) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	c := NewClient("tag", "127.0.0.1:1", "", "", &net.Dialer{})
	if c.Tag() != "tag" {
		t.Fatalf("Tag() = %q", c.Tag())
	}
	if _, err := c.DialContext(context.Background(), "udp", "a:1"); !errors.Is(err, proxy.ErrNetwork) {
		t.Fatalf("udp: %v", err)
	}
	for _, bad := range []string{"no-port", "a.example:443\r\nX-Injected: 1", "a b:443", ":443"} {
		if _, err := c.DialContext(context.Background(), "tcp", bad); err == nil || errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("destination %q: err = %v, want a refusal before dialing", bad, err)
		}
	}
}

// TestOneByteReads runs the server's head parser over a connection that delivers one byte
// per Read, with the tunnel payload right behind the head.
func TestOneByteReads(t *testing.T) {
	up, down := harness.RandomBytes(3000), harness.RandomBytes(3000)
	tg := harness.StartBytesTarget(t, "tcp", len(up), down)
	addr := proxytest.Serve(t, oneByteInbound{NewServer(ServerOptions{Logger: discardLogger()})}, &harness.RecordingDialer{})
	conn, err := NewClient("slow", addr, "", "", harness.OneByteDialer{Dialer: &net.Dialer{}}).DialContext(context.Background(), "tcp", tg.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tg.Exchange(t, conn, up, down)
}

type oneByteInbound struct{ in proxy.Inbound }

func (o oneByteInbound) Handshake(ctx context.Context, conn net.Conn) (*proxy.Request, error) {
	return o.in.Handshake(ctx, harness.OneByteConn{Conn: conn})
}

func TestReplayConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		a, b := net.Pipe()
		br := bufio.NewReader(a)
		return withBuffered(a, br), b, func() { a.Close(); b.Close() }, nil
	})

	t.Run("replays then reads, passes CloseWrite", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer server.Close()
		client.Write([]byte("headpayload"))
		br := bufio.NewReader(server)
		head := make([]byte, 4)
		io.ReadFull(br, head)
		rc := withBuffered(server, br)
		if _, ok := rc.(*replayConn); !ok {
			t.Fatal("buffered bytes but no replay wrapper")
		}
		if rc.(interface{ NetConn() net.Conn }).NetConn() != server {
			t.Fatal("NetConn does not return the connection beneath")
		}
		client.Write([]byte("-more"))
		client.(*net.TCPConn).CloseWrite()
		rc.SetReadDeadline(time.Now().Add(testTimeout))
		got, err := io.ReadAll(rc)
		if err != nil || string(got) != "payload-more" {
			t.Fatalf("read %q, %v", got, err)
		}
		if err := proxy.CloseWrite(rc); err != nil {
			t.Fatal(err)
		}
		client.SetReadDeadline(time.Now().Add(testTimeout))
		if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("after CloseWrite the peer read %d, %v; want EOF", n, err)
		}
	})
}

func TestCurl(t *testing.T) {
	up, down := harness.RandomBytes(200<<10), harness.RandomBytes(500<<10)
	for _, tc := range []struct {
		name     string
		accounts map[string]string
		args     []string
	}{
		{"forward", nil, nil},
		{"forward chunked basic", testAccounts, []string{"--proxy-user", "bob:builder", "-H", "Transfer-Encoding: chunked"}},
		{"connect tunnel", nil, []string{"--proxytunnel"}},
		{"connect tunnel basic", testAccounts, []string{"--proxytunnel", "--proxy-user", "alice:wonderland"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := harness.StartHTTPTarget(t, down)
			_, port, _ := net.SplitHostPort(tg.Addr())
			dest := net.JoinHostPort("target.test", port)
			d := &harness.RecordingDialer{Hosts: map[string]string{dest: tg.Addr()}}
			addr := proxytest.Serve(t, NewServer(ServerOptions{Accounts: tc.accounts, Logger: discardLogger()}), d)
			harness.CurlUpload(t, "http://"+addr, "http://"+dest+"/upload", up, down, tc.args...)
			if h := <-tg.Got(); h != sha256.Sum256(up) {
				t.Fatal("origin received a different body")
			}
			if head := <-tg.Heads(); head.RequestURI != "/upload" {
				t.Fatalf("origin saw request target %q", head.RequestURI)
			}
			<-tg.Extra()
			if got := d.Dials(); !slices.Equal(got, []string{dest}) {
				t.Fatalf("dialed %q, want [%q]", got, dest)
			}
		})
	}

	t.Run("407 without credentials", func(t *testing.T) {
		curl := harness.RequirePeer(t, "curl")
		addr := proxytest.Serve(t, NewServer(ServerOptions{Accounts: testAccounts, Logger: discardLogger()}), &harness.RecordingDialer{})
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "",
			"-x", "http://"+addr, "http://target.test/").CombinedOutput()
		if err != nil || string(out) != "407" {
			t.Fatalf("curl: %q, %v", out, err)
		}
	})
}
