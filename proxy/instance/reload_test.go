package instance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/metrics"
	"github.com/proxychain/proxychain/proxy/socks"
	"github.com/proxychain/proxychain/test/harness"
	"github.com/proxychain/proxychain/test/harness/proxytest"
)

// hops runs two SOCKS hop servers with metrics, so a test can tell which hop a
// connection went through.
func hops(t *testing.T) (m *metrics.Proxy, port1, port2 int) {
	t.Helper()
	m = metrics.NewProxy("test")
	servers := buildOpts(t, `{
	  "inbounds": [{"tag": "hop1", "protocol": "socks", "port": 1}, {"tag": "hop2", "protocol": "socks", "port": 2}],
	  "outbounds": [{"protocol": "freedom"}]
	}`, Options{Metrics: m})
	return m, servers.Addr("hop1").(*net.TCPAddr).Port, servers.Addr("hop2").(*net.TCPAddr).Port
}

func buildOpts(t *testing.T, cfgJSON string, opts Options) *Instance {
	t.Helper()
	in, err := Build(parse(t, cfgJSON), withTestDefaults(opts))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := in.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return in
}

func withTestDefaults(opts Options) Options {
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	if opts.Listen == nil {
		opts.Listen = loopbackListen
	}
	return opts
}

func parse(t *testing.T, cfgJSON string) *config.Config {
	t.Helper()
	cfg, _, err := config.Parse([]byte(cfgJSON))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// clientVia is a client config: a SOCKS inbound on listenPort whose only outbound is a
// SOCKS hop on loopback hopPort.
func clientVia(listenPort, hopPort int) string {
	return fmt.Sprintf(`{
	  "inbounds": [{"tag": "in", "protocol": "socks", "port": %d}],
	  "outbounds": [{"tag": "exit", "protocol": "socks", "settings": {"servers": [{"address": "127.0.0.1", "port": %d}]}}]
	}`, listenPort, hopPort)
}

// TestReloadAppliesToNewConnections opens a stream through hop1, reloads the client to
// use hop2, and checks that new connections take hop2 while the old stream keeps
// flowing through hop1 with every byte intact.
func TestReloadAppliesToNewConnections(t *testing.T) {
	echo := startEcho(t)
	m, p1, p2 := hops(t)
	hop1, hop2 := m.Inbound("hop1"), m.Inbound("hop2")
	client := buildOpts(t, clientVia(1080, p1), Options{})
	addr := client.Addr("in").String()
	via := socks.NewClient("t", addr, "", "", &net.Dialer{})

	old := proxytest.OpenEchoStream(t, via, echo)
	old.Part(t, 64<<10)
	if hop1.Value() != 1 || hop2.Value() != 0 {
		t.Fatalf("before reload: hop1 %d hop2 %d connections", hop1.Value(), hop2.Value())
	}

	if err := client.Reload(context.Background(), parse(t, clientVia(1080, p2))); err != nil {
		t.Fatal(err)
	}
	if got := client.Addr("in").String(); got != addr {
		t.Fatalf("the unchanged inbound moved from %s to %s", addr, got)
	}
	for range 3 {
		roundTrip(t, via, echo, 32<<10)
	}
	if hop1.Value() != 1 || hop2.Value() != 3 {
		t.Fatalf("after reload: hop1 %d hop2 %d connections; want 1 and 3", hop1.Value(), hop2.Value())
	}
	if !strings.Contains(client.Describe()[0], fmt.Sprintf("127.0.0.1:%d", p2)) {
		t.Errorf("Describe still shows the old chain: %q", client.Describe())
	}
	old.Part(t, 128<<10)
	old.Finish(t)
}

// TestReloadRefusesBadConfig checks that a config that does not build changes nothing.
func TestReloadRefusesBadConfig(t *testing.T) {
	echo := startEcho(t)
	m, p1, _ := hops(t)
	client := buildOpts(t, clientVia(1080, p1), Options{})
	bad := parse(t, `{"inbounds": [{"tag": "in", "protocol": "socks", "port": 1080}],
	  "outbounds": [{"protocol": "vmess", "settings": {"vnext": [{"address": "a", "port": 1, "users": [{"id": "not-a-uuid"}]}]}}]}`)
	err := client.Reload(context.Background(), bad)
	if err == nil || !strings.Contains(err.Error(), "outbounds[0].settings.vnext[0].users[0].id") {
		t.Fatalf("Reload = %v, want an error naming the bad id", err)
	}
	roundTrip(t, socks.NewClient("t", client.Addr("in").String(), "", "", &net.Dialer{}), echo, 1000)
	if got := m.Inbound("hop1").Value(); got != 1 {
		t.Errorf("hop1 saw %d connections after the refused reload, want 1", got)
	}
}

// TestReloadMovesInbound changes an inbound's port: the new one is bound, the old one
// stops accepting, and a stream accepted on the old one runs to the end.
func TestReloadMovesInbound(t *testing.T) {
	echo := startEcho(t)
	_, p1, _ := hops(t)
	var failPort3 = func(ctx context.Context, network, address string) (net.Listener, error) {
		if strings.HasSuffix(address, ":3") {
			return nil, errors.New("address in use")
		}
		return loopbackListen(ctx, network, address)
	}
	client := buildOpts(t, clientVia(1, p1), Options{Listen: failPort3})
	oldAddr := client.Addr("in").String()
	old := proxytest.OpenEchoStream(t, socks.NewClient("t", oldAddr, "", "", &net.Dialer{}), echo)
	old.Part(t, 1000)

	// Moving to a port that cannot be bound changes nothing.
	if err := client.Reload(context.Background(), parse(t, clientVia(3, p1))); err == nil ||
		err.Error() != "instance: inbounds[0]: address in use" {
		t.Fatalf("Reload to an unbindable port = %v", err)
	}
	if got := client.Addr("in").String(); got != oldAddr {
		t.Fatalf("a failed reload moved the inbound to %s", got)
	}

	if err := client.Reload(context.Background(), parse(t, clientVia(2, p1))); err != nil {
		t.Fatal(err)
	}
	newAddr := client.Addr("in").String()
	if newAddr == oldAddr {
		t.Fatal("the inbound did not move")
	}
	roundTrip(t, socks.NewClient("t", newAddr, "", "", &net.Dialer{}), echo, 10000)
	if c, err := net.DialTimeout("tcp", oldAddr, time.Second); err == nil {
		c.Close()
		t.Error("the old address still accepts")
	}
	old.Part(t, 50000)
	old.Finish(t)
}

// TestShutdownCutsRetiredConnections checks that a stream left on an inbound a reload
// removed is drained, then cut, by Shutdown.
func TestShutdownCutsRetiredConnections(t *testing.T) {
	echo := startEcho(t)
	_, p1, _ := hops(t)
	in, err := Build(parse(t, clientVia(1, p1)), withTestDefaults(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	old := proxytest.OpenEchoStream(t, socks.NewClient("t", in.Addr("in").String(), "", "", &net.Dialer{}), echo)
	old.Part(t, 100)
	if err := in.Reload(context.Background(), parse(t, clientVia(2, p1))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := in.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want deadline exceeded", err)
	}
	old.Conn().SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := old.Conn().Read(make([]byte, 1)); err == nil {
		t.Error("the retired stream is still open after Shutdown")
	}
	if err := in.Reload(context.Background(), parse(t, clientVia(2, p1))); !errors.Is(err, ErrStopped) {
		t.Errorf("Reload after Shutdown = %v", err)
	}
}

// TestRedirectInboundsAreWired checks that the redirect inbound and dokodemo-door with
// followRedirect build, and that each refuses a connection nobody redirected (its
// original destination is the listener itself) without dialing anything.
func TestRedirectInboundsAreWired(t *testing.T) {
	m := metrics.NewProxy("test")
	in := buildOpts(t, `{
	  "inbounds": [
	    {"tag": "capture", "protocol": "redirect", "port": 15001, "sniffing": {"enabled": true, "destOverride": ["http", "tls"]}},
	    {"tag": "tproxy", "protocol": "dokodemo-door", "port": 15002, "settings": {"network": "tcp", "followRedirect": true}}
	  ],
	  "outbounds": [{"tag": "direct", "protocol": "freedom"}]
	}`, Options{Metrics: m})
	for _, tag := range []string{"capture", "tproxy"} {
		c, err := net.Dial("tcp", in.Addr(tag).String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s: read %d bytes from a connection that should be refused", tag, n)
		}
		c.Close()
		if got := m.Inbound(tag).Value(); got != 1 {
			t.Errorf("%s: %d handshakes counted, want 1", tag, got)
		}
	}
	var b bytes.Buffer
	m.Registry.WriteTo(&b)
	if strings.Contains(b.String(), metrics.NameDialDuration+"_count{outbound=\"direct\"} 1") {
		t.Errorf("a refused connection was dialed:\n%s", b.String())
	}
}

// TestPolicyTimeouts: the config's policy level 0 sets the inbounds' timeouts, and a
// reload changes them for new connections on a listener it keeps. The target reads to
// EOF and then holds its end open, so only a timeout ends the relay; which timeout it
// was shows in the outcome, not in elapsed time:
//
//   - downlinkOnly 0 closes the connection once the client half-closes. Nothing else
//     would end it for the default connIdle of 300 s, so an EOF before the read deadline
//     proves the policy applied;
//   - after the reload to connIdle 1 and no downlinkOnly, the half-close no longer ends
//     it: the connection is still open half a second after the dial (the idle timer
//     cannot have started before the dial), and is then closed by connIdle.
func TestPolicyTimeouts(t *testing.T) {
	target := harness.ServeTCP(t, func(c net.Conn) {
		io.Copy(io.Discard, c)
		<-t.Context().Done()
	})
	withPolicy := func(level string) string {
		return `{
		  "inbounds": [{"tag": "in", "protocol": "socks", "listen": "127.0.0.1", "port": 1080}],
		  "outbounds": [{"protocol": "freedom"}],
		  "policy": {"levels": {"0": ` + level + `}}
		}`
	}
	in := buildOpts(t, withPolicy(`{"downlinkOnly": 0}`), Options{})
	if proxy.DefaultIdleTimeout < time.Minute {
		t.Fatalf("default idle timeout %v: too short to tell downlinkOnly from it", proxy.DefaultIdleTimeout)
	}
	client := socks.NewClient("test", in.Addr("in").String(), "", "", &net.Dialer{})
	// halfClose sends a request and half-closes, checks the connection is still open
	// hold after the moment before the dial (if hold > 0), then waits for the relay to
	// close it: an EOF, not the read deadline.
	halfClose := func(hold time.Duration) {
		t.Helper()
		beforeDial := time.Now()
		conn, err := client.DialContext(context.Background(), "tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte("request"))
		proxy.CloseWrite(conn)
		if hold > 0 {
			if n, err := harness.HeldOpen(conn, beforeDial.Add(hold)); err != nil || n != 0 {
				t.Fatalf("within %v of the dial: %d bytes, %v; want the connection still open", hold, n, err)
			}
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := conn.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read after half-close: %d, %v; want EOF from a timeout", n, err)
		}
	}
	halfClose(0)

	if err := in.Reload(context.Background(), parse(t, withPolicy(`{"connIdle": 1}`))); err != nil {
		t.Fatal(err)
	}
	halfClose(500 * time.Millisecond)
}

// TestServersInTurn: an outbound with two servers sends connections to them in turn,
// and Describe names both.
func TestServersInTurn(t *testing.T) {
	m, port1, port2 := hops(t)
	echo := startEcho(t)
	client := buildOpts(t, fmt.Sprintf(`{
	  "inbounds": [{"tag": "in", "protocol": "socks", "port": 1}],
	  "outbounds": [{"tag": "exit", "protocol": "socks", "settings": {"servers": [
	    {"address": "127.0.0.1", "port": %d}, {"address": "127.0.0.1", "port": %d}]}}]
	}`, port1, port2), Options{})
	want := fmt.Sprintf("exit: client -> exit (socks 127.0.0.1:%d, 127.0.0.1:%d) -> destination", port1, port2)
	if got := client.Describe()[0]; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
	hop1, hop2 := m.Inbound("hop1"), m.Inbound("hop2")
	for i := range 5 {
		roundTrip(t, client.Outbound("exit"), echo, 1000)
		if want1, want2 := uint64(i/2+1), uint64((i+1)/2); hop1.Value() != want1 || hop2.Value() != want2 {
			t.Fatalf("after %d connections: hop1 %d, hop2 %d; want %d and %d", i+1, hop1.Value(), hop2.Value(), want1, want2)
		}
	}
}

// TestVMessUsersInTurn: a VMess server entry with two users sends connections as each in
// turn. The server knows only the first, so every second connection is refused.
func TestVMessUsersInTurn(t *testing.T) {
	const known, unknown = "b12614c5-5ca4-4eba-a215-c61d642116ce", "b27c24ab-2b5a-433e-902c-33f1168a7902"
	echo := startEcho(t)
	server := buildOpts(t, `{
	  "inbounds": [{"tag": "vm", "protocol": "vmess", "port": 1, "settings": {"clients": [{"id": "`+known+`"}]}}],
	  "outbounds": [{"protocol": "freedom"}]
	}`, Options{Server: proxy.ServerOptions{HandshakeTimeout: 500 * time.Millisecond}})
	client := buildOpts(t, fmt.Sprintf(`{
	  "outbounds": [{"tag": "exit", "protocol": "vmess", "settings": {"vnext": [{"address": "127.0.0.1", "port": %d,
	    "users": [{"id": "%s"}, {"id": "%s"}]}]}}]
	}`, server.Addr("vm").(*net.TCPAddr).Port, known, unknown), Options{})
	for i := range 4 {
		conn, err := client.Outbound("exit").DialContext(context.Background(), "tcp", echo)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write([]byte("ping"))
		got := make([]byte, 4)
		_, err = io.ReadFull(conn, got)
		conn.Close()
		if ok := err == nil && string(got) == "ping"; ok != (i%2 == 0) {
			t.Errorf("connection %d: echo %q, %v; want it to work only as the known user (even connections)", i, got, err)
		}
	}
}

// TestProxyUsersInTurn: a SOCKS server entry with two users authenticates as each in
// turn. The server knows only the first, so every second dial is refused.
func TestProxyUsersInTurn(t *testing.T) {
	echo := startEcho(t)
	server := buildOpts(t, `{
	  "inbounds": [{"tag": "hop", "protocol": "socks", "port": 1,
	                "settings": {"auth": "password", "accounts": [{"user": "alice", "pass": "a"}]}}],
	  "outbounds": [{"protocol": "freedom"}]
	}`, Options{})
	client := buildOpts(t, fmt.Sprintf(`{
	  "outbounds": [{"tag": "exit", "protocol": "socks", "settings": {"servers": [{"address": "127.0.0.1", "port": %d,
	    "users": [{"user": "alice", "pass": "a"}, {"user": "mallory", "pass": "m"}]}]}}]
	}`, server.Addr("hop").(*net.TCPAddr).Port), Options{})
	for i := range 4 {
		conn, err := client.Outbound("exit").DialContext(context.Background(), "tcp", echo)
		if conn != nil {
			conn.Close()
		}
		if (err == nil) != (i%2 == 0) {
			t.Errorf("dial %d: %v; want it to succeed only as alice (even dials)", i, err)
		}
	}
}
