package socks

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/proxychain/proxychain/test/harness"
	"github.com/proxychain/proxychain/test/harness/proxytest"
)

// TestV2RayInterop proves both ends against V2Ray 4.34: our client through V2Ray's SOCKS
// inbound, and V2Ray's SOCKS outbound through our server.
func TestV2RayInterop(t *testing.T) {
	up, down := harness.RandomBytes(100<<10), harness.RandomBytes(200<<10)
	tg := harness.StartBytesTarget(t, "tcp", len(up), down)
	d := &harness.RecordingDialer{}
	ours := proxytest.Serve(t, NewServer(ServerOptions{Accounts: testAccounts, Logger: discardLogger()}), d)
	_, oursPort, _ := net.SplitHostPort(ours)
	_, targetPort, _ := net.SplitHostPort(tg.Addr())
	socksIn, door := harness.FreePort(t), harness.FreePort(t)
	harness.StartV2Ray(t, json.RawMessage(fmt.Sprintf(`{
  "log": {"loglevel": "warning"},
  "inbounds": [
    {"tag": "socks-in", "listen": "127.0.0.1", "port": %d, "protocol": "socks",
     "settings": {"auth": "password", "accounts": [{"user": "alice", "pass": "wonderland"}]}},
    {"tag": "door", "listen": "127.0.0.1", "port": %d, "protocol": "dokodemo-door",
     "settings": {"address": "127.0.0.1", "port": %s, "network": "tcp"}}
  ],
  "outbounds": [
    {"tag": "direct", "protocol": "freedom"},
    {"tag": "to-ours", "protocol": "socks",
     "settings": {"servers": [{"address": "127.0.0.1", "port": %s, "users": [{"user": "bob", "pass": "builder"}]}]}}
  ],
  "routing": {"rules": [{"type": "field", "inboundTag": ["door"], "outboundTag": "to-ours"}]}
}`, socksIn, door, targetPort, oursPort)), socksIn) // probing door would dial through our server

	t.Run("our client, v2ray server", func(t *testing.T) {
		c := NewClient("v2ray", fmt.Sprintf("127.0.0.1:%d", socksIn), "alice", "wonderland", &net.Dialer{})
		conn, err := c.DialContext(context.Background(), "tcp", tg.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		tg.Exchange(t, conn, up, down)
		bad := NewClient("v2ray", fmt.Sprintf("127.0.0.1:%d", socksIn), "alice", "nope", &net.Dialer{})
		if _, err := bad.DialContext(context.Background(), "tcp", tg.Addr()); err == nil {
			t.Fatal("v2ray accepted a wrong password from our client")
		}
	})
	t.Run("v2ray client, our server", func(t *testing.T) {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", door))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		tg.Exchange(t, conn, up, down)
		if got := d.Dials(); !slices.Equal(got, []string{tg.Addr()}) {
			t.Fatalf("our server dialed %q, want [%s]", got, tg.Addr())
		}
	})
}
