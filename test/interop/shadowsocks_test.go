package interop

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"testing"

	"go.uber.org/goleak"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/shadowsocks"
	"github.com/proxychain/proxychain/test/harness"
)

// Methods each peer speaks. v2ray 4.34 has no stream ciphers and no SIP022; Xray has no
// stream ciphers; shadowsocks-libev has no SIP022.
var (
	ssLibevMethods = []string{
		"aes-128-cfb", "aes-192-cfb", "aes-256-cfb", "aes-128-ctr", "aes-192-ctr", "aes-256-ctr",
		"chacha20-ietf", "aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "chacha20-ietf-poly1305",
	}
	v2rayMethods = []string{"aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"}
	xrayMethods  = []string{
		"aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305", "none",
		"2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305",
	}
)

// Traffic per method and direction: one large exchange, then many concurrent ones.
const (
	ssBig        = 16 << 20
	ssConcurrent = 50
	ssSmall      = 128 << 10
)

// ssPassword is a password for stream and AEAD methods and a base64 key of the right
// size for SIP022 ones.
func ssPassword(method string) string {
	switch method {
	case "2022-blake3-aes-128-gcm":
		return base64.StdEncoding.EncodeToString([]byte("proxychain-16-by"))
	case "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305":
		return base64.StdEncoding.EncodeToString([]byte("proxychain-interop-32-byte-key!!"))
	}
	return "proxychain interop password"
}

func ssCipher(t *testing.T, method string) *shadowsocks.Cipher {
	t.Helper()
	c, err := shadowsocks.NewCipher(method, ssPassword(method))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ssTraffic runs one ssBig exchange, then ssConcurrent exchanges of ssSmall each way at
// once, all checked by sha256 both ways. It returns how many connections it made and the
// payload it moved each way (the same both ways).
func ssTraffic(t *testing.T, dial func() (net.Conn, error)) (conns int, payload int64) {
	t.Helper()
	big, small := int64(ssBig), int64(ssSmall)
	if testing.Short() {
		big, small = 1<<20, 16<<10
	}
	conn, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.Exchange(conn, big, big); err != nil {
		t.Fatal(err)
	}
	if err := harness.ExchangeMany(ssConcurrent, dial, small, small); err != nil {
		t.Fatal(err)
	}
	return 1 + ssConcurrent, big + ssConcurrent*small
}

// ourDial returns a dialer that reaches target through our Shadowsocks client.
func ourDial(t *testing.T, server, method, target string, parent proxy.Dialer) func() (net.Conn, error) {
	cl := shadowsocks.NewClient("ss", server, ssCipher(t, method), parent)
	return func() (net.Conn, error) { return cl.DialContext(context.Background(), "tcp", target) }
}

func startSSServer(t *testing.T, method string) string {
	t.Helper()
	bin := harness.RequirePeer(t, "ss-server")
	port := harness.FreePort(t)
	harness.StartProcess(t, bin, "-s", "127.0.0.1", "-p", strconv.Itoa(port), "-k", ssPassword(method), "-m", method)
	addr := harness.LoopbackAddr(port)
	harness.WaitListening(t, addr)
	return addr
}

// TestShadowsocksClientToSSServer: our client against shadowsocks-libev's ss-server.
func TestShadowsocksClientToSSServer(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	harness.RequirePeer(t, "ss-server")
	tg := harness.StartTarget(t)
	for _, m := range ssLibevMethods {
		t.Run(m, func(t *testing.T) {
			ssTraffic(t, ourDial(t, startSSServer(t, m), m, tg.Addr(), nil))
		})
	}
}

// TestSSLocalToShadowsocksServer: shadowsocks-libev's ss-local against our server.
func TestSSLocalToShadowsocksServer(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	bin := harness.RequirePeer(t, "ss-local")
	tg := harness.StartTarget(t)
	for _, m := range ssLibevMethods {
		t.Run(m, func(t *testing.T) {
			server := serveInbound(t, shadowsocks.NewServer(ssCipher(t, m), shadowsocks.ServerOptions{}), 0)
			_, port, _ := net.SplitHostPort(server)
			socks := harness.FreePort(t)
			harness.StartProcess(t, bin, "-s", "127.0.0.1", "-p", port, "-b", "127.0.0.1",
				"-l", strconv.Itoa(socks), "-k", ssPassword(m), "-m", m)
			socksAddr := harness.LoopbackAddr(socks)
			harness.WaitListening(t, socksAddr)
			ssTraffic(t, func() (net.Conn, error) { return harness.DialSOCKS5(socksAddr, tg.Addr()) })
		})
	}
}

// v2rayStyleShadowsocksInbound is a V2Ray/Xray config with a Shadowsocks inbound and a
// direct outbound.
func v2rayStyleShadowsocksInbound(port int, method string) map[string]any {
	return map[string]any{
		"log": map[string]any{"loglevel": "warning"},
		"inbounds": []any{map[string]any{
			"listen": "127.0.0.1", "port": port, "protocol": "shadowsocks",
			"settings": map[string]any{"method": method, "password": ssPassword(method), "network": "tcp"},
		}},
		"outbounds": []any{map[string]any{"protocol": "freedom"}},
	}
}

// v2rayStyleShadowsocksOutbound is a V2Ray/Xray config with a SOCKS5 inbound and a
// Shadowsocks outbound to server.
func v2rayStyleShadowsocksOutbound(socksPort int, server, method string) map[string]any {
	host, port, _ := net.SplitHostPort(server)
	p, _ := strconv.Atoi(port)
	return map[string]any{
		"log": map[string]any{"loglevel": "warning"},
		"inbounds": []any{map[string]any{
			"listen": "127.0.0.1", "port": socksPort, "protocol": "socks",
			"settings": map[string]any{"auth": "noauth", "udp": false},
		}},
		"outbounds": []any{map[string]any{
			"protocol": "shadowsocks",
			"settings": map[string]any{"servers": []any{map[string]any{
				"address": host, "port": p, "method": method, "password": ssPassword(method),
			}}},
		}},
	}
}

// startV2RayStyle starts v2ray ("-config") or xray ("run -c") with cfg.
func startV2RayStyle(t *testing.T, peer string, cfg map[string]any) {
	t.Helper()
	bin := harness.RequirePeer(t, peer)
	if peer == "xray" {
		harness.StartProcess(t, bin, "run", "-c", harness.WriteConfig(t, cfg))
		return
	}
	harness.StartProcess(t, bin, "-config", harness.WriteConfig(t, cfg))
}

// TestShadowsocksWithV2RayAndXray: our client against their Shadowsocks inbound, and
// their Shadowsocks outbound against our server, for every method each one speaks.
func TestShadowsocksWithV2RayAndXray(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	tg := harness.StartTarget(t)
	for _, peer := range []struct {
		name    string
		methods []string
	}{{"v2ray", v2rayMethods}, {"xray", xrayMethods}} {
		t.Run(peer.name, func(t *testing.T) {
			harness.RequirePeer(t, peer.name)
			for _, m := range peer.methods {
				t.Run("our-client/"+m, func(t *testing.T) {
					port := harness.FreePort(t)
					startV2RayStyle(t, peer.name, v2rayStyleShadowsocksInbound(port, m))
					server := harness.LoopbackAddr(port)
					harness.WaitListening(t, server)
					ssTraffic(t, ourDial(t, server, m, tg.Addr(), nil))
				})
				t.Run("our-server/"+m, func(t *testing.T) {
					server := serveInbound(t, shadowsocks.NewServer(ssCipher(t, m), shadowsocks.ServerOptions{}), 0)
					socks := harness.FreePort(t)
					startV2RayStyle(t, peer.name, v2rayStyleShadowsocksOutbound(socks, server, m))
					socksAddr := harness.LoopbackAddr(socks)
					harness.WaitListening(t, socksAddr)
					ssTraffic(t, func() (net.Conn, error) { return harness.DialSOCKS5(socksAddr, tg.Addr()) })
				})
			}
		})
	}
}

// TestShadowsocksChainMixed chains Shadowsocks hops of different implementations: our
// client dials each hop through the previous one, so each server, ours or theirs, sees
// only the next hop's ciphertext. Each server sits behind a counting relay, which must
// have carried every connection the test made and at least its payload each way: a
// client that skipped a hop would leave that hop's relay short.
//
//	our client -> ss-server (aes-256-cfb) -> our server (2022-blake3-aes-128-gcm) -> target
//	our client -> v2ray (aes-128-gcm) -> ss-server (chacha20-ietf-poly1305) -> our server (aes-256-cfb) -> target
//	our client -> our server (chacha20-ietf-poly1305) -> xray (2022-blake3-aes-256-gcm) -> ss-server (aes-128-ctr) -> target
func TestShadowsocksChainMixed(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	tg := harness.StartTarget(t)
	type hop struct{ impl, method string }
	chains := [][]hop{
		{{"ss-server", "aes-256-cfb"}, {"ours", "2022-blake3-aes-128-gcm"}},
		{{"v2ray", "aes-128-gcm"}, {"ss-server", "chacha20-ietf-poly1305"}, {"ours", "aes-256-cfb"}},
		{{"ours", "chacha20-ietf-poly1305"}, {"xray", "2022-blake3-aes-256-gcm"}, {"ss-server", "aes-128-ctr"}},
	}
	for _, chain := range chains {
		t.Run(fmt.Sprint(chain), func(t *testing.T) {
			before := len(tg.Remotes())
			var parent proxy.Dialer = &net.Dialer{}
			relays := make([]*harness.Relay, len(chain))
			for i, h := range chain {
				var server string
				switch h.impl {
				case "ours":
					server = serveInbound(t, shadowsocks.NewServer(ssCipher(t, h.method), shadowsocks.ServerOptions{}), 0)
				case "ss-server":
					server = startSSServer(t, h.method)
				default:
					port := harness.FreePort(t)
					startV2RayStyle(t, h.impl, v2rayStyleShadowsocksInbound(port, h.method))
					server = harness.LoopbackAddr(port)
					harness.WaitListening(t, server)
				}
				relays[i] = harness.StartRelay(t, server)
				parent = shadowsocks.NewClient(fmt.Sprintf("hop%d", i), relays[i].Addr(), ssCipher(t, h.method), parent)
			}
			last := parent
			conns, payload := ssTraffic(t, func() (net.Conn, error) { return last.DialContext(context.Background(), "tcp", tg.Addr()) })
			for i, r := range relays {
				up, down := r.Bytes()
				if r.Conns() != conns || up < payload || down < payload {
					t.Errorf("hop %d (%s %s) carried %d connections, %d bytes up and %d down; want %d connections and at least %d bytes each way",
						i, chain[i].impl, chain[i].method, r.Conns(), up, down, conns, payload)
				}
			}
			if got := len(tg.Remotes()) - before; got != conns {
				t.Errorf("the target saw %d connections, want %d", got, conns)
			}
		})
	}
}
