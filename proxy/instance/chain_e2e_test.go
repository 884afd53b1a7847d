package instance

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"testing"

	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/metrics"
	"github.com/proxychain/proxychain/proxy/socks"
)

const (
	idA = "b12614c5-5ca4-4eba-a215-c61d642116ce"
	idB = "b27c24ab-2b5a-433e-902c-33f1168a7902"
)

// hopServers runs the server end of every hop on loopback: two Shadowsocks and two
// VMess inbounds, all exiting through freedom, and one inbound per hop of the spec's
// chain ("seed-" and the outbound's tag) speaking what the spec's config asks for
// (aes-256-cfb, alterId 64); the others are AEAD. It returns each inbound's port and the
// metrics counting the connections each accepts.
func hopServers(t *testing.T) (map[string]int, *metrics.Proxy) {
	t.Helper()
	m := metrics.NewProxy("test")
	servers := buildOpts(t, fmt.Sprintf(`{
	  "inbounds": [
	    {"tag": "ss1", "protocol": "shadowsocks", "port": 1, "settings": {"method": "aes-256-gcm", "password": "one"}},
	    {"tag": "ss2", "protocol": "shadowsocks", "port": 2, "settings": {"method": "chacha20-ietf-poly1305", "password": "two"}},
	    {"tag": "vm1", "protocol": "vmess", "port": 3, "settings": {"clients": [{"id": %[1]q}]}},
	    {"tag": "vm2", "protocol": "vmess", "port": 4, "settings": {"clients": [{"id": %[2]q}]}},
	    {"tag": "seed-AliHK", "protocol": "shadowsocks", "port": 5, "settings": {"method": "aes-256-cfb", "password": "password"}},
	    {"tag": "seed-AliSG", "protocol": "shadowsocks", "port": 6, "settings": {"method": "aes-256-cfb", "password": "password"}},
	    {"tag": "seed-DOSG", "protocol": "vmess", "port": 7,
	     "settings": {"clients": [{"id": %[1]q, "alterId": 64}, {"id": %[2]q, "alterId": 64}], "disableInsecureEncryption": false}},
	    {"tag": "seed-DOUS", "protocol": "vmess", "port": 8,
	     "settings": {"clients": [{"id": %[1]q, "alterId": 64}, {"id": %[2]q, "alterId": 64}], "disableInsecureEncryption": false}}
	  ],
	  "outbounds": [{"protocol": "freedom"}]
	}`, idA, idB), Options{Metrics: m})
	ports := map[string]int{}
	for _, tag := range hopTags {
		ports[tag] = servers.Addr(tag).(*net.TCPAddr).Port
	}
	return ports, m
}

// hopTags are hopServers' inbounds.
var hopTags = []string{"ss1", "ss2", "vm1", "vm2", "seed-AliHK", "seed-AliSG", "seed-DOSG", "seed-DOUS"}

// accepted returns how many connections each of the tagged inbounds m counts has
// accepted so far.
func accepted(m *metrics.Proxy, tags ...string) map[string]uint64 {
	n := make(map[string]uint64, len(tags))
	for _, tag := range tags {
		n[tag] = m.Inbound(tag).Value()
	}
	return n
}

// checkAccepted asserts that since before (taken by accepted) each of its inbounds
// accepted want[tag] more connections, and those want leaves out none. The echo coming
// back intact cannot show this: a chain that skipped a hop gets it back too.
func checkAccepted(t *testing.T, m *metrics.Proxy, before, want map[string]uint64) {
	t.Helper()
	for _, tag := range slices.Sorted(maps.Keys(before)) {
		if got := m.Inbound(tag).Value() - before[tag]; got != want[tag] {
			t.Errorf("hop server %s accepted %d connections, want %d", tag, got, want[tag])
		}
	}
}

// TestModes moves hashed payloads through each kind of chain: direct, one Shadowsocks
// hop, one VMess hop, Shadowsocks then VMess, and the spec's four hops, both by
// outbound and through a SOCKS inbound that routes to the four-hop chain by default.
// Each hop server on the way must accept every connection, and no other hop server any.
func TestModes(t *testing.T) {
	echo := startEcho(t)
	p, m := hopServers(t)
	client := build(t, fmt.Sprintf(`{
	  "inbounds": [{"tag": "socks-in", "protocol": "socks", "port": 1080}],
	  "outbounds": [
	    {"tag": "DOUS", "protocol": "vmess", "proxySettings": {"tag": "DOSG"},
	     "settings": {"vnext": [{"address": "127.0.0.1", "port": %[4]d, "users": [{"id": %[6]q}]}]}},
	    {"tag": "AliHK", "protocol": "shadowsocks",
	     "settings": {"servers": [{"address": "127.0.0.1", "port": %[1]d, "method": "aes-256-gcm", "password": "one"}]}},
	    {"tag": "AliSG", "protocol": "shadowsocks", "proxySettings": {"tag": "AliHK"},
	     "settings": {"servers": [{"address": "127.0.0.1", "port": %[2]d, "method": "chacha20-ietf-poly1305", "password": "two"}]}},
	    {"tag": "DOSG", "protocol": "vmess", "proxySettings": {"tag": "AliSG"},
	     "settings": {"vnext": [{"address": "127.0.0.1", "port": %[3]d, "users": [{"id": %[5]q, "security": "chacha20-poly1305"}]}]}},
	    {"tag": "vmess", "protocol": "vmess",
	     "settings": {"vnext": [{"address": "127.0.0.1", "port": %[3]d, "users": [{"id": %[5]q}]}]}},
	    {"tag": "ss-vmess", "protocol": "vmess", "proxySettings": {"tag": "AliHK"},
	     "settings": {"vnext": [{"address": "127.0.0.1", "port": %[4]d, "users": [{"id": %[6]q, "security": "aes-128-gcm"}]}]}},
	    {"tag": "direct", "protocol": "freedom"}
	  ]
	}`, p["ss1"], p["ss2"], p["vm1"], p["vm2"], idA, idB))

	for _, mode := range []struct {
		tag  string
		hops []string // the hop servers its connections go through
	}{
		{"direct", nil},
		{"AliHK", []string{"ss1"}},
		{"vmess", []string{"vm1"}},
		{"ss-vmess", []string{"ss1", "vm2"}},
		{"DOUS", []string{"ss1", "ss2", "vm1", "vm2"}},
	} {
		t.Run(mode.tag, func(t *testing.T) {
			before, want := accepted(m, hopTags...), map[string]uint64{}
			for _, size := range []int{1, 100 << 10} {
				roundTrip(t, client.Outbound(mode.tag), echo, size)
				for _, h := range mode.hops {
					want[h]++
				}
			}
			checkAccepted(t, m, before, want)
		})
	}
	t.Run("socks inbound to 4 hops", func(t *testing.T) {
		before := accepted(m, hopTags...)
		socksClient := socks.NewClient("t", client.Addr("socks-in").String(), "", "", &net.Dialer{})
		roundTrip(t, socksClient, echo, 200<<10)
		checkAccepted(t, m, before, map[string]uint64{"ss1": 1, "ss2": 1, "vm1": 1, "vm2": 1})
	})
}

// TestSeedChainWorks loads the spec's chain config verbatim, points each of its four
// servers at a loopback hop server of its own speaking the same cipher (aes-256-cfb,
// VMess alterId 64), and moves hashed bytes through each outbound, the last through all
// four: client -> AliHK -> AliSG -> DOSG -> DOUS -> echo. Each must go through every hop
// server up to its own, in order.
func TestSeedChainWorks(t *testing.T) {
	echo := startEcho(t)
	p, m := hopServers(t)
	cfg, _, err := config.Load("../config/testdata/seed-chain.json")
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Outbounds {
		o := &cfg.Outbounds[i]
		port, ok := p["seed-"+o.Tag]
		if !ok {
			t.Fatalf("no hop server for outbound %q", o.Tag)
		}
		switch s := o.Settings.(type) {
		case *config.ShadowsocksOutboundSettings:
			s.Servers[0].Address, s.Servers[0].Port = "127.0.0.1", port
		case *config.VMessOutboundSettings:
			s.Vnext[0].Address, s.Vnext[0].Port = "127.0.0.1", port
		}
	}
	in, err := Build(cfg, Options{Logger: quietLogger(), Listen: loopbackListen})
	if err != nil {
		t.Fatal(err)
	}
	chain := []string{"AliHK", "AliSG", "DOSG", "DOUS"}
	for i, tag := range chain {
		t.Run(tag, func(t *testing.T) {
			before, want := accepted(m, hopTags...), map[string]uint64{}
			for _, hop := range chain[:i+1] {
				want["seed-"+hop] = 1
			}
			roundTrip(t, in.Outbound(tag), echo, 64<<10)
			checkAccepted(t, m, before, want)
		})
	}
}
