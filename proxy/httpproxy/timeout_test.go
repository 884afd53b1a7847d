package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/internal/bufpool"
	"github.com/proxychain/proxychain/test/harness"
)

// chunk encodes body in chunks of size n, with an extension, and ends it with a trailer.
func chunk(body []byte, n int) []byte {
	var b bytes.Buffer
	for rest := body; len(rest) > 0; {
		m := min(len(rest), n)
		b.WriteString(strconv.FormatInt(int64(m), 16) + ";ext=1\r\n")
		b.Write(rest[:m])
		b.WriteString("\r\n")
		rest = rest[m:]
	}
	b.WriteString("0\r\nX-Trailer: t\r\n\r\n")
	return b.Bytes()
}

// TestForwardResumesAfterTimeouts: with read timeouts at any byte of the request body,
// from the first one after the head, the forwarded request (read by retrying, as the
// relay does) is the head and body the origin would get without them, in both framings.
// Part of the body arrives with the head, as a client's first segment often carries
// both.
func TestForwardResumesAfterTimeouts(t *testing.T) {
	body := harness.RandomBytes(40 << 10)
	head := "POST http://example.com/upload HTTP/1.1\r\nX-Keep: 1\r\n"
	requests := map[string][]byte{
		"content-length": []byte(head + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)),
		"chunked":        []byte(head + "Transfer-Encoding: chunked\r\n\r\n" + string(chunk(body, 5000))),
		"chunked-small":  []byte(head + "Transfer-Encoding: chunked\r\n\r\n" + string(chunk(body, 7))),
	}
	srv := NewServer(ServerOptions{Logger: discardLogger()})
	for framing, wire := range requests {
		wire = append(wire, "GET http://dropped.example/ HTTP/1.1\r\n\r\n"...)
		split := len(head) + 200 // the head and a little body come in the first read
		for _, s := range harness.Stutters {
			src := harness.NewTimeoutReader(bytes.NewReader(wire[split:]), s)
			req, err := srv.Handshake(context.Background(), &harness.StutterConn{Prefix: wire[:split], In: src})
			if err != nil {
				t.Fatalf("%s/%s: handshake: %v", framing, s.Name, err)
			}
			up, err := harness.ReadAllRetrying(req.Conn, src, 7)
			if err != nil {
				t.Errorf("%s/%s: after %d bytes: %v", framing, s.Name, len(up), err)
				continue
			}
			fwd, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(up)))
			if err != nil {
				t.Errorf("%s/%s: forwarded head: %v", framing, s.Name, err)
				continue
			}
			got, err := io.ReadAll(fwd.Body)
			if err != nil || !bytes.Equal(got, body) || fwd.Header.Get("X-Keep") != "1" {
				t.Errorf("%s/%s: forwarded body %d bytes, %v; want %d", framing, s.Name, len(got), err, len(body))
			}
			if src.Timeouts() == 0 {
				t.Errorf("%s/%s: no timeouts met", framing, s.Name)
			}
		}
	}
}

// TestReplayResumesAfterTimeouts: bytes that came with a CONNECT head (server side) or a
// CONNECT answer (client side) are replayed, and the rest read through timeouts, intact.
func TestReplayResumesAfterTimeouts(t *testing.T) {
	payload := harness.RandomBytes(30 << 10)
	srv := NewServer(ServerOptions{Logger: discardLogger()})
	cl := NewClient("t", "127.0.0.1:8080", "", "", nil)
	for _, side := range []string{"server", "client"} {
		head := "CONNECT example.com:443 HTTP/1.1\r\n\r\n"
		if side == "client" {
			head = "HTTP/1.1 200 Connection established\r\n\r\n"
		}
		wire := append([]byte(head), payload...)
		split := len(head) + 300
		for _, s := range harness.Stutters {
			src := harness.NewTimeoutReader(bytes.NewReader(wire[split:]), s)
			raw := &harness.StutterConn{Prefix: wire[:split], In: src}
			var conn interface{ Read([]byte) (int, error) }
			if side == "server" {
				req, err := srv.Handshake(context.Background(), raw)
				if err != nil {
					t.Fatal(err)
				}
				conn = req.Conn
			} else {
				c, err := cl.connect(raw, "example.com:443")
				if err != nil {
					t.Fatal(err)
				}
				conn = c
			}
			got, err := harness.ReadAllRetrying(conn, src, 7)
			if err != nil || !bytes.Equal(got, payload) {
				t.Errorf("%s/%s: read %d bytes, %v; want %d", side, s.Name, len(got), err, len(payload))
			}
		}
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err = ln.Accept()
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	return a, b
}

// readUntil reads from c until what it read ends with suffix.
func readUntil(c net.Conn, suffix string) (string, error) {
	c.SetReadDeadline(time.Now().Add(testTimeout))
	defer c.SetReadDeadline(time.Time{})
	var got []byte
	b := make([]byte, 512)
	for !bytes.HasSuffix(got, []byte(suffix)) {
		n, err := c.Read(b)
		got = append(got, b[:n]...)
		if err != nil {
			return string(got), err
		}
	}
	return string(got), nil
}

// TestIdleRelayHoldsNoBuffer: a relay reading a client through the wrappers (a CONNECT
// tunnel with pipelined bytes, a forwarded request paused in its body) waits for the
// client without a pooled buffer once a byte each way has passed.
func TestIdleRelayHoldsNoBuffer(t *testing.T) {
	requests := map[string]struct{ send, upstreamEnd string }{
		"connect": {"CONNECT example.com:443 HTTP/1.1\r\n\r\npipelined", "pipelined"},
		"forward": {"POST http://example.com/up HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345", "\r\n\r\n12345"},
	}
	srv := NewServer(ServerOptions{Logger: discardLogger()})
	for name, r := range requests {
		const n = 10
		before := bufpool.Outstanding()
		var ends []net.Conn
		var done []chan error
		for range n {
			app, client := tcpPair(t)
			upstream, target := tcpPair(t)
			ends = append(ends, app, target)
			if _, err := io.WriteString(app, r.send); err != nil {
				t.Fatal(err)
			}
			req, err := srv.Handshake(context.Background(), client)
			if err != nil {
				t.Fatal(err)
			}
			ch := make(chan error, 1)
			done = append(done, ch)
			go func() {
				_, err := proxy.Relay(req.Conn, upstream, proxy.Timeouts{})
				ch <- err
			}()
			if got, err := readUntil(target, r.upstreamEnd); err != nil {
				t.Fatalf("%s: upstream got %q, %v", name, got, err)
			}
			target.Write([]byte{1})
			if _, err := io.ReadFull(app, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
		}
		held := bufpool.HeldSince(before)
		for _, c := range ends {
			c.Close()
		}
		for _, ch := range done {
			<-ch
		}
		if held != 0 {
			t.Errorf("%s: %d idle relays hold %d pooled buffers, want 0", name, n, held)
		}
	}
}
