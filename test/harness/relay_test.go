package harness

import (
	"net"
	"testing"
)

// The relay carries an Exchange intact and counts it: the connections, the header and
// payload up (28 + up bytes), the payload and the target's sha256 down (down + 32).
func TestRelayCounts(t *testing.T) {
	tg := StartTarget(t)
	r := StartRelay(t, tg.Addr())
	if n := r.Conns(); n != 0 {
		t.Fatalf("%d connections before any", n)
	}
	const up, down, n = 70000, 50000, 3
	dial := func() (net.Conn, error) { return net.Dial("tcp", r.Addr()) }
	if err := ExchangeMany(n, dial, up, down); err != nil {
		t.Fatal(err)
	}
	gotUp, gotDown := r.Bytes()
	if r.Conns() != n || gotUp != n*(28+up) || gotDown != n*(down+32) {
		t.Fatalf("relay counted %d connections, %d bytes up, %d down; want %d, %d, %d",
			r.Conns(), gotUp, gotDown, n, n*(28+up), n*(down+32))
	}
	if got := len(tg.Remotes()); got != n {
		t.Fatalf("the target saw %d connections, want %d", got, n)
	}
}
