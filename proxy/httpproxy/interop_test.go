package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const v2rayPath = "/usr/bin/v2ray"

// freePort returns a loopback port nobody listens on right now, for a peer that must be
// told its port in a config file.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startV2Ray runs v2ray with config until the test ends, once the given ports accept.
func startV2Ray(t *testing.T, config string, ports ...int) {
	t.Helper()
	requirePeer(t, v2rayPath)
	file := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd := exec.Command(v2rayPath, "-config", file)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("v2ray output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(testTimeout)
	for _, port := range ports {
		for {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("v2ray never listened on %d: %v", port, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestV2RayInterop proves both ends against V2Ray 4.34: our CONNECT client through
// V2Ray's HTTP inbound, and V2Ray's HTTP outbound (CONNECT) through our server.
func TestV2RayInterop(t *testing.T) {
	up, down := randomBytes(t, 100<<10), randomBytes(t, 200<<10)
	tg := startTarget(t, "tcp", len(up), down)
	d := &recordingDialer{}
	ours := startProxy(t, NewServer(ServerOptions{Accounts: testAccounts, Logger: discardLogger()}), d)
	_, oursPort, _ := net.SplitHostPort(ours)
	_, targetPort, _ := net.SplitHostPort(tg.addr)
	httpIn, door := freePort(t), freePort(t)
	startV2Ray(t, fmt.Sprintf(`{
  "log": {"loglevel": "warning"},
  "inbounds": [
    {"tag": "http-in", "listen": "127.0.0.1", "port": %d, "protocol": "http",
     "settings": {"accounts": [{"user": "alice", "pass": "wonderland"}]}},
    {"tag": "door", "listen": "127.0.0.1", "port": %d, "protocol": "dokodemo-door",
     "settings": {"address": "127.0.0.1", "port": %s, "network": "tcp"}}
  ],
  "outbounds": [
    {"tag": "direct", "protocol": "freedom"},
    {"tag": "to-ours", "protocol": "http",
     "settings": {"servers": [{"address": "127.0.0.1", "port": %s, "users": [{"user": "bob", "pass": "builder"}]}]}}
  ],
  "routing": {"rules": [{"type": "field", "inboundTag": ["door"], "outboundTag": "to-ours"}]}
}`, httpIn, door, targetPort, oursPort), httpIn) // probing door would dial through our server

	t.Run("our client, v2ray server", func(t *testing.T) {
		c := NewClient("v2ray", fmt.Sprintf("127.0.0.1:%d", httpIn), "alice", "wonderland", &net.Dialer{})
		conn, err := c.DialContext(context.Background(), "tcp", tg.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		exchange(t, conn, tg, up, down)
		bad := NewClient("v2ray", fmt.Sprintf("127.0.0.1:%d", httpIn), "alice", "nope", &net.Dialer{})
		var se *StatusError
		if _, err := bad.DialContext(context.Background(), "tcp", tg.addr); !errors.As(err, &se) || se.Code != 407 {
			t.Fatalf("wrong password: err = %v, want a 407 StatusError", err)
		}
	})
	t.Run("v2ray client, our server", func(t *testing.T) {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", door))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		exchange(t, conn, tg, up, down)
		if got := d.dials(); !slices.Equal(got, []string{tg.addr}) {
			t.Fatalf("our server dialed %q, want [%s]", got, tg.addr)
		}
	})
}
