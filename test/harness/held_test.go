package harness

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestHeldOpen(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	holds := ServeTCP(t, func(c net.Conn) { c.Write([]byte("hi")); <-release })
	closes := ServeTCP(t, func(c net.Conn) { c.Write([]byte("bye")) })
	dial := func(addr string) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c := dial(holds)
	if n, err := HeldOpen(c, time.Now().Add(50*time.Millisecond)); n != 2 || err != nil {
		t.Errorf("a connection the server holds: %d bytes, %v; want 2 and open", n, err)
	}
	n, err := HeldOpen(dial(closes), time.Now().Add(10*time.Second))
	if n != 3 || !errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "3 bytes read") {
		t.Errorf("a connection the server closes: %v, want EOF after 3 bytes", err)
	}
}
