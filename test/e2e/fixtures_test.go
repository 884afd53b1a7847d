package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/proxychain/proxychain/proxy/config"
)

// The loopback fixtures must be the seed's client configs with only the servers'
// addresses and ports changed, so that running them is running the spec as written.
func TestFixturesChangeOnlyAddressesAndPorts(t *testing.T) {
	for _, c := range []struct{ seed, loopback string }{
		{"seed-basic.json", "seed-basic.loopback.json"},
		{"seed-chain.json", "seed-chain.loopback.json"},
	} {
		t.Run(c.loopback, func(t *testing.T) {
			seed := readLines(t, filepath.Join("..", "..", "proxy", "config", "testdata", c.seed))
			ours := readLines(t, filepath.Join("testdata", c.loopback))
			if len(seed) != len(ours) {
				t.Fatalf("%d lines, the seed has %d", len(ours), len(seed))
			}
			changed := 0
			for i := range seed {
				if seed[i] == ours[i] {
					continue
				}
				changed++
				if err := checkChangedLine(seed[i], ours[i]); err != "" {
					t.Errorf("line %d: %s\n  seed: %s\n  ours: %s", i+1, err, seed[i], ours[i])
				}
			}
			if changed == 0 {
				t.Error("the fixture is the seed itself: no server moved to loopback")
			}
		})
	}
}

var addressOrPort = regexp.MustCompile(`^(\s*)"(address|port)": ("[^"]*"|[0-9]+)(,?)$`)

// checkChangedLine says what is wrong with a changed line, or "" if it only moves an
// address to loopback or changes a port, keeping indentation and punctuation.
func checkChangedLine(seed, ours string) string {
	s, o := addressOrPort.FindStringSubmatch(seed), addressOrPort.FindStringSubmatch(ours)
	switch {
	case s == nil || o == nil:
		return "only address and port lines may change"
	case s[1] != o[1] || s[2] != o[2] || s[4] != o[4]:
		return "the key, indentation and comma must stay as they are"
	case o[2] == "address":
		ip, err := netip.ParseAddr(strings.Trim(o[3], `"`))
		if err != nil || !ip.IsLoopback() {
			return "the address must be a loopback IP"
		}
	}
	return ""
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\n")
}

// Every server the client fixtures name is a hop whose server config listens there
// with the same credentials, so the two sides of testdata cannot drift apart.
func TestFixturesMatchHopServers(t *testing.T) {
	servers := map[string]hopServer{}
	for _, name := range chainSeed.hops {
		h := loadHop(t, name, seedWire)
		servers[h.addr()] = h
	}
	for _, ch := range []chainSpec{chainBasic, chainSeed} {
		cfg, _, err := config.Load(filepath.Join("testdata", ch.fixture))
		if err != nil {
			t.Fatalf("%s: %v", ch.fixture, err)
		}
		if len(cfg.Outbounds) != len(ch.hops) {
			t.Fatalf("%s has %d outbounds, want one per hop %v", ch.fixture, len(cfg.Outbounds), ch.hops)
		}
		for _, o := range cfg.Outbounds {
			switch s := o.Settings.(type) {
			case *config.ShadowsocksOutboundSettings:
				srv := s.Servers[0]
				h, ok := servers[hostPort(srv.Address, srv.Port)]
				switch {
				case !ok || h.protocol != "shadowsocks":
					t.Errorf("%s: outbound %q: no Shadowsocks hop at %s:%d", ch.fixture, o.Tag, srv.Address, srv.Port)
				case h.ss.Method != srv.Method || h.ss.Password != srv.Password:
					t.Errorf("%s: outbound %q: method or password differs from hop %s", ch.fixture, o.Tag, h.tag)
				}
			case *config.VMessOutboundSettings:
				srv := s.Vnext[0]
				h, ok := servers[hostPort(srv.Address, srv.Port)]
				switch {
				case !ok || h.protocol != "vmess":
					t.Errorf("%s: outbound %q: no VMess hop at %s:%d", ch.fixture, o.Tag, srv.Address, srv.Port)
				case h.vmess.Clients[0].ID != srv.Users[0].ID || h.vmess.Clients[0].AlterID != srv.Users[0].AlterID:
					t.Errorf("%s: outbound %q: user differs from hop %s", ch.fixture, o.Tag, h.tag)
				}
			default:
				t.Errorf("%s: outbound %q: unexpected protocol %q", ch.fixture, o.Tag, o.Protocol)
			}
		}
	}
}

// The diff check must be able to fail.
func TestCheckChangedLine(t *testing.T) {
	cases := []struct {
		seed, ours string
		ok         bool
	}{
		{`"address": "1.1.1.1",`, `"address": "127.0.0.14",`, true},
		{`            "port": 1024`, `            "port": 21024`, true},
		{`"address": "1.1.1.1",`, `"address": "10.0.0.1",`, false},             // not loopback
		{`"address": "1.1.1.1",`, `"address": "localhost",`, false},            // not an IP
		{`"port": 8888,`, `"port": 28888`, false},                              // lost its comma
		{`"port": 8888,`, `  "port": 28888,`, false},                           // re-indented
		{`"password": "password",`, `"password": "other",`, false},             // not an address or port
		{`"alterId": 64,`, `"alterId": 0,`, false},                             // not an address or port
		{`"address": "1.1.1.1",`, `"port": 1,`, false},                         // a different key
		{`"address": "1.1.1.1", // x`, `"address": "127.0.0.1", // x`, false},  // a comment moved along
		{`"method": "aes-256-cfb",`, `"method": "aes-128-gcm",`, false},        // the cipher
		{`"tag": "transit" // The tag`, `"tag": "transit2" // The tag`, false}, // a tag
		{`"address": "2.2.2.2",`, `"address": "127.0.0.11",`, true},            // AliHK
		{`"address": "4.4.4.4",`, `"address": "::1",`, true},                   // IPv6 loopback
	}
	for _, c := range cases {
		if got := checkChangedLine(c.seed, c.ours) == ""; got != c.ok {
			t.Errorf("checkChangedLine(%q, %q) accepts = %v, want %v", c.seed, c.ours, got, c.ok)
		}
	}
}
