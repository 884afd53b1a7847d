package httpproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/proxychain/proxychain/test/harness"
	"github.com/proxychain/proxychain/test/harness/proxytest"
)

// TestV2RayInterop proves both ends against V2Ray 4.34: our CONNECT client through
// V2Ray's HTTP inbound, and V2Ray's HTTP outbound (CONNECT) through our server.
func TestV2RayInterop(t *testing.T) {
	up, down := harness.RandomBytes(100<<10), harness.RandomBytes(200<<10)
	tg := harness.StartBytesTarget(t, "tcp", len(up), down)
	d := &harness.RecordingDialer{}
	ours := proxytest.Serve(t, NewServer(ServerOptions{Accounts: testAccounts, Logger: discardLogger()}), d)
	_, oursPort, _ := net.SplitHostPort(ours)
	_, targetPort, _ := net.SplitHostPort(tg.Addr())
	httpIn, door := harness.FreePort(t), harness.FreePort(t)
	harness.StartV2Ray(t, json.RawMessage(fmt.Sprintf(`{
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
}`, httpIn, door, targetPort, oursPort)), httpIn) // probing door would dial through our server

	t.Run("our client, v2ray server", func(t *testing.T) {
		c := NewClient("v2ray", fmt.Sprintf("127.0.0.1:%d", httpIn), "alice", "wonderland", &net.Dialer{})
		conn, err := c.DialContext(context.Background(), "tcp", tg.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		tg.Exchange(t, conn, up, down)
		bad := NewClient("v2ray", fmt.Sprintf("127.0.0.1:%d", httpIn), "alice", "nope", &net.Dialer{})
		var se *StatusError
		if _, err := bad.DialContext(context.Background(), "tcp", tg.Addr()); !errors.As(err, &se) || se.Code != 407 {
			t.Fatalf("wrong password: err = %v, want a 407 StatusError", err)
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
