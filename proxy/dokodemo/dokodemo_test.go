package dokodemo

import (
	"context"
	"net"
	"slices"
	"testing"

	"github.com/proxychain/proxychain/test/harness"
	"github.com/proxychain/proxychain/test/harness/proxytest"
)

func TestRoundTrip(t *testing.T) {
	up, down := harness.RandomBytes(200<<10), harness.RandomBytes(300<<10)
	tg := harness.StartBytesTarget(t, "tcp", len(up), down)
	_, port, _ := net.SplitHostPort(tg.Addr())
	dest := net.JoinHostPort("service.test", port)
	d := &harness.RecordingDialer{Hosts: map[string]string{dest: tg.Addr()}}
	addr := proxytest.Serve(t, NewServer(dest), d)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tg.Exchange(t, conn, up, down)
	if got := d.Dials(); !slices.Equal(got, []string{dest}) {
		t.Fatalf("dialed %q, want [%q] unresolved", got, dest)
	}
}

func TestHandshake(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	req, err := NewServer("example.com:443").Handshake(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if req.Destination != "example.com:443" || req.Conn != a || req.Answer != nil {
		t.Fatalf("request %+v: want the fixed destination, the conn as is and no answer", req)
	}
	for _, bad := range []string{"", "example.com", ":443", "example.com:0", "example.com:65536", "example.com:http"} {
		if _, err := NewServer(bad).Handshake(context.Background(), a); err == nil {
			t.Errorf("destination %q accepted", bad)
		}
		if err := Check(bad); err == nil {
			t.Errorf("Check(%q) passed", bad)
		}
	}
	if s := NewServer("[::1]:53"); s.Destination() != "[::1]:53" || Check(s.Destination()) != nil {
		t.Fatal("IPv6 destination refused")
	}
}
