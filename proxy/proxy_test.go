package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

// A hop's name goes on its failures only: nil and a clean end of stream pass as they are,
// and a wrapped error still matches what it wraps.
func TestHopWrap(t *testing.T) {
	h := Hop{Protocol: "vmess", Tag: "DOUS", Server: "10.0.0.4:443"}
	if err := h.Wrap(nil); err != nil {
		t.Errorf("Wrap(nil) = %v", err)
	}
	if err := h.Wrap(io.EOF); err != io.EOF {
		t.Errorf("Wrap(io.EOF) = %v, want io.EOF itself", err)
	}
	err := h.Wrap(syscall.ECONNREFUSED)
	if want := `vmess "DOUS" (10.0.0.4:443): connection refused`; err.Error() != want {
		t.Errorf("Wrap = %q, want %q", err, want)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%v does not match ECONNREFUSED", err)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("%v reads as a timeout", err)
	}
	// net.Conn asks that a read past its deadline fail with a net.Error that says so.
	err = h.Wrap(&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded})
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("%v (%T) is not a timeout net.Error", err, err)
	}
}
