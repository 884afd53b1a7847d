package instance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/socks"
	"github.com/proxychain/proxychain/proxy/vmess"
	"github.com/proxychain/proxychain/test/harness"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// loopbackListen ignores the configured port and listens on a free loopback port, so
// tests never collide.
func loopbackListen(ctx context.Context, network, _ string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, network, "127.0.0.1:0")
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startEcho serves a TCP echo on loopback until the test ends.
func startEcho(t *testing.T) string {
	t.Helper()
	return harness.ServeTCP(t, func(c net.Conn) { io.Copy(c, c) })
}

func build(t *testing.T, cfgJSON string) *Instance {
	t.Helper()
	cfg, _, err := config.Parse([]byte(cfgJSON))
	if err != nil {
		t.Fatal(err)
	}
	in, err := Build(cfg, Options{Logger: quietLogger(), Listen: loopbackListen})
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

// roundTrip sends size random bytes to the echo server through dialer and checks the
// hash of what comes back.
func roundTrip(t *testing.T, dialer proxy.Dialer, echo string, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := dialer.DialContext(ctx, "tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	payload := make([]byte, size)
	rand.Read(payload)
	want := sha256.Sum256(payload)
	writeErr := make(chan error, 1)
	go func() {
		_, err := conn.Write(payload)
		if err == nil {
			err = proxy.CloseWrite(conn)
		}
		writeErr <- err
	}()
	h := sha256.New()
	n, err := io.Copy(h, conn)
	if err != nil {
		t.Fatalf("read after %d bytes: %v", n, err)
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if n != int64(size) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("echo returned %d bytes with a different hash; sent %d", n, size)
	}
}

const socksToFreedom = `{
  // a SOCKS inbound straight to the direct exit
  "inbounds": [{"tag": "socks-in", "protocol": "socks", "listen": "127.0.0.1", "port": 1080,
                "settings": {"auth": "noauth"}}],
  "outbounds": [{"tag": "direct", "protocol": "freedom"},],
}`

func TestSocksToFreedom(t *testing.T) {
	echo := startEcho(t)
	in := build(t, socksToFreedom)
	client := socks.NewClient("test", in.Addr("socks-in").String(), "", "", &net.Dialer{})
	for _, size := range []int{1, 64 << 10, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { roundTrip(t, client, echo, size) })
	}
}

func TestSocksPasswordAndRouting(t *testing.T) {
	echo := startEcho(t)
	_, echoPort, _ := net.SplitHostPort(echo)
	in := build(t, `{
	  "inbounds": [{"tag": "socks-in", "protocol": "socks", "port": 1080,
	                "settings": {"auth": "password", "accounts": [{"user": "alice", "pass": "pw"}]}}],
	  "outbounds": [
	    {"tag": "block", "protocol": "blackhole"},
	    {"tag": "direct", "protocol": "freedom"}
	  ],
	  "routing": {"rules": [{"type": "field", "ip": ["127.0.0.0/8"], "port": "`+echoPort+`", "outboundTag": "direct"}]}
	}`)
	addr := in.Addr("socks-in").String()
	roundTrip(t, socks.NewClient("t", addr, "alice", "pw", &net.Dialer{}), echo, 32<<10)

	ctx := context.Background()
	// No rule matches another port, so the default (first) outbound, the blackhole, takes it.
	if c, err := socks.NewClient("t", addr, "alice", "pw", &net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:1"); err == nil {
		c.Close()
		t.Error("dial to an unrouted destination succeeded through the blackhole")
	}
	if c, err := socks.NewClient("t", addr, "alice", "wrong", &net.Dialer{}).DialContext(ctx, "tcp", echo); err == nil {
		c.Close()
		t.Error("wrong password accepted")
	}
}

// TestChainOfSocksHops builds a two-hop chain of SOCKS outbounds through real SOCKS
// servers (hops): client -> hop1 -> exit (hop2) -> destination. Each hop server must
// accept every connection: the echo alone would come back just as well without hop1.
func TestChainOfSocksHops(t *testing.T) {
	echo := startEcho(t)
	m, p1, p2 := hops(t)
	client := build(t, fmt.Sprintf(`{
	  "outbounds": [
	    {"tag": "exit", "protocol": "socks", "settings": {"servers": [{"address": "127.0.0.1", "port": %d}]},
	     "proxySettings": {"tag": "hop1"}},
	    {"tag": "hop1", "protocol": "socks", "settings": {"servers": [{"address": "127.0.0.1", "port": %d}]}}
	  ]
	}`, p2, p1))
	want := fmt.Sprintf("exit: client -> hop1 (socks 127.0.0.1:%d) -> exit (socks 127.0.0.1:%d) -> destination", p1, p2)
	if got := client.Describe()[0]; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
	before := accepted(m, "hop1", "hop2")
	roundTrip(t, client.Outbound("exit"), echo, 256<<10)
	roundTrip(t, client.Dialer(), echo, 1000)
	checkAccepted(t, m, before, map[string]uint64{"hop1": 2, "hop2": 2})
}

// TestChainErrorsNameTheFailingHop: when the second hop of a chain fails, the error
// names that hop by protocol, tag and server, not the first hop (whose server is the TCP
// peer) or no hop at all, and stays matchable.
func TestChainErrorsNameTheFailingHop(t *testing.T) {
	_, first, _ := hops(t)
	tests := []struct {
		name, protocol, settings string
		// server starts the second hop's server; it may cancel the dial.
		server func(cancel context.CancelFunc) string
		// read reads once after the dial: the hop reports its answer on the first read.
		read bool
		want error
	}{
		{
			// accepts, reads the greeting, never answers; the dial is cancelled then
			name: "socks, silent", protocol: "socks", settings: `{"servers": [{"address": "127.0.0.1", "port": %d}]}`,
			server: func(cancel context.CancelFunc) string {
				return harness.ServeTCP(t, func(c net.Conn) {
					io.ReadFull(c, make([]byte, 3))
					cancel()
					io.Copy(io.Discard, c)
				})
			},
			want: context.Canceled,
		},
		{
			// ends its stream before any response header
			name: "vmess, closed", protocol: "vmess", settings: `{"vnext": [{"address": "127.0.0.1", "port": %d, "users": [{"id": "` + idA + `"}]}]}`,
			server: func(context.CancelFunc) string {
				return harness.ServeTCP(t, func(c net.Conn) {
					c.(*net.TCPConn).CloseWrite()
					io.Copy(io.Discard, c)
				})
			},
			read: true, want: vmess.ErrResponse,
		},
		{
			// nothing listens: the first hop's server is refused
			name: "shadowsocks, refused", protocol: "shadowsocks",
			settings: `{"servers": [{"address": "127.0.0.1", "port": %d, "method": "aes-256-gcm", "password": "x"}]}`,
			server:   func(context.CancelFunc) string { return refusedAddr(t) },
			want:     syscall.ECONNREFUSED,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			server := tt.server(cancel)
			_, port, _ := net.SplitHostPort(server)
			client := build(t, fmt.Sprintf(`{
			  "outbounds": [
			    {"tag": "second", "protocol": %q, "settings": `+tt.settings+`, "proxySettings": {"tag": "first"}},
			    {"tag": "first", "protocol": "socks", "settings": {"servers": [{"address": "127.0.0.1", "port": %d}]}}
			  ]
			}`, tt.protocol, mustAtoi(t, port), first))
			conn, err := client.Outbound("second").DialContext(ctx, "tcp", "192.0.2.1:80")
			if err == nil && tt.read {
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				_, err = conn.Read(make([]byte, 1))
			}
			if conn != nil {
				conn.Close()
			}
			want := fmt.Sprintf("%s %q (%s): ", tt.protocol, "second", server)
			if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v; want it to begin %q and match %v", err, want, tt.want)
			}
		})
	}
}

// refusedAddr returns a loopback address where nothing listens.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	return ln.Addr().String()
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name, cfg, want string
	}{
		{
			"bad vmess id",
			`{"outbounds": [{"protocol": "vmess", "settings": {"vnext": [{"address": "a", "port": 1, "users": [{"id": "not-a-uuid"}]}]}}]}`,
			`instance: outbounds[0].settings.vnext[0].users[0].id: vmess: bad uuid "not-a-uuid": want 8-4-4-4-12 hex digits`,
		},
		{
			"unsupported cipher",
			`{"outbounds": [{"protocol": "freedom"}, {"protocol": "freedom"}, {"protocol": "shadowsocks", "settings": {"servers": [{"address": "a", "port": 1, "method": "aes-256-cfb8", "password": "p"}]}}]}`,
			`instance: outbounds[2].settings.servers[0].method: shadowsocks: unsupported cipher "aes-256-cfb8"`,
		},
		{
			"bad vmess id of a later server's second user",
			`{"outbounds": [{"protocol": "vmess", "settings": {"vnext": [
			  {"address": "a", "port": 1, "users": [{"id": "b12614c5-5ca4-4eba-a215-c61d642116ce"}]},
			  {"address": "b", "port": 1, "users": [{"id": "b12614c5-5ca4-4eba-a215-c61d642116ce"}, {"id": "nope"}]}]}}]}`,
			`instance: outbounds[0].settings.vnext[1].users[1].id: vmess: bad uuid "nope": want 8-4-4-4-12 hex digits`,
		},
		{
			"unsupported cipher of a second server",
			`{"outbounds": [{"protocol": "shadowsocks", "settings": {"servers": [
			  {"address": "a", "port": 1, "method": "aes-256-gcm", "password": "p"},
			  {"address": "b", "port": 1, "method": "rc4", "password": "p"}]}}]}`,
			`instance: outbounds[0].settings.servers[1].method: shadowsocks: unsupported cipher "rc4"`,
		},
		{
			"cycle",
			`{"outbounds": [{"tag": "a", "protocol": "freedom", "proxySettings": {"tag": "b"}}, {"tag": "b", "protocol": "freedom", "proxySettings": {"tag": "a"}}]}`,
			"chain: outbound cycle: a -> b -> a",
		},
		{
			"unresolved secret file",
			`{"outbounds": [{"protocol": "socks", "settings": {"servers": [{"address": "a", "port": 1, "users": [{"user": "u", "passFile": "p"}]}]}}]}`,
			"instance: outbounds[0].settings.servers[0].users[0].passFile: config: secret file has not been read (use Load or ResolveFiles): p",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := config.Parse([]byte(tt.cfg))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Build(cfg, Options{Logger: quietLogger()})
			if err == nil || err.Error() != tt.want {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestVMessAlterIDWarnsOncePerOutbound(t *testing.T) {
	var logs bytes.Buffer
	cfg, _, err := config.Parse([]byte(`{"outbounds": [
	  {"tag": "legacy", "protocol": "vmess", "settings": {"vnext": [{"address": "a", "port": 1, "users": [{"id": "b12614c5-5ca4-4eba-a215-c61d642116ce", "alterId": 64}]}]}},
	  {"tag": "aead", "protocol": "vmess", "settings": {"vnext": [{"address": "a", "port": 1, "users": [{"id": "b12614c5-5ca4-4eba-a215-c61d642116ce"}]}]}}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Build(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "insecure VMess"); n != 1 || !strings.Contains(logs.String(), "outbound=legacy") {
		t.Errorf("want one warning for outbound legacy, got:\n%s", logs.String())
	}
}

func TestStartListenFailureClosesOthers(t *testing.T) {
	cfg, _, err := config.Parse([]byte(`{
	  "inbounds": [{"tag": "a", "protocol": "socks", "port": 1}, {"tag": "b", "protocol": "socks", "port": 2}],
	  "outbounds": [{"protocol": "freedom"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var opened []net.Listener
	listen := func(ctx context.Context, network, address string) (net.Listener, error) {
		if strings.HasSuffix(address, ":2") {
			return nil, errors.New("address in use")
		}
		ln, err := loopbackListen(ctx, network, address)
		opened = append(opened, ln)
		return ln, err
	}
	in, err := Build(cfg, Options{Logger: quietLogger(), Listen: listen})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(context.Background()); err == nil || err.Error() != "instance: inbounds[1]: address in use" {
		t.Fatalf("Start error = %v", err)
	}
	if _, err := opened[0].Accept(); err == nil {
		t.Error("first listener left open")
	}
	if err := in.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestShutdownDrainsThenCuts(t *testing.T) {
	echo := startEcho(t)
	cfg, _, err := config.Parse([]byte(socksToFreedom))
	if err != nil {
		t.Fatal(err)
	}
	in, err := Build(cfg, Options{Logger: quietLogger(), Listen: loopbackListen})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := in.Start(context.Background()); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start = %v", err)
	}
	client := socks.NewClient("t", in.Addr("socks-in").String(), "", "", &net.Dialer{})
	conn, err := client.DialContext(context.Background(), "tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// An open, idle relay holds Shutdown until its context ends, then is cut.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := in.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want deadline exceeded", err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("connection still open after Shutdown cut it")
	}
}

// TestStartWithoutIPv6 is a pod whose kernel has IPv6 disabled: the IPv6 redirect
// listener the operator renders cannot bind, and the rest must serve regardless; any
// other failure to bind still fails Start.
func TestStartWithoutIPv6(t *testing.T) {
	echo := startEcho(t)
	cfg, _, err := config.Parse([]byte(`{
	  "inbounds": [{"tag": "v4", "protocol": "socks", "listen": "127.0.0.1", "port": 1},
	               {"tag": "v6", "protocol": "socks", "listen": "::1", "port": 1}],
	  "outbounds": [{"protocol": "freedom"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	noIPv6 := func(ctx context.Context, network, address string) (net.Listener, error) {
		if strings.HasPrefix(address, "[::1]") {
			return nil, &net.OpError{Op: "listen", Net: network, Err: os.NewSyscallError("bind", syscall.EADDRNOTAVAIL)}
		}
		return loopbackListen(ctx, network, address)
	}
	in, err := Build(cfg, Options{Logger: quietLogger(), Listen: noIPv6})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		t.Fatalf("Start without IPv6: %v", err)
	}
	defer in.Shutdown(context.Background())
	if in.Addr("v6") != nil {
		t.Errorf("the IPv6 inbound listens at %v", in.Addr("v6"))
	}
	roundTrip(t, socks.NewClient("test", in.Addr("v4").String(), "", "", &net.Dialer{}), echo, 64<<10)

	// An IPv4 address that is not there is a misconfiguration, not a missing family.
	in2, err := Build(cfg, Options{Logger: quietLogger(), Listen: func(ctx context.Context, network, address string) (net.Listener, error) {
		return nil, &net.OpError{Op: "listen", Net: network, Err: os.NewSyscallError("bind", syscall.EADDRNOTAVAIL)}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := in2.Start(context.Background()); err == nil {
		t.Error("Start succeeded with the IPv4 inbound unbound")
	}
	in2.Shutdown(context.Background())
}
