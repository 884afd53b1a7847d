package instance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/socks"
	"github.com/proxychain/proxychain/test/harness"
)

// twoServers builds a client whose outbound "exit" is SOCKS with the servers at first
// and second, taken in that order.
func twoServers(t *testing.T, first, second string) proxy.Outbound {
	t.Helper()
	server := func(addr string) string {
		host, port, _ := net.SplitHostPort(addr)
		return fmt.Sprintf(`{"address": %q, "port": %d}`, host, mustAtoi(t, port))
	}
	return buildOpts(t, `{"outbounds": [{"tag": "exit", "protocol": "socks", "settings": {"servers": [`+
		server(first)+`, `+server(second)+`]}}]}`, Options{}).Outbound("exit")
}

// echoWithin dials echo through ob with a dial deadline of within and checks that a
// payload comes back.
func echoWithin(ob proxy.Outbound, echo string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	conn, err := ob.DialContext(ctx, "tcp", echo)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("ping")); err != nil {
		return err
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != "ping" {
		return fmt.Errorf("echo %q, %v", got, err)
	}
	return nil
}

// TestServersFailOver: an outbound's dial that cannot reach a server moves on to the
// next, so with one of two servers down every connection still works, through the
// other; with both down, the error names each.
func TestServersFailOver(t *testing.T) {
	m, port, _ := hops(t)
	up := fmt.Sprintf("127.0.0.1:%d", port)
	echo := startEcho(t)
	exit := twoServers(t, refusedAddr(t), up)
	for i := range 3 {
		if err := echoWithin(exit, echo, 10*time.Second); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	if got := m.Inbound("hop1").Value(); got != 3 {
		t.Errorf("the server up accepted %d connections, want all 3", got)
	}

	down1, down2 := refusedAddr(t), refusedAddr(t)
	err := echoWithin(twoServers(t, down1, down2), echo, 10*time.Second)
	for _, down := range []string{down1, down2} {
		if want := fmt.Sprintf(`socks "exit" (%s): `, down); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("both down: err = %v, want it to name %q", err, want)
		}
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("both down: err = %v, want it to match ECONNREFUSED", err)
	}
}

// TestServersFailOverSilent: a server that accepts and never answers gets its share of
// the dial's time, and the rest goes to the next server.
func TestServersFailOverSilent(t *testing.T) {
	m, port, _ := hops(t)
	echo := startEcho(t)
	silent := harness.ServeTCP(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	exit := twoServers(t, silent, fmt.Sprintf("127.0.0.1:%d", port))
	// Each of the two gets 3 s; this is a bound, not a measurement.
	if err := echoWithin(exit, echo, 6*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := m.Inbound("hop1").Value(); got != 1 {
		t.Errorf("the answering server accepted %d connections, want 1", got)
	}
}

// TestServersRefusalDoesNotMoveOn: a server that answers with a refusal fails the dial:
// the refusal is about the destination or our credentials, not the server being down.
func TestServersRefusalDoesNotMoveOn(t *testing.T) {
	m, port, _ := hops(t)
	echo := startEcho(t)
	locked := buildOpts(t, `{
	  "inbounds": [{"tag": "hop", "protocol": "socks", "port": 1,
	                "settings": {"auth": "password", "accounts": [{"user": "alice", "pass": "a"}]}}],
	  "outbounds": [{"protocol": "freedom"}]
	}`, Options{}).Addr("hop").String()
	exit := twoServers(t, locked, fmt.Sprintf("127.0.0.1:%d", port))
	err := echoWithin(exit, echo, 10*time.Second)
	if want := fmt.Sprintf(`socks "exit" (%s): `, locked); !errors.Is(err, socks.ErrNoAcceptableMethod) || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v, want the locked server's refusal, named %q", err, want)
	}
	if got := m.Inbound("hop1").Value(); got != 0 {
		t.Fatalf("the open server accepted %d connections after the refusal, want none", got)
	}
	if err := echoWithin(exit, echo, 10*time.Second); err != nil {
		t.Fatalf("the next connection, to the open server: %v", err)
	}
}
