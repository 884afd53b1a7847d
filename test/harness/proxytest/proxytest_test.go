package proxytest

import (
	"bufio"
	"context"
	"net"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/test/harness"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lineInbound takes the destination from a first line "host:port\n". It reads one byte
// at a time so nothing after the line is lost.
type lineInbound struct{}

func (lineInbound) Handshake(ctx context.Context, conn net.Conn) (*proxy.Request, error) {
	line, err := bufio.NewReaderSize(harness.OneByteConn{Conn: conn}, 16).ReadString('\n')
	if err != nil {
		return nil, err
	}
	return &proxy.Request{Destination: strings.TrimSuffix(line, "\n"), Conn: conn}, nil
}

func TestServe(t *testing.T) {
	up, down := []byte("up bytes"), []byte("down bytes")
	tg := harness.StartBytesTarget(t, "tcp", len(up), down)
	d := &harness.RecordingDialer{Hosts: map[string]string{"service.test:80": tg.Addr()}}
	addr := Serve(t, lineInbound{}, d)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("service.test:80\n")); err != nil {
		t.Fatal(err)
	}
	tg.Exchange(t, conn, up, down)
	if got := d.Dials(); !slices.Equal(got, []string{"service.test:80"}) {
		t.Errorf("dials %q, want [service.test:80]", got)
	}
}
