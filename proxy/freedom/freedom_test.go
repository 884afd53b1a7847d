package freedom

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recordingDialer records addresses and fails each dial, so tests see what would be dialed.
type recordingDialer struct{ dialed []string }

var errRecorded = errors.New("recorded")

func (d *recordingDialer) DialContext(_ context.Context, _, address string) (net.Conn, error) {
	d.dialed = append(d.dialed, address)
	return nil, errRecorded
}

type fakeResolver map[string][]netip.Addr

func (r fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	addrs, ok := r[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range addrs {
		if network == "ip" || network == "ip4" && a.Is4() || network == "ip6" && a.Is6() {
			out = append(out, a)
		}
	}
	return out, nil
}

func TestDialTargets(t *testing.T) {
	resolver := fakeResolver{
		"dual.example": {netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")},
		"v6.example":   {netip.MustParseAddr("2001:db8::2")},
	}
	tests := []struct {
		name     string
		opts     Options
		address  string
		want     []string
		wantNoIP bool
	}{
		{"as is keeps domains", Options{}, "dual.example:443", []string{"dual.example:443"}, false},
		{"use ip tries every address", Options{DomainStrategy: UseIP}, "dual.example:443", []string{"192.0.2.1:443", "[2001:db8::1]:443"}, false},
		{"use ipv4", Options{DomainStrategy: UseIPv4}, "dual.example:443", []string{"192.0.2.1:443"}, false},
		{"use ipv6", Options{DomainStrategy: UseIPv6}, "dual.example:80", []string{"[2001:db8::1]:80"}, false},
		{"use ipv4 without v4", Options{DomainStrategy: UseIPv4}, "v6.example:80", nil, true},
		{"use ipv4 with v6 literal", Options{DomainStrategy: UseIPv4}, "[2001:db8::9]:80", nil, true},
		{"use ip with literal", Options{DomainStrategy: UseIP}, "203.0.113.5:22", []string{"203.0.113.5:22"}, false},
		{"redirect all", Options{Redirect: "127.0.0.1:3366"}, "dual.example:443", []string{"127.0.0.1:3366"}, false},
		{"redirect port only", Options{Redirect: ":8443"}, "dual.example:443", []string{"dual.example:8443"}, false},
		{"redirect host only", Options{Redirect: "10.0.0.1:0"}, "dual.example:443", []string{"10.0.0.1:443"}, false},
		{"redirect then resolve", Options{Redirect: "v6.example:", DomainStrategy: UseIP}, "x:1", []string{"[2001:db8::2]:1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &recordingDialer{}
			tt.opts.Dialer, tt.opts.Resolver = d, resolver
			f, err := New("direct", tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.DialContext(context.Background(), "tcp", tt.address)
			if tt.wantNoIP {
				if !errors.Is(err, ErrNoAddress) {
					t.Errorf("err = %v, want ErrNoAddress", err)
				}
			} else if !errors.Is(err, errRecorded) {
				t.Errorf("err = %v, want the dialer's error", err)
			}
			if !reflect.DeepEqual(d.dialed, tt.want) {
				t.Errorf("dialed %v, want %v", d.dialed, tt.want)
			}
		})
	}
}

// unansweredFirst is a dialer whose first address never answers: its dial lasts until
// its context ends. Any other address answers.
type unansweredFirst struct {
	first  string
	dialed []string
}

func (d *unansweredFirst) DialContext(ctx context.Context, _, address string) (net.Conn, error) {
	d.dialed = append(d.dialed, address)
	if address == d.first {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	c, peer := net.Pipe()
	peer.Close()
	return c, nil
}

// TestUnansweredAddressLeavesTimeForTheNext: under a Use* strategy, an address that
// never answers gets its share of the dial's time, and the next address the rest.
func TestUnansweredAddressLeavesTimeForTheNext(t *testing.T) {
	resolver := fakeResolver{"dual.example": {netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}}
	d := &unansweredFirst{first: "192.0.2.1:443"}
	f, err := New("direct", Options{DomainStrategy: UseIP, Dialer: d, Resolver: resolver})
	if err != nil {
		t.Fatal(err)
	}
	// Each address gets 2 s of it; this is a bound, not a measurement.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	c, err := f.DialContext(ctx, "tcp", "dual.example:443")
	if err != nil {
		t.Fatalf("dial: %v; want the second address's connection", err)
	}
	c.Close()
	if want := []string{"192.0.2.1:443", "[2001:db8::1]:443"}; !reflect.DeepEqual(d.dialed, want) {
		t.Errorf("dialed %v, want %v", d.dialed, want)
	}
}

// Each address's error names the host and the address.
func TestDialErrorsNameAddresses(t *testing.T) {
	resolver := fakeResolver{"dual.example": {netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}}
	f, err := New("direct", Options{DomainStrategy: UseIP, Dialer: &recordingDialer{}, Resolver: resolver})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.DialContext(context.Background(), "tcp", "dual.example:443")
	want := "freedom: dual.example at 192.0.2.1:443: recorded\nfreedom: dual.example at [2001:db8::1]:443: recorded"
	if err == nil || err.Error() != want || !errors.Is(err, errRecorded) {
		t.Errorf("err = %q, want %q, matching the dialer's error", err, want)
	}
}

func TestLookupError(t *testing.T) {
	f, err := New("direct", Options{DomainStrategy: UseIP, Resolver: fakeResolver{}, Dialer: &recordingDialer{}})
	if err != nil {
		t.Fatal(err)
	}
	var dnsErr *net.DNSError
	if _, err := f.DialContext(context.Background(), "tcp", "nx.example:80"); !errors.As(err, &dnsErr) {
		t.Errorf("err = %v, want a DNS error", err)
	}
}

func TestNewErrors(t *testing.T) {
	for _, opts := range []Options{
		{DomainStrategy: "UseDNS"},
		{Redirect: "nope"},
		{Redirect: "a:70000"},
	} {
		if _, err := New("x", opts); err == nil {
			t.Errorf("New(%+v) succeeded", opts)
		}
	}
}

func TestRejectsUDP(t *testing.T) {
	f, _ := New("direct", Options{})
	if _, err := f.DialContext(context.Background(), "udp", "127.0.0.1:53"); err == nil {
		t.Error("udp dial succeeded")
	}
}

func TestDialsLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	f, _ := New("direct", Options{})
	c, err := f.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil || string(buf) != "hi" {
		t.Errorf("read %q, %v", buf, err)
	}
	if f.Tag() != "direct" {
		t.Errorf("Tag = %q", f.Tag())
	}
}
