package interop

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/vmess"
	"github.com/proxychain/proxychain/test/harness"
)

// The spec's VMess user.
const vmessID = "b12614c5-5ca4-4eba-a215-c61d642116ce"

var vmessSecurities = []string{"aes-128-gcm", "chacha20-poly1305", "none", "zero", "auto"}

// vmessHeaders are the two request headers: alterId 64 is the spec's (legacy, MD5) one,
// alterId 0 selects VMess AEAD.
var vmessHeaders = []struct {
	name    string
	alterID int
}{{"legacy", 64}, {"aead", 0}}

// Traffic per case: one large exchange, then many concurrent ones, which are large too
// for the spec's own configuration (alterId 64, default security).
const (
	vmessBig        = 16 << 20
	vmessConcurrent = 50
	vmessSmall      = 256 << 10
)

func vmessLoad(alterID int, security string) int64 {
	if alterID == 64 && security == "auto" {
		return vmessBig
	}
	return vmessSmall
}

// TestVMessClientToV2Ray: our VMess client against a v2ray 4.34 VMess inbound whose user
// has alterId 64, with our client speaking the legacy header (alterId 64) and the AEAD
// header (alterId 0), under every body security. The first 16 bytes of every connection
// are checked to be the header's auth, computed by the harness from the protocol.
func TestVMessClientToV2Ray(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	bin := harness.RequirePeer(t, "v2ray")
	port := harness.FreePort(t)
	harness.StartProcess(t, bin, "-config", harness.WriteConfig(t, map[string]any{
		"log": map[string]any{"loglevel": "warning"},
		"inbounds": []any{map[string]any{
			"listen": "127.0.0.1", "port": port, "protocol": "vmess",
			"settings": map[string]any{"clients": []any{map[string]any{"id": vmessID, "alterId": 64}}},
		}},
		"outbounds": []any{map[string]any{"protocol": "freedom"}},
	}))
	server := harness.LoopbackAddr(port)
	harness.WaitListening(t, server)
	tg := harness.StartTarget(t)
	id, err := vmess.ParseUUID(vmessID)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range vmessHeaders {
		for _, sec := range vmessSecurities {
			t.Run(h.name+"/"+sec, func(t *testing.T) {
				// v2ray 4.34 takes the AEAD header from a user with alterId 64 as well, so
				// the traffic alone would not show which header we spoke: the tap does.
				tap := &harness.HeadDialer{Dialer: &net.Dialer{}}
				c, err := vmess.NewClient("out", server, vmess.User{ID: id, AlterID: h.alterID}, sec, tap)
				if err != nil {
					t.Fatal(err)
				}
				dial := func() (net.Conn, error) { return c.DialContext(context.Background(), "tcp", tg.Addr()) }
				vmessTraffic(t, dial, vmessLoad(h.alterID, sec))
				heads := tap.Heads()
				if want := 1 + vmessConcurrent; len(heads) != want {
					t.Errorf("the client dialed the server %d times, want %d", len(heads), want)
				}
				if err := harness.CheckVMessHeads(heads, vmessID, h.alterID); err != nil {
					t.Errorf("the %s header was not on the wire: %v", h.name, err)
				}
			})
		}
	}
}

// TestV2RayClientToVMessServer: a v2ray 4.34 client (SOCKS inbound, VMess outbound)
// against our VMess server running behind proxy.Server, for both headers and every body
// security the v2ray client can be configured with.
func TestV2RayClientToVMessServer(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	bin := harness.RequirePeer(t, "v2ray")
	id, err := vmess.ParseUUID(vmessID)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := vmess.NewServer([]vmess.User{{ID: id, AlterID: 64, Email: "spec@example"}},
		vmess.ServerOptions{AllowLegacy: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	server := serveInbound(t, srv, 0)
	tg := harness.StartTarget(t)
	for _, h := range vmessHeaders {
		for _, sec := range vmessSecurities {
			t.Run(h.name+"/"+sec, func(t *testing.T) {
				socks := startV2RayVMessClient(t, bin, server, h.alterID, sec)
				vmessTraffic(t, func() (net.Conn, error) { return harness.DialSOCKS5(socks, tg.Addr()) }, vmessLoad(h.alterID, sec))
			})
		}
	}
	// Proof that alterId 64 really took the legacy path: a server that refuses legacy
	// headers (the default) serves the AEAD client and not the legacy one.
	t.Run("legacy refused by default", func(t *testing.T) {
		strict, err := vmess.NewServer([]vmess.User{{ID: id, AlterID: 64}}, vmess.ServerOptions{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		server := serveInbound(t, strict, 2*time.Second)
		aead := startV2RayVMessClient(t, bin, server, 0, "aes-128-gcm")
		conn, err := harness.DialSOCKS5(aead, tg.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if err := harness.Exchange(conn, 1<<16, 1<<16); err != nil {
			t.Fatalf("aead client: %v", err)
		}
		legacy := startV2RayVMessClient(t, bin, server, 64, "aes-128-gcm")
		conn, err = harness.DialSOCKS5(legacy, tg.Addr())
		if err == nil {
			err = harness.Exchange(conn, 1<<16, 1<<16)
		}
		if err == nil {
			t.Fatal("a legacy (alterId 64) client got through a server without AllowLegacy")
		}
	})
}

// startV2RayVMessClient runs v2ray with a SOCKS inbound and a VMess outbound to server,
// and returns the SOCKS address.
func startV2RayVMessClient(t *testing.T, bin, server string, alterID int, security string) string {
	t.Helper()
	host, portStr, _ := net.SplitHostPort(server)
	socksPort := harness.FreePort(t)
	harness.StartProcess(t, bin, "-config", harness.WriteConfig(t, map[string]any{
		"log": map[string]any{"loglevel": "warning"},
		"inbounds": []any{map[string]any{
			"listen": "127.0.0.1", "port": socksPort, "protocol": "socks",
			"settings": map[string]any{"auth": "noauth", "udp": false},
		}},
		"outbounds": []any{map[string]any{
			"protocol": "vmess",
			"settings": map[string]any{"vnext": []any{map[string]any{
				"address": host, "port": mustAtoi(t, portStr),
				"users": []any{map[string]any{"id": vmessID, "alterId": alterID, "security": security}},
			}}},
		}},
	}))
	socks := harness.LoopbackAddr(socksPort)
	harness.WaitListening(t, socks)
	return socks
}

// vmessTraffic runs one large exchange, then vmessConcurrent exchanges of each bytes
// each way at once, all checked by sha256 both ways.
func vmessTraffic(t *testing.T, dial func() (net.Conn, error), each int64) {
	t.Helper()
	conn, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.Exchange(conn, vmessBig, vmessBig); err != nil {
		t.Fatal(err)
	}
	if err := harness.ExchangeMany(vmessConcurrent, dial, each, each); err != nil {
		t.Fatal(err)
	}
}

// serveInbound runs in behind proxy.Server on loopback, dialing directly, until the test
// ends. A zero handshakeTimeout means proxy.Server's default.
func serveInbound(t *testing.T, in proxy.Inbound, handshakeTimeout time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ps := &proxy.Server{Tag: "in", Inbound: in, Dialer: &net.Dialer{},
		Options: proxy.ServerOptions{Logger: slog.New(slog.DiscardHandler), HandshakeTimeout: handshakeTimeout}}
	done := make(chan error, 1)
	go func() { done <- ps.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ps.Shutdown(ctx)
		if err := <-done; !errors.Is(err, proxy.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("bad port %q", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}
