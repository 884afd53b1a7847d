package vmess

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/test/harness"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quietLog = slog.New(slog.DiscardHandler)

func mustUUID(t testing.TB, s string) [16]byte {
	t.Helper()
	id, err := ParseUUID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// The spec's two users.
var (
	specUser1 = "b12614c5-5ca4-4eba-a215-c61d642116ce"
	specUser2 = "b27c24ab-2b5a-433e-902c-33f1168a7902"
)

// startServer runs srv behind proxy.Server on loopback and returns its address. The
// dialer records every destination it is asked for.
func startServer(t testing.TB, srv proxy.Inbound, dialer proxy.Dialer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ps := &proxy.Server{Tag: "vmess-in", Inbound: srv, Dialer: dialer,
		Options: proxy.ServerOptions{Logger: quietLog, HandshakeTimeout: 5 * time.Second}}
	done := make(chan error, 1)
	go func() { done <- ps.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ps.Shutdown(ctx)
		if err := <-done; !errors.Is(err, proxy.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// recordingDialer dials directly and counts dials.
type recordingDialer struct {
	net.Dialer
	dials chan string
}

func newRecordingDialer() *recordingDialer { return &recordingDialer{dials: make(chan string, 1000)} }

func (d *recordingDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d.dials <- address
	return d.Dialer.DialContext(ctx, network, address)
}

var securities = []string{"aes-128-gcm", "chacha20-poly1305", "none", "zero", "auto"}

// TestRoundTrip runs every security under both headers: our client, our server through
// proxy.Server, a target checking sha256 of every byte both ways.
func TestRoundTrip(t *testing.T) {
	tg := harness.StartTarget(t)
	id := mustUUID(t, specUser1)
	for _, header := range []struct {
		name    string
		alterID int
	}{{"aead", 0}, {"legacy", 64}} {
		srv, err := NewServer([]User{{ID: id, AlterID: header.alterID, Email: "a@example"}},
			ServerOptions{AllowLegacy: header.alterID > 0, Logger: quietLog})
		if err != nil {
			t.Fatal(err)
		}
		addr := startServer(t, srv, &net.Dialer{})
		for _, sec := range securities {
			t.Run(header.name+"/"+sec, func(t *testing.T) {
				c, err := NewClient("out", addr, User{ID: id, AlterID: header.alterID}, sec, &net.Dialer{})
				if err != nil {
					t.Fatal(err)
				}
				err = harness.ExchangeMany(4, func() (net.Conn, error) {
					return c.DialContext(context.Background(), "tcp", tg.Addr())
				}, 1<<20+77, 3<<20+5)
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// testPair returns a server with the spec's first user and a client for it; alterID > 0
// selects the legacy header (and AllowLegacy).
func testPair(t testing.TB, alterID int) (*Server, *Client) {
	t.Helper()
	id := mustUUID(t, specUser1)
	srv, err := NewServer([]User{{ID: id, AlterID: alterID}}, ServerOptions{AllowLegacy: alterID > 0, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient("out", "127.0.0.1:1", User{ID: id, AlterID: alterID}, "aes-128-gcm", &net.Dialer{})
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}
