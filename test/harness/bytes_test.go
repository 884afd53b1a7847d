package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestRandomBytes(t *testing.T) {
	a, b := RandomBytes(64), RandomBytes(64)
	if len(a) != 64 || bytes.Equal(a, b) || bytes.Equal(a, make([]byte, 64)) {
		t.Fatalf("RandomBytes(64) gave %x then %x", a, b)
	}
}

// flipConn corrupts the first byte it writes, as a broken relay might.
type flipConn struct {
	net.Conn
	flipped bool
}

func (c *flipConn) Write(p []byte) (int, error) {
	if !c.flipped && len(p) > 0 {
		c.flipped = true
		p = append([]byte{p[0] ^ 1}, p[1:]...)
	}
	return c.Conn.Write(p)
}

func TestStartDestination(t *testing.T) {
	for _, kind := range []string{"ipv4", "ipv6", "domain"} {
		t.Run(kind, func(t *testing.T) {
			up, down := RandomBytes(5000), RandomBytes(6000)
			tg, dest, d := StartDestination(t, kind, len(up), down)
			host, _, err := net.SplitHostPort(dest)
			if err != nil {
				t.Fatal(err)
			}
			wantHost := map[string]string{"ipv4": "127.0.0.1", "ipv6": "::1", "domain": "target.test"}[kind]
			if host != wantHost {
				t.Fatalf("dest %s, want host %s", dest, wantHost)
			}
			conn, err := d.DialContext(context.Background(), "tcp", dest)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			tg.Exchange(t, conn, up, down)
			if got := d.Dials(); !slices.Equal(got, []string{dest}) {
				t.Errorf("dials %q, want [%s]", got, dest)
			}
		})
	}
}

func TestBytesTargetExchangeDetectsDifferences(t *testing.T) {
	up, down := RandomBytes(1000), RandomBytes(2000)
	tg := StartBytesTarget(t, "tcp", len(up), down)

	dial := func() net.Conn {
		conn := dialTCP(t, tg.Addr())
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	wrongDown := append([]byte{down[0] ^ 1}, down[1:]...)
	f := runTB(t, func(tb testing.TB) { tg.Exchange(tb, dial(), up, wrongDown) })
	if !f.failed || !strings.Contains(f.msg, "downstream bytes differ") {
		t.Errorf("wrong down bytes: failed %v, %q", f.failed, f.msg)
	}
	<-tg.Got() // that exchange's upload, which was intact

	f = runTB(t, func(tb testing.TB) { tg.Exchange(tb, &flipConn{Conn: dial()}, up, down) })
	if !f.failed || !strings.Contains(f.msg, "upstream bytes differ") {
		t.Errorf("corrupted upload: failed %v, %q", f.failed, f.msg)
	}
}

func TestHTTPTarget(t *testing.T) {
	body, down := RandomBytes(20<<10), RandomBytes(30<<10)
	tg := StartHTTPTarget(t, down)
	resp, err := http.Post("http://"+tg.Addr()+"/upload", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, down) {
		t.Fatalf("status %d, %d bytes; want 200 and the target's %d bytes", resp.StatusCode, len(got), len(down))
	}
	if h := <-tg.Got(); h != sha256.Sum256(body) {
		t.Error("the target hashed other bytes than the body sent")
	}
	if head := <-tg.Heads(); head.Method != http.MethodPost || head.RequestURI != "/upload" {
		t.Errorf("head %s %s, want POST /upload", head.Method, head.RequestURI)
	}
	if n := <-tg.Extra(); n != 0 {
		t.Errorf("%d bytes followed the request", n)
	}
}

func TestRequireIPv6Loopback(t *testing.T) {
	f := runTB(t, func(tb testing.TB) { requireIPv6Loopback(tb, func() error { return nil }) })
	if f.failed || f.skipped {
		t.Fatalf("with IPv6 loopback: failed %v, skipped %v: %s", f.failed, f.skipped, f.msg)
	}
	for _, c := range []struct {
		ci         string
		wantFailed bool
	}{
		{"true", true},
		{"", false},
		{"false", false},
	} {
		t.Run("missing/CI="+c.ci, func(t *testing.T) {
			t.Setenv("CI", c.ci)
			f := runTB(t, func(tb testing.TB) {
				requireIPv6Loopback(tb, func() error { return errors.New("cannot assign requested address") })
				t.Error("requireIPv6Loopback returned without IPv6 loopback")
			})
			if f.failed != c.wantFailed || f.skipped == c.wantFailed {
				t.Fatalf("failed %v, skipped %v; want failed %v", f.failed, f.skipped, c.wantFailed)
			}
			for _, want := range []string{"IPv6 LOOPBACK MISSING", "NOT verified", "cannot assign requested address"} {
				if !strings.Contains(f.msg, want) {
					t.Errorf("message %q lacks %q", f.msg, want)
				}
			}
		})
	}
}
