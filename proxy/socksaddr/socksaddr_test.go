package socksaddr

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestRoundTrip(t *testing.T) {
	for _, addr := range []string{
		"127.0.0.1:80",
		"[::1]:443",
		"[2001:db8::1]:65535",
		"example.com:8080",
		"a.b-c_d.example:1",
	} {
		b, err := Append(nil, addr)
		if err != nil {
			t.Fatalf("Append(%q): %v", addr, err)
		}
		got, n, err := Parse(b)
		if err != nil || got != addr || n != len(b) {
			t.Errorf("Parse(Append(%q)) = %q, %d, %v; want %q, %d", addr, got, n, err, addr, len(b))
		}
		got, err = Read(iotest.OneByteReader(bytes.NewReader(append(b, "payload"...))))
		if err != nil || got != addr {
			t.Errorf("Read(%q) one byte at a time = %q, %v", addr, got, err)
		}
	}
}

func TestWireForm(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want []byte
	}{
		{"1.2.3.4:258", []byte{TypeIPv4, 1, 2, 3, 4, 1, 2}},
		{"x.io:80", []byte{TypeDomain, 4, 'x', '.', 'i', 'o', 0, 80}},
		{"[::ffff:1.2.3.4]:80", []byte{TypeIPv4, 1, 2, 3, 4, 0, 80}}, // mapped addresses travel as IPv4
	} {
		got, err := Append(nil, tc.addr)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("Append(%q) = %x, %v; want %x", tc.addr, got, err, tc.want)
		}
	}
}

func TestRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"cut IPv4", []byte{TypeIPv4, 1, 2, 3}, ErrShort},
		{"cut port", []byte{TypeDomain, 1, 'a', 0}, ErrShort},
		{"unknown type", []byte{2, 0, 0}, ErrAddressType},
		{"empty domain", []byte{TypeDomain, 0, 0, 80}, ErrDomain},
		{"domain with colon", []byte{TypeDomain, 3, 'a', ':', 'b', 0, 80}, ErrDomain},
		{"domain with bracket", []byte{TypeDomain, 2, 'a', ']', 0, 80}, ErrDomain},
		{"domain with NUL", []byte{TypeDomain, 2, 'a', 0, 0, 80}, ErrDomain},
	} {
		if _, _, err := Parse(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: Parse(%x) error %v, want %v", tc.name, tc.b, err, tc.want)
		}
	}
	if _, err := Read(bytes.NewReader([]byte{TypeIPv4, 1, 2})); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Read of a cut address: %v, want io.ErrUnexpectedEOF", err)
	}
	for _, addr := range []string{"no-port", "a:b:c", "x.io:70000", "[a b]:1"} {
		if _, err := Append(nil, addr); err == nil {
			t.Errorf("Append(%q) succeeded", addr)
		}
	}
}

func TestCheckDomainAcceptsIPLiterals(t *testing.T) {
	for _, name := range []string{"::1", "fe80::1", "10.0.0.1", "example.com"} {
		if err := CheckDomain(name); err != nil {
			t.Errorf("CheckDomain(%q) = %v", name, err)
		}
	}
}

// FuzzParse checks that whatever Parse accepts encodes back to the same bytes, so every
// hop reads the same destination.
func FuzzParse(f *testing.F) {
	f.Add([]byte{TypeIPv4, 127, 0, 0, 1, 0, 80})                                                 // IPv4
	f.Add([]byte{TypeDomain, 11, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm', 1, 187}) // domain
	f.Add(append([]byte{TypeIPv6}, make([]byte, 18)...))                                         // IPv6 ::
	f.Add([]byte{TypeDomain, 255})                                                               // length past the end
	f.Add([]byte{TypeDomain, 3, '[', ':', ']', 0, 1})                                            // separators in a domain
	f.Fuzz(func(t *testing.T, b []byte) {
		addr, n, err := Parse(b)
		if err != nil {
			return
		}
		again, err := Append(nil, addr)
		if err != nil {
			t.Fatalf("Parse(%x) = %q, which Append refuses: %v", b, addr, err)
		}
		if back, _, err := Parse(again); err != nil || back != addr {
			t.Fatalf("%q re-encoded as %x reads back as %q, %v", addr, again, back, err)
		}
		if n > len(b) || n > MaxLen {
			t.Fatalf("Parse consumed %d of %d bytes", n, len(b))
		}
	})
}
