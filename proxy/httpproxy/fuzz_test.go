package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"testing"

	"github.com/proxychain/proxychain/test/harness"
)

func FuzzHTTPHead(f *testing.F) {
	auth := "Proxy-Authorization: " + basic("alice", "wonderland") + "\r\n"
	// a plain CONNECT with tunnel bytes behind it
	f.Add(false, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01")
	// CONNECT to an IPv6 literal, with credentials
	f.Add(true, "CONNECT [::1]:443 HTTP/1.1\r\n"+auth+"\r\n")
	// forwarding with a Content-Length body and hop-by-hop fields
	f.Add(false, "POST http://example.com/a?b=c HTTP/1.1\r\nConnection: X-Hop\r\nX-Hop: 1\r\nProxy-Connection: keep-alive\r\nContent-Length: 5\r\n\r\nhello")
	// forwarding with a chunked body, extensions and a trailer
	f.Add(true, "PUT http://example.com:8080/ HTTP/1.1\r\n"+auth+"Transfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n")
	// both Content-Length and chunked: the chunked framing wins
	f.Add(false, "POST http://example.com/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	// HTTP/1.0 with OPTIONS on the server itself
	f.Add(false, "OPTIONS http://example.com HTTP/1.0\r\n\r\n")
	// a second request pipelined behind the first
	f.Add(false, "GET http://a.example/ HTTP/1.1\r\n\r\nGET http://b.example/ HTTP/1.1\r\n\r\n")
	// right credentials in odd case with non-canonical base64 padding bits, which decode
	// to alice:wonderland and so must pass (found by this fuzzer against a naive oracle)
	f.Add(true, "CONNECT [::]:1 HTTP/1.0\nProXY-AuthoriZAtion:BAsiC YWxpY2U6d29uZGVybGFuZB==\n\n")
	// wrong credentials
	f.Add(true, "CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n\r\n")
	// origin-form, bare LF line ends, obsolete line folding, a truncated head
	f.Add(false, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
	f.Add(false, "GET http://example.com/ HTTP/1.1\nHost: x\n\n")
	f.Add(false, "GET http://example.com/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n")
	f.Add(false, "CONNECT example.com:443 HTTP/1.1\r\nHost: exam")
	// an over-long head
	f.Add(false, "CONNECT example.com:443 HTTP/1.1\r\nX: "+strings.Repeat("a", DefaultMaxHeaderBytes)+"\r\n\r\n")
	// not HTTP
	f.Add(false, "\x05\x01\x00")

	open := NewServer(ServerOptions{Logger: discardLogger()})
	closed := NewServer(ServerOptions{Accounts: testAccounts, Logger: discardLogger()})
	f.Fuzz(func(t *testing.T, withAuth bool, in string) {
		srv := open
		if withAuth {
			srv = closed
		}
		c := harness.NewScriptConn([]byte(in))
		req, err := srv.Handshake(context.Background(), c)
		if c.Consumed() > DefaultMaxHeaderBytes {
			t.Fatalf("handshake read %d bytes, over the head limit", c.Consumed())
		}
		if err != nil {
			if req != nil {
				t.Fatal("request returned with an error")
			}
			if len(c.Written()) == 0 {
				return // the client went away before a whole request line
			}
			resp, rerr := http.ReadResponse(bufio.NewReader(bytes.NewReader(c.Written())), nil)
			if rerr != nil {
				t.Fatalf("refusal is not a valid response: %v: %q", rerr, c.Written())
			}
			if !slices.Contains([]int{400, 407, 431, 505}, resp.StatusCode) {
				t.Fatalf("refused with %s", resp.Status)
			}
			return
		}
		if withAuth && !hasAccount(in) {
			t.Fatalf("accepted without credentials: %q", in)
		}
		if err := checkAuthority(req.Destination); err != nil {
			t.Fatalf("destination %q: %v", req.Destination, err)
		}
		if _, isForward := req.Conn.(*forwardConn); !isForward {
			return
		}
		// What goes upstream must be a well-formed origin-form request without the
		// proxy's own fields.
		upstream, err := io.ReadAll(req.Conn)
		if err != nil {
			return // a malformed body ends the relay; nothing more is sent
		}
		fwd, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(upstream)))
		if err != nil {
			t.Fatalf("forwarded head does not parse: %v\n%q", err, upstream)
		}
		if fwd.URL.IsAbs() || fwd.Header.Get("Proxy-Authorization") != "" || !fwd.Close {
			t.Fatalf("forwarded head keeps proxy fields: %q", upstream)
		}
		if _, err := io.ReadAll(fwd.Body); err != nil {
			t.Fatalf("forwarded body does not parse: %v\n%q", err, upstream)
		}
	})
}

// hasAccount reports whether the head in holds Basic credentials of a test account,
// decoded here without the server's code.
func hasAccount(in string) bool {
	head, err := http.ReadRequest(bufio.NewReader(strings.NewReader(in)))
	if err != nil {
		return false
	}
	fields := strings.Fields(head.Header.Get("Proxy-Authorization"))
	if len(fields) != 2 || !strings.EqualFold(fields[0], "basic") {
		return false
	}
	cred, err := base64.StdEncoding.DecodeString(fields[1])
	if err != nil {
		return false
	}
	user, pass, _ := strings.Cut(string(cred), ":")
	want, ok := testAccounts[user]
	return ok && want == pass
}

// FuzzConnectAnswer feeds arbitrary proxy answers to the CONNECT client: no panic, no
// success without a 2xx status, and on success every byte after the head reaches the
// caller (what the returned conn yields is exactly a suffix of the input, and nothing is
// dropped between the head and it).
func FuzzConnectAnswer(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))                          // plain success
	f.Add([]byte("HTTP/1.1 200 OK\r\nVia: x\r\n\r\nserver speaks first"))                 // payload behind the head
	f.Add([]byte("HTTP/1.0 407 Proxy Authentication Required\r\n\r\n"))                   // refusal
	f.Add([]byte("HTTP/1.1 200\n\npayload"))                                              // bare LF and no reason
	f.Add([]byte("HTTP/2 200 OK\r\n\r\n"))                                                // wrong protocol
	f.Add(append([]byte("HTTP/1.1 200 OK\r\nX: "), bytes.Repeat([]byte("a"), 20<<10)...)) // endless head
	f.Fuzz(func(t *testing.T, answer []byte) {
		c := NewClient("fuzz", "127.0.0.1:8080", "", "", nil)
		conn, err := c.connect(harness.NewScriptConn(answer), "example.com:443")
		if err != nil {
			return
		}
		line, _, _ := strings.Cut(string(answer), "\n")
		if code, _, ok := parseStatusLine(strings.TrimSuffix(line, "\r")); !ok || code/100 != 2 {
			t.Fatalf("connect succeeded on status line %q", line)
		}
		rest, err := io.ReadAll(conn)
		if err != nil {
			t.Fatalf("reading past the head: %v", err)
		}
		head := len(answer) - len(rest)
		if !bytes.HasSuffix(answer, rest) || !bytes.HasSuffix(answer[:head], []byte("\n")) {
			t.Fatalf("after a %d-byte head the conn gave %q of %q", head, rest, answer)
		}
	})
}

// FuzzChunkedReader checks the resumable chunked decoder against itself cut by a timeout
// before every byte (same bytes, same outcome) and against net/http's decoder: whatever
// that one decodes completely, ours decodes to the same bytes.
func FuzzChunkedReader(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"))                                 // one chunk
	f.Add([]byte("3;ext=1\r\nabc\r\n2 ; x\r\nde\r\n0\r\nT: 1\r\n\r\n"))      // extensions and a trailer
	f.Add([]byte("A\nabcdefghij\n0\n\n"))                                    // bare LF line endings
	f.Add([]byte("5\r\nhel"))                                                // cut inside the data
	f.Add([]byte("5\r\nhelloXY0\r\n\r\n"))                                   // no line end after the data
	f.Add([]byte("g\r\n"))                                                   // not hex
	f.Add([]byte("ffffffffffffffffff\r\n"))                                  // size overflows
	f.Add(append(bytes.Repeat([]byte("0"), 5000), "1\r\nx\r\n0\r\n\r\n"...)) // line too long
	f.Fuzz(func(t *testing.T, in []byte) {
		decode := func(r io.Reader) ([]byte, error) {
			return io.ReadAll(&chunkedReader{br: bufio.NewReader(r)})
		}
		want, werr := decode(bytes.NewReader(in))
		src := harness.NewTimeoutReader(bytes.NewReader(in), harness.Stutters[0])
		got, gerr := harness.ReadAllRetrying(&chunkedReader{br: bufio.NewReader(src)}, src, 1)
		if !bytes.Equal(got, want) || (gerr == nil) != (werr == nil) {
			t.Fatalf("with timeouts: %q, %v; without: %q, %v", got, gerr, want, werr)
		}
		ref, rerr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(in)))
		if rerr == nil && (werr != nil || !bytes.Equal(want, ref)) {
			t.Fatalf("net/http decodes %q, we %q, %v", ref, want, werr)
		}
	})
}
