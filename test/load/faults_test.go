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
//
// Which deadline ended it shows in the outcome, not in elapsed time: the SOCKS reply for
// a dial that ran out of time is "host unreachable", and it has not come by half the
// dial deadline after the moment before the app dialed; a 0-RTT connection is still open
// at half the idle timeout after that moment, and is then closed with EOF rather than
// left open. When each ended is a figure.
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
			if name == "socks" || name == "http" {
				failsAtDialDeadline(t, name, socksAddr, dialTimeout)
				return
			}
			start := time.Now()
			c, err := socksConnect(socksAddr, "127.0.0.1:9")
			if err != nil {
				t.Fatalf("0-RTT outbound failed its dial: %v", err)
			}
			defer c.Close()
			c.Write([]byte("hello"))
			held, heldErr := harness.HeldOpen(c, start.Add(idle/2))
			_, closedAt, err := readUntilClosed(c, 10*idle)
			after := closedAt.Sub(start)
			figure(t, "silent %s hop: 0-RTT dial succeeded; the app's connection ended after %v (%v), idle timeout %v", name, after.Round(10*time.Millisecond), err, idle)
			if heldErr != nil || held != 0 {
				t.Errorf("within %v of the dial, before the %v idle timeout: %d bytes, %v; want the connection open and silent", idle/2, idle, held, heldErr)
			}
			if err != io.EOF {
				t.Errorf("ended with %v, want EOF from the idle timeout", err)
			}
		})
	}
}

// failsAtDialDeadline asks the SOCKS inbound at socksAddr to CONNECT through an outbound
// whose hop never answers, and checks that no reply comes by half the dial deadline after
// the moment before the dial, and that the reply then is host unreachable (0x04), the
// inbound's answer to a dial that ran out of time.
func failsAtDialDeadline(t *testing.T, name, socksAddr string, dialTimeout time.Duration) {
	t.Helper()
	beforeDial := time.Now()
	c, err := net.DialTimeout("tcp", socksAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// Greeting (no auth) and CONNECT 127.0.0.1:9 at once; the method reply comes first.
	if _, err := c.Write([]byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 9}); err != nil {
		t.Fatal(err)
	}
	var method [2]byte
	if _, err := io.ReadFull(c, method[:]); err != nil || method != [2]byte{5, 0} {
		t.Fatalf("SOCKS method reply %v, %v; want 05 00", method, err)
	}
	n, heldErr := harness.HeldOpen(c, beforeDial.Add(dialTimeout/2))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var reply [10]byte
	_, err = io.ReadFull(c, reply[:])
	after := time.Since(beforeDial)
	figure(t, "silent %s hop: the dial failed after %v (dial deadline %v): reply %d, %v", name, after.Round(10*time.Millisecond), dialTimeout, reply[1], err)
	if heldErr != nil || n != 0 {
		t.Fatalf("within %v of the dial, before the %v dial deadline: %d bytes, %v; want no reply yet", dialTimeout/2, dialTimeout, n, heldErr)
	}
	if err != nil {
		t.Fatalf("no SOCKS reply: %v", err)
	}
	if reply[0] != 5 || reply[1] != hostUnreachable {
		t.Fatalf("SOCKS reply % x, want 05 %02x (host unreachable: the dial ran out of time)", reply, hostUnreachable)
	}
}

// hostUnreachable is the SOCKS5 reply for a host that did not answer (RFC 1928).
const hostUnreachable = 0x04
