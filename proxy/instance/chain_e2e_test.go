package instance

import (
	"fmt"
	"net"
	"testing"

	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/socks"
)

const (
	idA = "b12614c5-5ca4-4eba-a215-c61d642116ce"
	idB = "b27c24ab-2b5a-433e-902c-33f1168a7902"
)

// hopServers runs the server end of every hop on loopback: two Shadowsocks and two
// VMess inbounds, all exiting through freedom. The "seed" inbounds speak what the spec's
// config asks for (aes-256-cfb, alterId 64); the others are AEAD.
func hopServers(t *testing.T) map[string]int {
	t.Helper()
	servers := build(t, fmt.Sprintf(`{
	  "inbounds": [
	    {"tag": "ss1", "protocol": "shadowsocks", "port": 1, "settings": {"method": "aes-256-gcm", "password": "one"}},
	    {"tag": "ss2", "protocol": "shadowsocks", "port": 2, "settings": {"method": "chacha20-ietf-poly1305", "password": "two"}},
	    {"tag": "vm1", "protocol": "vmess", "port": 3, "settings": {"clients": [{"id": %[1]q}]}},
	    {"tag": "vm2", "protocol": "vmess", "port": 4, "settings": {"clients": [{"id": %[2]q}]}},
	    {"tag": "seed-ss", "protocol": "shadowsocks", "port": 5, "settings": {"method": "aes-256-cfb", "password": "password"}},
	    {"tag": "seed-vm", "protocol": "vmess", "port": 6,
	     "settings": {"clients": [{"id": %[1]q, "alterId": 64}, {"id": %[2]q, "alterId": 64}], "disableInsecureEncryption": false}}
	  ],
	  "outbounds": [{"protocol": "freedom"}]
	}`, idA, idB))
	ports := map[string]int{}
	for _, tag := range []string{"ss1", "ss2", "vm1", "vm2", "seed-ss", "seed-vm"} {
		ports[tag] = servers.Addr(tag).(*net.TCPAddr).Port
	}
	return ports
}

// TestModes moves hashed payloads through each kind of chain: direct, one Shadowsocks
// hop, one VMess hop, Shadowsocks then VMess, and the spec's four hops, both by
// outbound and through a SOCKS inbound that routes to the four-hop chain by default.
func TestModes(t *testing.T) {
	echo := startEcho(t)
	p := hopServers(t)
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

	for _, mode := range []string{"direct", "AliHK", "vmess", "ss-vmess", "DOUS"} {
		t.Run(mode, func(t *testing.T) {
			for _, size := range []int{1, 100 << 10} {
				roundTrip(t, client.Outbound(mode), echo, size)
			}
		})
	}
	t.Run("socks inbound to 4 hops", func(t *testing.T) {
		socksClient := socks.NewClient("t", client.Addr("socks-in").String(), "", "", &net.Dialer{})
		roundTrip(t, socksClient, echo, 200<<10)
	})
}

// TestSeedChainWorks loads the spec's chain config verbatim, points its four servers at
// loopback hop servers speaking the same ciphers (aes-256-cfb, VMess alterId 64), and
// moves hashed bytes through DOUS: client -> AliHK -> AliSG -> DOSG -> DOUS -> echo.
func TestSeedChainWorks(t *testing.T) {
	echo := startEcho(t)
	p := hopServers(t)
	cfg, _, err := config.Load("../config/testdata/seed-chain.json")
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Outbounds {
		switch s := cfg.Outbounds[i].Settings.(type) {
		case *config.ShadowsocksOutboundSettings:
			s.Servers[0].Address, s.Servers[0].Port = "127.0.0.1", p["seed-ss"]
		case *config.VMessOutboundSettings:
			s.Vnext[0].Address, s.Vnext[0].Port = "127.0.0.1", p["seed-vm"]
		}
	}
	in, err := Build(cfg, Options{Logger: quietLogger(), Listen: loopbackListen})
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"AliHK", "AliSG", "DOSG", "DOUS"} {
		t.Run(tag, func(t *testing.T) { roundTrip(t, in.Outbound(tag), echo, 64<<10) })
	}
}
