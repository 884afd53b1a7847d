package metrics

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"

	"github.com/proxychain/proxychain/test/harness"
)

// connOutbound hands out one prepared conn.
type connOutbound struct{ c net.Conn }

func (o connOutbound) Tag() string { return "hop" }
func (o connOutbound) DialContext(context.Context, string, string) (net.Conn, error) {
	return o.c, nil
}

// TestCountedConnResumesAfterTimeouts: reads cut by timeouts, retried, deliver every
// byte once through Read and WriteTo, and the down counter counts each byte once.
func TestCountedConnResumesAfterTimeouts(t *testing.T) {
	payload := bytes.Repeat([]byte("counted bytes "), 3000)
	for _, s := range harness.Stutters {
		for _, via := range []string{"Read", "WriteTo"} {
			src := harness.NewTimeoutReader(bytes.NewReader(payload), s)
			stats := NewProxy("t").Outbound("hop")
			c, err := Instrument(connOutbound{&harness.StutterConn{In: src}}, stats).DialContext(context.Background(), "tcp", "x:1")
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			if via == "WriteTo" {
				got, err = harness.WriteToRetrying(c.(io.WriterTo), src)
			} else {
				got, err = harness.ReadAllRetrying(c, src, 7)
			}
			if err != nil || !bytes.Equal(got, payload) {
				t.Errorf("%s/%s: read %d bytes, %v; want %d", s.Name, via, len(got), err, len(payload))
			}
			if n := stats.down.Value(); n != uint64(len(payload)) {
				t.Errorf("%s/%s: down counter %d, want %d", s.Name, via, n, len(payload))
			}
			c.Close()
		}
	}
}
