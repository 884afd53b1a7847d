package socks

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"testing"

	"github.com/proxychain/proxychain/proxy/socksaddr"
	"github.com/proxychain/proxychain/test/harness"
)

func FuzzSOCKSHandshake(f *testing.F) {
	// SOCKS5 no-auth CONNECT to 127.0.0.1:80
	f.Add(false, []byte("\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50"))
	// SOCKS5 CONNECT to a domain, followed by payload that must stay unread
	f.Add(false, []byte("\x05\x01\x00\x05\x01\x00\x03\x0bexample.com\x01\xbbGET / HTTP/1.1\r\n"))
	// SOCKS5 CONNECT to [::1]:443
	f.Add(false, []byte("\x05\x01\x00\x05\x01\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\xbb"))
	// SOCKS5 with good RFC 1929 credentials
	f.Add(true, []byte("\x05\x02\x00\x02\x01\x05alice\x0awonderland\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50"))
	// SOCKS5 with a wrong password
	f.Add(true, []byte("\x05\x01\x02\x01\x05alice\x05wrong"))
	// SOCKS5 with the longest lengths everywhere, truncated
	f.Add(true, []byte("\x05\xff\x02\x01\xff"))
	// SOCKS5 UDP ASSOCIATE
	f.Add(false, []byte("\x05\x01\x00\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00"))
	// SOCKS5 unknown address type
	f.Add(false, []byte("\x05\x01\x00\x05\x01\x00\x07\x00"))
	// SOCKS4 CONNECT with a user id
	f.Add(false, []byte("\x04\x01\x00\x50\x7f\x00\x00\x01user\x00"))
	// SOCKS4a CONNECT to a domain
	f.Add(false, []byte("\x04\x01\x01\xbb\x00\x00\x00\x01\x00example.com\x00"))
	// SOCKS4a with an unterminated domain
	f.Add(false, []byte("\x04\x01\x01\xbb\x00\x00\x00\x01\x00example"))
	// not SOCKS at all
	f.Add(false, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add(false, []byte{})
	// a domain that joins into an unparseable host:port (found by this fuzzer)
	f.Add(false, []byte("\x05\x01\x00\x05\x010\x03\v00000000[0000"))

	open := NewServer(ServerOptions{Logger: discardLogger()})
	closed := NewServer(ServerOptions{Accounts: testAccounts, Logger: discardLogger()})
	f.Fuzz(func(t *testing.T, auth bool, in []byte) {
		srv := open
		if auth {
			srv = closed
		}
		c := harness.NewScriptConn(in)
		req, err := srv.Handshake(context.Background(), c)
		if c.Consumed() > MaxHandshakeLen {
			t.Fatalf("handshake read %d bytes, more than MaxHandshakeLen %d", c.Consumed(), MaxHandshakeLen)
		}
		if err != nil {
			if req != nil {
				t.Fatal("request returned with an error")
			}
			return
		}
		if auth && in[0] == version5 && !bytes.Contains(in[:c.Consumed()], []byte("wonderland")) && !bytes.Contains(in[:c.Consumed()], []byte("builder")) {
			t.Fatalf("authenticated without a password from %q", in[:c.Consumed()])
		}
		_, port, err := net.SplitHostPort(req.Destination)
		if err != nil {
			t.Fatalf("destination %q: %v", req.Destination, err)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			t.Fatalf("destination %q has a bad port", req.Destination)
		}
		before := len(c.Written())
		if err := req.Answer(errors.New("refused by test")); err != nil {
			t.Fatal(err)
		}
		if got := len(c.Written()) - before; got != 8 && got != 10 {
			t.Fatalf("failure reply is %d bytes", got)
		}
	})
}

// TestHandshakeAllocs bounds what the longest valid handshake costs.
func TestHandshakeAllocs(t *testing.T) {
	user, pass := string(bytes.Repeat([]byte("u"), 255)), string(bytes.Repeat([]byte("p"), 255))
	srv := NewServer(ServerOptions{Accounts: map[string]string{user: pass}, Logger: discardLogger()})
	in := []byte{5, 255}
	in = append(in, bytes.Repeat([]byte{2}, 255)...)
	in = append(in, 1, 255)
	in = append(in, user...)
	in = append(in, 255)
	in = append(in, pass...)
	in = append(in, 5, 1, 0, 3, 255)
	in = append(in, bytes.Repeat([]byte("d"), 255)...)
	in = append(in, 0, 80)
	if len(in) != MaxHandshakeLen {
		t.Fatalf("longest handshake is %d bytes, MaxHandshakeLen says %d", len(in), MaxHandshakeLen)
	}
	allocs := testing.AllocsPerRun(50, func() {
		c := harness.NewScriptConn(in)
		if _, err := srv.Handshake(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	})
	// Fixed buffers on the stack; what remains is the destination string, the request,
	// its Answer closure and the small reply writes.
	if allocs > 16 {
		t.Fatalf("longest handshake allocates %v times", allocs)
	}
}

// FuzzClientReply feeds arbitrary server answers to the client's handshake: no panic, and
// on success it has read exactly the method choice, the auth status when it asked for
// one, and the reply with its bound address, and nothing of the payload behind it.
func FuzzClientReply(f *testing.F) {
	// no auth, success, bound to 0.0.0.0:0, then payload
	f.Add(false, []byte("\x05\x00\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00payload"))
	// username/password accepted, success with a domain bound address
	f.Add(true, []byte("\x05\x02\x01\x00\x05\x00\x00\x03\x04host\x01\xbb"))
	// connection refused
	f.Add(false, []byte("\x05\x00\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00"))
	// no acceptable method
	f.Add(false, []byte("\x05\xff"))
	// bound address cut short
	f.Add(false, []byte("\x05\x00\x05\x00\x00\x04\x00"))
	f.Fuzz(func(t *testing.T, withAuth bool, answer []byte) {
		c := NewClient("fuzz", "127.0.0.1:1080", "", "", nil)
		if withAuth {
			c = NewClient("fuzz", "127.0.0.1:1080", "user", "pass", nil)
		}
		conn := harness.NewScriptConn(answer)
		request := []byte("\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50")
		if err := c.handshake(conn, request, "127.0.0.1:80"); err != nil {
			return
		}
		want := 2 + 3 // method choice, reply head
		if answer[1] == methodUserPass {
			want += 2
		}
		_, n, err := socksaddr.Parse(answer[want:])
		if err != nil {
			t.Fatalf("handshake accepted a reply whose bound address does not parse: %v", err)
		}
		if want += n; conn.Consumed() != want {
			t.Fatalf("handshake read %d bytes of %x, want %d", conn.Consumed(), answer, want)
		}
	})
}
