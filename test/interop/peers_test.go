package interop

import (
	"net"
	"strconv"
	"testing"

	"go.uber.org/goleak"

	"github.com/proxychain/proxychain/test/harness"
)

// TestPeersRun proves the real peers start and carry traffic with the configurations the
// protocol suites build on, and so validates the harness against them: each peer serves
// SOCKS5 on loopback, and a MiB goes each way through it to a Target, checked by sha256.
func TestPeersRun(t *testing.T) {
	// Registered first, so it runs after every other cleanup (targets, processes) is done.
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })

	const up, down = 1 << 20, 1 << 20
	t.Run("shadowsocks-libev", func(t *testing.T) {
		server, local := harness.RequirePeer(t, "ss-server"), harness.RequirePeer(t, "ss-local")
		serverPort, socksPort := harness.FreePort(t), harness.FreePort(t)
		// aes-256-cfb with password "password": the Shadowsocks hops of the spec's configs.
		harness.StartProcess(t, server, "-s", "127.0.0.1", "-p", strconv.Itoa(serverPort),
			"-k", "password", "-m", "aes-256-cfb")
		harness.StartProcess(t, local, "-s", "127.0.0.1", "-p", strconv.Itoa(serverPort),
			"-b", "127.0.0.1", "-l", strconv.Itoa(socksPort), "-k", "password", "-m", "aes-256-cfb")
		harness.WaitListening(t, harness.LoopbackAddr(serverPort))
		exchangeViaSOCKS(t, harness.LoopbackAddr(socksPort), up, down)
	})
	t.Run("v2ray", func(t *testing.T) {
		bin := harness.RequirePeer(t, "v2ray")
		socksPort := harness.FreePort(t)
		// v2ray 4.x takes its config as -config; 5.x would want "run -c".
		harness.StartProcess(t, bin, "-config", harness.WriteConfig(t, socksToFreedom(socksPort)))
		exchangeViaSOCKS(t, harness.LoopbackAddr(socksPort), up, down)
	})
	t.Run("xray", func(t *testing.T) {
		bin := harness.RequirePeer(t, "xray")
		socksPort := harness.FreePort(t)
		harness.StartProcess(t, bin, "run", "-c", harness.WriteConfig(t, socksToFreedom(socksPort)))
		exchangeViaSOCKS(t, harness.LoopbackAddr(socksPort), up, down)
	})
}

// socksToFreedom is the smallest V2Ray/Xray config that proxies: a SOCKS5 inbound on
// loopback and a direct (freedom) outbound.
func socksToFreedom(socksPort int) map[string]any {
	return map[string]any{
		"log": map[string]any{"loglevel": "warning"},
		"inbounds": []any{map[string]any{
			"listen":   "127.0.0.1",
			"port":     socksPort,
			"protocol": "socks",
			"settings": map[string]any{"auth": "noauth", "udp": false},
		}},
		"outbounds": []any{map[string]any{"protocol": "freedom"}},
	}
}

// exchangeViaSOCKS waits for the SOCKS5 proxy at socksAddr, runs one Exchange through it
// to a fresh Target and then a few concurrent smaller ones, and checks the target saw the connection come from loopback (the
// peer), not from somewhere else.
func exchangeViaSOCKS(t *testing.T, socksAddr string, up, down int64) {
	t.Helper()
	harness.WaitListening(t, socksAddr)
	tg := harness.StartTarget(t)
	conn, err := harness.DialSOCKS5(socksAddr, tg.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.Exchange(conn, up, down); err != nil {
		t.Fatal(err)
	}
	// A few at once, so the peer interleaves connections.
	const concurrent = 4
	dial := func() (net.Conn, error) { return harness.DialSOCKS5(socksAddr, tg.Addr()) }
	if err := harness.ExchangeMany(concurrent, dial, up/4, down/4); err != nil {
		t.Fatal(err)
	}
	remotes := tg.Remotes()
	if len(remotes) != 1+concurrent {
		t.Fatalf("target saw %d connections, want %d", len(remotes), 1+concurrent)
	}
	for _, r := range remotes {
		if ip := r.(*net.TCPAddr).IP; !ip.IsLoopback() {
			t.Fatalf("target saw a connection from %v, want loopback", r)
		}
	}
}
