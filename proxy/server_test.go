package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A Shutdown that runs before the accept loop starts (a reload retiring an inbound it
// has just built) still frees the address: Serve closes the listener it is handed.
func TestServeAfterShutdownClosesListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var s Server
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v, want ErrServerClosed", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the listener still accepts connections")
	}
}

// failingListener fails its first accepts as a process out of descriptors does.
type failingListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

type handshakeSeen chan struct{}

func (h handshakeSeen) Handshake(context.Context, net.Conn) (*Request, error) {
	h <- struct{}{}
	return nil, errors.New("test: no request")
}

// Running out of descriptors passes once connections end; the inbound must still be
// serving then, not leave its port queueing connections nobody accepts.
func TestServeOutlivesAcceptErrors(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &failingListener{Listener: inner}
	ln.fails.Store(3)
	seen := make(handshakeSeen, 1)
	s := &Server{Inbound: seen, Options: ServerOptions{Logger: slog.New(slog.DiscardHandler)}}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-seen:
	case err := <-served:
		t.Fatalf("Serve returned after a failed accept: %v", err)
	case <-time.After(10 * time.Second): // a bound, not a measurement
		t.Error("the connection was not served")
	}
	s.Shutdown(context.Background())
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v, want ErrServerClosed", err)
	}
	if n := ln.fails.Load(); n >= 0 {
		t.Errorf("%d injected failures left", n+1)
	}
}
