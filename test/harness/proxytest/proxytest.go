// Package proxytest runs proxychain inbounds for the tests of protocol packages.
//
// It is apart from package harness because it imports proxychain's proxy package, and
// harness judges the data plane from outside.
package proxytest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
)

// shutdownTimeout bounds the handshake of every served conn and the server's shutdown.
const shutdownTimeout = 10 * time.Second

// Serve serves in on a fresh 127.0.0.1 port through a proxy.Server that dials with d,
// and returns the port's host:port. When the test ends the server is shut down, and the
// test fails unless Serve returned proxy.ErrServerClosed.
func Serve(t testing.TB, in proxy.Inbound, d proxy.Dialer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxytest: listen: %v", err)
	}
	srv := &proxy.Server{Tag: "test", Inbound: in, Dialer: d, Options: proxy.ServerOptions{
		HandshakeTimeout: shutdownTimeout,
		Logger:           slog.New(slog.DiscardHandler),
	}}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, proxy.ErrServerClosed) {
			t.Errorf("proxytest: serve: %v", err)
		}
	})
	return ln.Addr().String()
}
