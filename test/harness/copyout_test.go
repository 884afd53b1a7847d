package harness

import (
	"net"
	"strings"
	"testing"
)

func TestExchangeCopyingOut(t *testing.T) {
	up, down := RandomBytes(5000), RandomBytes(3000)
	for _, tc := range []struct {
		name    string
		corrupt bool
	}{{"intact", false}, {"corrupted up", true}} {
		client, server := net.Pipe()
		var c net.Conn = client
		if tc.corrupt {
			c = &flipConn{Conn: client}
		}
		f := runTB(t, func(tb testing.TB) {
			wait := ExchangeCopyingOut(tb, c, server, up, down)
			client.Close()
			server.Close()
			wait()
		})
		if f.failed != tc.corrupt || tc.corrupt && !strings.Contains(f.msg, "up: hashes differ") {
			t.Errorf("%s: failed %v, %q", tc.name, f.failed, f.msg)
		}
	}
}
