package router

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/config"
)

type stub string

func (s stub) Tag() string { return string(s) }
func (s stub) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("dialed " + string(s))
}

func outbounds(tags ...string) []proxy.Outbound {
	var obs []proxy.Outbound
	for _, t := range tags {
		obs = append(obs, stub(t))
	}
	return obs
}

func TestPick(t *testing.T) {
	routing := &config.RoutingConfig{Rules: []config.RoutingRule{
		// Every connection routed is TCP: a UDP-only rule (a QUIC block) never matches.
		{Network: []string{"udp"}, Port: "443", OutboundTag: "udp"},
		{Network: []string{"tcp", "udp"}, Port: "8443", OutboundTag: "tcp"},
		{Type: "field", Domain: []string{"full:exact.example"}, OutboundTag: "full"},
		{Type: "field", Domain: []string{"domain:corp.example"}, OutboundTag: "suffix"},
		{Type: "field", Domain: []string{"regexp:^img[0-9]+\\.cdn\\."}, OutboundTag: "regexp"},
		{Type: "field", Domain: []string{"tracker", "keyword:ads"}, OutboundTag: "substring"},
		{Type: "field", IP: []string{"geoip:private"}, OutboundTag: "private"},
		{Type: "field", IP: []string{"203.0.113.0/24", "2001:db8::1"}, Port: "443,8000-8080", OutboundTag: "ipport"},
		{Type: "field", Port: "53", OutboundTag: "dns"},
		{Type: "field", InboundTag: []string{"capture"}, Domain: []string{"domain:internal"}, OutboundTag: "inbound"},
	}}
	r, err := New(routing, outbounds("default", "udp", "tcp", "full", "suffix", "regexp", "substring", "private", "ipport", "dns", "inbound"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		address, inbound, want string
	}{
		{"exact.example:80", "", "full"},
		{"EXACT.example.:80", "", "full"},
		{"a.exact.example:80", "", "default"},
		{"corp.example:80", "", "suffix"},
		{"deep.sub.corp.example:80", "", "suffix"},
		{"notcorp.example:80", "", "default"},
		{"img12.cdn.example:443", "", "regexp"},
		{"ximg12.cdn.example:443", "", "default"},
		{"bittracker.example:80", "", "substring"},
		{"ads.example:80", "", "substring"},
		{"10.1.2.3:80", "", "private"},
		{"127.0.0.1:80", "", "private"},
		{"[::1]:80", "", "private"},
		{"[fd00::5]:80", "", "private"},
		{"[::ffff:192.168.1.1]:80", "", "private"},
		{"8.8.8.8:80", "", "default"},
		{"203.0.113.9:443", "", "ipport"},
		{"203.0.113.9:8080", "", "ipport"},
		{"203.0.113.9:8081", "", "default"},
		{"[2001:db8::1]:8000", "", "ipport"},
		{"[2001:db8::2]:8000", "", "default"},
		// A domain is not resolved, so IP rules do not match it, whatever it resolves to.
		{"localhost:80", "", "default"},
		{"example.com:53", "", "dns"},
		// An IP literal never matches a domain rule, even by substring.
		{"10.0.0.1:53", "", "private"},
		{"api.internal:80", "capture", "inbound"},
		{"api.internal:80", "socks-in", "default"},
		{"api.internal:80", "", "default"},
		{"quic.example:443", "", "default"},
		{"quic.example:8443", "", "tcp"},
	}
	for _, tt := range tests {
		ctx := context.Background()
		if tt.inbound != "" {
			ctx = WithInbound(ctx, tt.inbound)
		}
		o, err := r.Pick(ctx, tt.address)
		if err != nil {
			t.Errorf("Pick(%q): %v", tt.address, err)
			continue
		}
		if o.Tag() != tt.want {
			t.Errorf("Pick(%q, inbound %q) = %s, want %s", tt.address, tt.inbound, o.Tag(), tt.want)
		}
	}
}

func TestDialContextUsesPick(t *testing.T) {
	r, err := New(&config.RoutingConfig{Rules: []config.RoutingRule{{Port: "22", OutboundTag: "ssh"}}}, outbounds("default", "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.DialContext(context.Background(), "tcp", "host:22"); err == nil || err.Error() != "dialed ssh" {
		t.Errorf("err = %v", err)
	}
	if _, err := r.DialContext(context.Background(), "tcp", "host:23"); err == nil || err.Error() != "dialed default" {
		t.Errorf("err = %v", err)
	}
	if _, err := r.DialContext(context.Background(), "tcp", "no-port"); err == nil {
		t.Error("bad address accepted")
	}
}

func TestNilRoutingUsesFirst(t *testing.T) {
	r, err := New(nil, outbounds("first", "second"))
	if err != nil {
		t.Fatal(err)
	}
	o, _ := r.Pick(context.Background(), "example.com:443")
	if o.Tag() != "first" {
		t.Errorf("picked %s", o.Tag())
	}
	if _, err := New(nil, nil); err == nil {
		t.Error("no outbounds accepted")
	}
}

func TestBuildErrors(t *testing.T) {
	routing := &config.RoutingConfig{Rules: []config.RoutingRule{
		{Domain: []string{"geosite:cn", "domain:", "regexp:("}, OutboundTag: "a"},
		{IP: []string{"geoip:cn", "geoip:private", "10.0.0.0/33", "nope"}, OutboundTag: "a"},
		{Port: "65536", OutboundTag: "a"},
		{Port: "2000-1000", OutboundTag: "missing"},
		{OutboundTag: "a"},
	}}
	_, err := New(routing, outbounds("a"))
	want := []string{
		`router: routing.rules[0].domain[0]: "geosite:cn": geosite lists are not supported; list the domains instead`,
		`router: routing.rules[0].domain[1]: empty domain pattern`,
		"router: routing.rules[0].domain[2]: error parsing regexp: missing closing ): `(`",
		`router: routing.rules[1].ip[0]: "geoip:cn": geoip lists are not supported (only geoip:private); list the CIDRs instead`,
		`router: routing.rules[1].ip[2]: want an IP address or CIDR, got "10.0.0.0/33"`,
		`router: routing.rules[1].ip[3]: want an IP address or CIDR, got "nope"`,
		`router: routing.rules[2].port: want ports like "53", "1000-2000" or "80,443", got "65536"`,
		`router: routing.rules[3].port: want ports like "53", "1000-2000" or "80,443", got "2000-1000"`,
		`router: routing.rules[3].outboundTag: no outbound tagged "missing"`,
		`router: routing.rules[4]: a rule needs at least one of domain, ip, port, network or inboundTag`,
	}
	if err == nil {
		t.Fatal("no error")
	}
	got := strings.Split(err.Error(), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
}
