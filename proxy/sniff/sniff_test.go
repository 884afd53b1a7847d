package sniff

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
)

// clientHello returns the first flight a crypto/tls client sends for serverName: one or
// more handshake records carrying its ClientHello.
func clientHello(t testing.TB, serverName string) []byte {
	t.Helper()
	c1, c2 := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := tls.Client(c1, &tls.Config{ServerName: serverName, InsecureSkipVerify: true})
		client.Handshake() // fails once c2 closes; only its first flight matters
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
		if _, _, more := TLS(flight); !more {
			break
		}
	}
	c2.Close()
	<-done
	return flight
}

// refragment re-splits the handshake bytes of a single-record flight into records of at
// most size bytes, as a client with a large hello (or a hostile one) may send them.
func refragment(t *testing.T, flight []byte, size int) []byte {
	t.Helper()
	n := int(binary.BigEndian.Uint16(flight[3:5]))
	if len(flight) != recordHeaderLen+n {
		t.Fatalf("flight is not one record: %d bytes, record says %d", len(flight), n)
	}
	payload := flight[recordHeaderLen:]
	var out []byte
	for len(payload) > 0 {
		k := min(size, len(payload))
		out = append(out, recordTypeHandshake, 3, 1, byte(k>>8), byte(k))
		out = append(out, payload[:k]...)
		payload = payload[k:]
	}
	return out
}

func TestTLS(t *testing.T) {
	hello := clientHello(t, "www.Example.com")
	if len(hello) < 100 || hello[0] != recordTypeHandshake {
		t.Fatalf("unexpected first flight: % x", hello[:min(len(hello), 16)])
	}
	noSNI := clientHello(t, "192.0.2.1") // crypto/tls sends no server_name for an IP

	tests := []struct {
		name     string
		in       []byte
		host     string
		ok, more bool
	}{
		{"crypto/tls hello", hello, "www.example.com", true, false},
		{"trailing application data", append(append([]byte{}, hello...), 23, 3, 3, 0, 1, 0), "www.example.com", true, false},
		{"fragmented into 64-byte records", refragment(t, hello, 64), "www.example.com", true, false},
		{"fragmented into 1-byte records", refragment(t, hello, 1), "www.example.com", true, false},
		{"no server_name", noSNI, "", false, false},
		{"empty", nil, "", false, true},
		{"one byte", []byte{22}, "", false, true},
		{"record header only", hello[:5], "", false, true},
		{"alert record", []byte{21, 3, 3, 0, 2, 2, 40}, "", false, false},
		{"SSL 2 version", []byte{22, 2, 0, 0, 1}, "", false, false},
		{"zero-length record", []byte{22, 3, 1, 0, 0}, "", false, false},
		{"oversized record", []byte{22, 3, 1, 0x40, 0x01}, "", false, false},
		{"ServerHello", []byte{22, 3, 3, 0, 4, 2, 0, 0, 0}, "", false, false},
		{"HTTP", []byte("GET / HTTP/1.1\r\n"), "", false, false},
		{"next record not handshake", append(refragment(t, hello, 64)[:69], 23, 3, 3, 0, 1, 0), "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, ok, more := TLS(tt.in)
			if host != tt.host || ok != tt.ok || more != tt.more {
				t.Fatalf("TLS = %q, %v, %v; want %q, %v, %v", host, ok, more, tt.host, tt.ok, tt.more)
			}
		})
	}
}

// TestTLSPrefixes feeds every prefix of a hello, as a server reading it byte by byte
// would: each must ask for more, and only the whole must answer.
func TestTLSPrefixes(t *testing.T) {
	for _, flight := range [][]byte{clientHello(t, "a.example"), refragment(t, clientHello(t, "b.example"), 100)} {
		for i := range len(flight) {
			if host, ok, more := TLS(flight[:i]); ok || !more {
				t.Fatalf("prefix %d/%d: TLS = %q, %v, %v; want needMore", i, len(flight), host, ok, more)
			}
		}
	}
}

// TestTLSCorrupt flips every byte of a hello in turn: the parser must neither panic
// nor return a host that is not a clean name.
func TestTLSCorrupt(t *testing.T) {
	hello := clientHello(t, "corrupt.example")
	b := make([]byte, len(hello))
	for i := range hello {
		for _, v := range []byte{0x00, 0xff, hello[i] ^ 0x01} {
			copy(b, hello)
			b[i] = v
			if host, ok, _ := TLS(b); ok {
				checkClean(t, host)
			}
		}
	}
}

// TestServerNameLengths builds ClientHello bodies by hand to reach the length checks a
// crypto/tls client never trips.
func TestServerNameLengths(t *testing.T) {
	ext := func(list []byte) []byte {
		e := binary.BigEndian.AppendUint16(nil, extServerName)
		e = binary.BigEndian.AppendUint16(e, uint16(len(list)+2))
		e = binary.BigEndian.AppendUint16(e, uint16(len(list)))
		return append(e, list...)
	}
	entry := func(typ byte, name string) []byte {
		e := []byte{typ}
		e = binary.BigEndian.AppendUint16(e, uint16(len(name)))
		return append(e, name...)
	}
	// build wraps a ClientHello body whose extensions block is exts with a length
	// prefix of extsLen; extsLen < 0 leaves the block out entirely.
	build := func(exts []byte, extsLen int) []byte {
		body := make([]byte, 2+32)
		body = append(body, 0)                // session id
		body = append(body, 0, 2, 0x13, 0x01) // cipher suites
		body = append(body, 1, 0)             // compression
		if extsLen >= 0 {
			body = binary.BigEndian.AppendUint16(body, uint16(extsLen))
			body = append(body, exts...)
		}
		msg := []byte{typeClientHello, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}
		msg = append(msg, body...)
		rec := []byte{recordTypeHandshake, 3, 1, byte(len(msg) >> 8), byte(len(msg))}
		return append(rec, msg...)
	}
	named := func(name string) []byte { e := ext(entry(nameTypeHostName, name)); return build(e, len(e)) }
	good := ext(entry(nameTypeHostName, "hand.example"))
	otherFirst := ext(append(entry(1, "not-a-host"), entry(nameTypeHostName, "second.example")...))
	tests := []struct {
		name string
		in   []byte
		host string
		ok   bool
	}{
		{"hand-built", build(good, len(good)), "hand.example", true},
		{"unknown name type first", build(otherFirst, len(otherFirst)), "second.example", true},
		{"extensions length too long", build(good, len(good)+1), "", false},
		{"extensions length too short", build(good, len(good)-1), "", false},
		{"name with colon", named("evil.example:22"), "", false},
		{"name with NUL", named("a\x00b"), "", false},
		{"empty name", named(""), "", false},
		{"trailing dot", named("dot.example."), "dot.example", true},
		{"upper case", named("UP.Example"), "up.example", true},
		{"no extensions", build(nil, -1), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, ok, more := TLS(tt.in)
			if host != tt.host || ok != tt.ok || more {
				t.Fatalf("TLS = %q, %v, %v; want %q, %v, false", host, ok, more, tt.host, tt.ok)
			}
		})
	}
}

func TestHTTP(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		host     string
		ok, more bool
	}{
		{"host with port", "GET / HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n", "example.com", true, false},
		{"host after other headers", "POST /x HTTP/1.0\r\nUser-Agent: t\r\nhost:a.example\r\n\r\n", "a.example", true, false},
		{"answers before the header block ends", "GET / HTTP/1.1\r\nHost: early.example\r\n", "early.example", true, false},
		{"bare LF", "GET / HTTP/1.1\nHost: lf.example\n\n", "lf.example", true, false},
		{"IPv6 literal", "GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n", "2001:db8::1", true, false},
		{"IPv4 literal", "GET / HTTP/1.1\r\nHost: 192.0.2.7\r\n\r\n", "192.0.2.7", true, false},
		{"absolute form", "GET http://x.example/ HTTP/1.1\r\nHost: x.example\r\n\r\n", "x.example", true, false},
		{"no host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", "", false, false},
		{"empty", "", "", false, true},
		{"method prefix", "OPTI", "", false, true},
		{"request line incomplete", "GET /index.html HTT", "", false, true},
		{"host line incomplete", "GET / HTTP/1.1\r\nHost: half.exa", "", false, true},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "", false, false},
		{"SSH banner", "SSH-2.0-OpenSSH_9.6\r\n", "", false, false},
		{"lower-case method", "get / HTTP/1.1\r\nHost: a\r\n", "", false, false},
		{"HTTP/2 version", "GET / HTTP/2\r\nHost: a\r\n", "", false, false},
		{"header without colon", "GET / HTTP/1.1\r\nBroken\r\nHost: a\r\n", "", false, false},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a.example\r\n", "", false, false},
		{"host smuggling a port", "GET / HTTP/1.1\r\nHost: evil.example:22:80\r\n", "", false, false},
		{"host with userinfo", "GET / HTTP/1.1\r\nHost: user@evil.example\r\n", "", false, false},
		{"host with space", "GET / HTTP/1.1\r\nHost: a b\r\n", "", false, false},
		{"non-numeric port", "GET / HTTP/1.1\r\nHost: a.example:http\r\n", "", false, false},
		{"IPv6 zone", "GET / HTTP/1.1\r\nHost: [fe80::1%eth0]\r\n", "", false, false},
		{"unclosed bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n", "", false, false},
		{"empty host", "GET / HTTP/1.1\r\nHost: \r\n", "", false, false},
		{"label too long", "GET / HTTP/1.1\r\nHost: " + strings.Repeat("a", 64) + ".example\r\n", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, ok, more := HTTP([]byte(tt.in))
			if host != tt.host || ok != tt.ok || more != tt.more {
				t.Fatalf("HTTP(%q) = %q, %v, %v; want %q, %v, %v", tt.in, host, ok, more, tt.host, tt.ok, tt.more)
			}
		})
	}
}

func TestDomain(t *testing.T) {
	hello := clientHello(t, "tls.example")
	tests := []struct {
		name     string
		in       []byte
		host     string
		ok, more bool
	}{
		{"tls", hello, "tls.example", true, false},
		{"tls prefix", hello[:10], "", false, true},
		{"http", []byte("HEAD / HTTP/1.1\r\nHost: http.example\r\n"), "http.example", true, false},
		{"http prefix", []byte("HEAD / H"), "", false, true},
		{"empty wants more of either", nil, "", false, true},
		{"neither", []byte("SSH-2.0-x\r\n"), "", false, false},
		{"tls without sni is final", clientHello(t, "198.51.100.1"), "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, ok, more := Domain(tt.in)
			if host != tt.host || ok != tt.ok || more != tt.more {
				t.Fatalf("Domain = %q, %v, %v; want %q, %v, %v", host, ok, more, tt.host, tt.ok, tt.more)
			}
		})
	}
}

// TestHTTPReader reads a request as a server would, through a reader that hands over
// one byte at a time, and asks after each byte.
func TestHTTPReader(t *testing.T) {
	req := "GET / HTTP/1.1\r\nAccept: */*\r\nHost: slow.example\r\n\r\n"
	r := strings.NewReader(req)
	var got []byte
	one := make([]byte, 1)
	for {
		if _, err := io.ReadFull(r, one); err != nil {
			t.Fatalf("ran out of input after %q", got)
		}
		got = append(got, one[0])
		host, ok, more := HTTP(got)
		if ok {
			if host != "slow.example" || len(got) != strings.Index(req, "\r\n\r\n")+2 {
				t.Fatalf("HTTP = %q after %d bytes", host, len(got))
			}
			return
		}
		if !more {
			t.Fatalf("gave up after %q", got)
		}
	}
}

func checkClean(t testing.TB, host string) {
	t.Helper()
	if clean, ok := cleanHost(host); !ok || clean != host {
		t.Fatalf("returned host %q is not clean (%q, %v)", host, clean, ok)
	}
	if h, _, err := net.SplitHostPort(net.JoinHostPort(host, "443")); err != nil || h != host {
		t.Fatalf("host %q does not survive JoinHostPort: %q, %v", host, h, err)
	}
}
