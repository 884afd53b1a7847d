package load

import (
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/test/harness"
)

// resetTarget reads one byte from each client, then resets the connection.
func resetTarget(t testing.TB) string {
	return harness.ServeTCP(t, func(c net.Conn) {
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			return
		}
		c.(*net.TCPConn).SetLinger(0)
	})
}

// TestTargetResetReachesApp: a target that resets makes the app's read fail with
// ECONNRESET (a reset, not a FIN) through the whole 4-hop chain.
func TestTargetResetReachesApp(t *testing.T) {
	target := resetTarget(t)
	for name, hops := range map[string][]hop{"seed": seedHops(), "modern": modernHops()} {
		t.Run(name, func(t *testing.T) {
			socksAddr := startChain(t, hops, proxy.ServerOptions{})
			c, err := socksConnect(socksAddr, target)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			c.Write([]byte{1})
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = c.Read(make([]byte, 1))
			figure(t, "%s chain: target reset reached the app after %v as %v", name, time.Since(start).Round(time.Millisecond), err)
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("app read: %v, want ECONNRESET", err)
			}
		})
	}
}

// TestSilentHop: a hop that accepts and never answers. Outbounds with a reply in their
// handshake (socks, http) fail the dial at the dial deadline, and the app gets a SOCKS
// failure; Shadowsocks and VMess are 0-RTT (their dial is the TCP connect), so the app's
// connection is ended by the idle timeout instead.
func TestSilentHop(t *testing.T) {
	silent := harness.ServeTCP(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	host, portStr, _ := net.SplitHostPort(silent)
	port, _ := strconv.Atoi(portStr)
	const dialTimeout, idle = time.Second, time.Second
	opts := proxy.ServerOptions{DialTimeout: dialTimeout, IdleTimeout: idle}
	outbounds := map[string]map[string]any{
		"socks":       {"protocol": "socks", "settings": map[string]any{"servers": []any{map[string]any{"address": host, "port": port}}}},
		"http":        {"protocol": "http", "settings": map[string]any{"servers": []any{map[string]any{"address": host, "port": port}}}},
		"shadowsocks": {"protocol": "shadowsocks", "settings": ssHop("x", "aes-256-gcm", "password").outbound(host, port)},
		"vmess":       {"protocol": "vmess", "settings": vmessHop("x", testUUID, 0).outbound(host, port)},
	}
	for name, out := range outbounds {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			socksAddr := startInstance(t, map[string]any{
				"inbounds":  []any{map[string]any{"tag": "socks-in", "protocol": "socks", "listen": "127.0.0.1", "port": 1}},
				"outbounds": []any{out},
			}, opts).Addr("socks-in").String()
			start := time.Now()
			c, err := socksConnect(socksAddr, "127.0.0.1:9")
			if err != nil {
				after := time.Since(start)
				figure(t, "silent %s hop: the dial failed after %v (dial deadline %v): %v", name, after.Round(10*time.Millisecond), dialTimeout, err)
				if name == "shadowsocks" || name == "vmess" {
					t.Fatalf("0-RTT outbound failed its dial: %v", err)
				}
				if after < dialTimeout-100*time.Millisecond || after > dialTimeout+2*time.Second {
					t.Errorf("dial failed after %v, want at the %v deadline", after, dialTimeout)
				}
				return
			}
			defer c.Close()
			if name == "socks" || name == "http" {
				t.Fatal("the SOCKS handshake succeeded through a silent hop")
			}
			c.Write([]byte("hello"))
			_, closedAt, err := readUntilClosed(c, 10*idle)
			after := closedAt.Sub(start)
			figure(t, "silent %s hop: 0-RTT dial succeeded; the app's connection ended after %v (%v), idle timeout %v", name, after.Round(10*time.Millisecond), err, idle)
			if err != io.EOF || after > 2*idle+time.Second {
				t.Errorf("ended after %v with %v, want EOF within two idle periods", after, err)
			}
		})
	}
}
