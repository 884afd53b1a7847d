package sniff

import (
	"testing"
)

// checkPrefixes holds for any parser here: a prefix of an input that parses (or could)
// must parse the same or ask for more, and a found host is always clean.
func checkPrefixes(t *testing.T, parse func([]byte) (string, bool, bool), b []byte) {
	host, ok, more := parse(b)
	if ok {
		checkClean(t, host)
		if more {
			t.Fatalf("ok and needMore at once on %q", b)
		}
	}
	if !ok && !more {
		return
	}
	for _, k := range []int{0, 1, len(b) / 3, len(b) / 2, len(b) - 1} {
		if k < 0 || k > len(b) {
			continue
		}
		ph, pok, pmore := parse(b[:k])
		if !pok && !pmore {
			t.Fatalf("prefix %d of an acceptable input rejected: %q", k, b)
		}
		if pok && ph != host {
			t.Fatalf("prefix %d names %q, whole input %q", k, ph, host)
		}
	}
}

func FuzzTLS(f *testing.F) {
	hello := clientHello(f, "fuzz.example")
	f.Add(hello)                                              // a complete crypto/tls ClientHello
	f.Add(hello[:len(hello)/2])                               // the same, cut mid-message
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})                 // an empty ClientHello body
	f.Add([]byte{22, 3, 1, 0, 1, 1, 22, 3, 1, 0, 3, 0, 0, 0}) // a header split across records
	f.Add([]byte{22, 3, 3, 0xff, 0xff})                       // a record longer than TLS allows
	f.Add([]byte("GET / HTTP/1.1\r\n"))                       // not TLS at all
	f.Fuzz(func(t *testing.T, b []byte) {
		checkPrefixes(t, TLS, b)
	})
}

func FuzzHTTP(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: fuzz.example:80\r\n\r\n")) // plain request
	f.Add([]byte("GET / HTTP/1.1\nhost: [::1]\n\n"))                 // bare LF, IPv6 literal
	f.Add([]byte("POST / HTTP/1.0\r\nX: y\r\n\r\n"))                 // no Host
	f.Add([]byte("CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n"))           // CONNECT form
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a.example:1:2\r\n"))       // two ports
	f.Add([]byte("PUT"))                                             // a method prefix
	f.Add([]byte{22, 3, 1, 0, 1})                                    // TLS, not HTTP
	f.Fuzz(func(t *testing.T, b []byte) {
		checkPrefixes(t, HTTP, b)
	})
}

func FuzzDomain(f *testing.F) {
	f.Add(clientHello(f, "both.example"))                     // TLS
	f.Add([]byte("GET / HTTP/1.1\r\nHost: both.example\r\n")) // HTTP
	f.Add([]byte("SSH-2.0-x\r\n"))                            // neither
	f.Fuzz(func(t *testing.T, b []byte) {
		checkPrefixes(t, Domain, b)
	})
}
