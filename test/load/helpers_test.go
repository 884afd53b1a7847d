package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/instance"
	"github.com/proxychain/proxychain/test/harness"
)

func TestMain(m *testing.M) {
	// The scale run starts this binary again as its target, in its own process, so the
	// target's sockets count against that process's descriptor limit, not ours.
	if os.Getenv(roleEnv) == "target" {
		os.Exit(runTargetProcess())
	}
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

// figure logs a measured figure in a form docs/reliability.md quotes.
func figure(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Logf("figure: "+format, args...)
}

// startServer serves inbound on a loopback port with opts and returns its address.
func startServer(t testing.TB, inbound proxy.Inbound, dialer proxy.Dialer, opts proxy.ServerOptions) (string, *proxy.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	srv := &proxy.Server{Tag: "in", Inbound: inbound, Dialer: dialer, Options: opts}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String(), srv
}

// countingDialer dials TCP and counts its dials; with refuse it dials nothing.
type countingDialer struct {
	dials  atomic.Int64
	refuse bool
}

var errRefused = errors.New("load: test dialer refuses")

func (d *countingDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d.dials.Add(1)
	if d.refuse {
		return nil, errRefused
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, address)
}

// echoServer echoes every connection until the peer closes; it stops with the test.
func echoServer(t testing.TB) string {
	t.Helper()
	return harness.ServeTCP(t, func(c net.Conn) {
		io.Copy(c, c)
	})
}

// hop is one server of a chain: its inbound and the outbound a client reaches it with.
type hop struct {
	tag, protocol string
	inbound       map[string]any
	outbound      func(host string, port int) map[string]any
}

func ssHop(tag, method, password string) hop {
	return hop{tag, "shadowsocks",
		map[string]any{"method": method, "password": password},
		func(host string, port int) map[string]any {
			return map[string]any{"servers": []any{map[string]any{
				"address": host, "port": port, "method": method, "password": password}}}
		}}
}

func vmessHop(tag, id string, alterID int) hop {
	return hop{tag, "vmess",
		map[string]any{"clients": []any{map[string]any{"id": id, "alterId": alterID}},
			"disableInsecureEncryption": alterID == 0},
		func(host string, port int) map[string]any {
			return map[string]any{"vnext": []any{map[string]any{"address": host, "port": port,
				"users": []any{map[string]any{"id": id, "alterId": alterID}}}}}
		}}
}

// seedHops is the seed's 4-hop chain: PC -> AliHK -> AliSG -> DOSG -> DOUS, with its
// methods and credentials (aes-256-cfb, legacy VMess with alterId 64).
func seedHops() []hop {
	return []hop{
		ssHop("AliHK", "aes-256-cfb", "password"),
		ssHop("AliSG", "aes-256-cfb", "password"),
		vmessHop("DOSG", "b27c24ab-2b5a-433e-902c-33f1168a7902", 64),
		vmessHop("DOUS", "b12614c5-5ca4-4eba-a215-c61d642116ce", 64),
	}
}

// modernHops is the same shape with authenticated layers: Shadowsocks AEAD and SIP022,
// VMess AEAD headers.
func modernHops() []hop {
	return []hop{
		ssHop("AliHK", "aes-256-gcm", "password"),
		ssHop("AliSG", "2022-blake3-aes-256-gcm", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
		vmessHop("DOSG", "b27c24ab-2b5a-433e-902c-33f1168a7902", 0),
		vmessHop("DOUS", "b12614c5-5ca4-4eba-a215-c61d642116ce", 0),
	}
}

// hopConfig is a hop's server: its inbound on addr and a direct exit.
func hopConfig(h hop, host string, port int) map[string]any {
	return map[string]any{
		"log":       map[string]any{"loglevel": "error"},
		"inbounds":  []any{map[string]any{"tag": h.tag, "protocol": h.protocol, "listen": host, "port": port, "settings": h.inbound}},
		"outbounds": []any{map[string]any{"protocol": "freedom"}},
	}
}

// clientConfig is a client with a SOCKS inbound whose default outbound (the first) is the
// last hop, each hop dialed through the one before it, as in the seed's chain config.
func clientConfig(hops []hop, addrs []string, socksPort int) map[string]any {
	var outbounds []any
	for i := len(hops) - 1; i >= 0; i-- {
		host, portStr, _ := net.SplitHostPort(addrs[i])
		port, _ := strconv.Atoi(portStr)
		o := map[string]any{"tag": hops[i].tag, "protocol": hops[i].protocol, "settings": hops[i].outbound(host, port)}
		if i > 0 {
			o["proxySettings"] = map[string]any{"tag": hops[i-1].tag}
		}
		outbounds = append(outbounds, o)
	}
	return map[string]any{
		"log":       map[string]any{"loglevel": "error"},
		"inbounds":  []any{map[string]any{"tag": "socks-in", "protocol": "socks", "listen": "127.0.0.1", "port": socksPort}},
		"outbounds": outbounds,
	}
}

// startInstance builds and starts cfg in this process with opts; it shuts down when the
// test ends. Inbounds listen on loopback port 0 whatever the config says.
func startInstance(t testing.TB, cfg map[string]any, opts proxy.ServerOptions) *instance.Instance {
	t.Helper()
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, err := config.Parse(data)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, data)
	}
	in, err := instance.Build(parsed, instance.Options{
		Logger: quiet,
		Server: opts,
		Listen: func(ctx context.Context, network, _ string) (net.Listener, error) {
			var lc net.ListenConfig
			return lc.Listen(ctx, network, "127.0.0.1:0")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		in.Shutdown(ctx)
	})
	return in
}

// startChain starts hops and a client in this process and returns the client's SOCKS
// address.
func startChain(t testing.TB, hops []hop, opts proxy.ServerOptions) string {
	t.Helper()
	addrs := make([]string, len(hops))
	for i, h := range hops {
		addrs[i] = startInstance(t, hopConfig(h, "127.0.0.1", 1), opts).Addr(h.tag).String()
	}
	return startInstance(t, clientConfig(hops, addrs, 1), opts).Addr("socks-in").String()
}

// socksConnect opens a SOCKS5 CONNECT to target through proxyAddr.
func socksConnect(proxyAddr, target string) (*net.TCPConn, error) {
	c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	if err := socksHandshake(tc, target); err != nil {
		tc.Close()
		return nil, err
	}
	return tc, nil
}

func socksHandshake(c net.Conn, target string) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	host, portStr, err := net.SplitHostPort(target)
	if err != nil {
		return err
	}
	port, _ := strconv.Atoi(portStr)
	ip := net.ParseIP(host).To4()
	if ip == nil {
		return fmt.Errorf("load: socks target %q is not IPv4", target)
	}
	req := []byte{5, 1, 0, 5, 1, 0, 1}
	req = append(req, ip...)
	req = append(req, byte(port>>8), byte(port))
	if _, err := c.Write(req); err != nil {
		return err
	}
	var reply [2 + 10]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		return fmt.Errorf("load: socks reply: %w", err)
	}
	if reply[0] != 5 || reply[1] != 0 || reply[3] != 0 {
		return fmt.Errorf("load: socks: method %d, reply %d", reply[1], reply[3])
	}
	return nil
}
