package blackhole

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
)

func TestNoneBlocks(t *testing.T) {
	for _, response := range []string{"", ResponseNone} {
		b, err := New("block", response)
		if err != nil {
			t.Fatal(err)
		}
		c, err := b.DialContext(context.Background(), "tcp", "example.com:80")
		if !errors.Is(err, ErrBlocked) || c != nil {
			t.Errorf("response %q: conn %v, err %v; want ErrBlocked", response, c, err)
		}
	}
}

func TestHTTPAnswers403(t *testing.T) {
	b, err := New("block", ResponseHTTP)
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.DialContext(context.Background(), "tcp", "example.com:80")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")); err != nil || n != 37 {
		t.Fatalf("write = %d, %v", n, err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != httpForbidden {
		t.Errorf("answer = %q", got)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second close: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New("x", "html"); err == nil {
		t.Error("unknown response accepted")
	}
	b, _ := New("x", ResponseHTTP)
	if _, err := b.DialContext(context.Background(), "udp", "1.1.1.1:53"); err == nil {
		t.Error("udp accepted")
	}
	if b.Tag() != "x" {
		t.Errorf("Tag = %q", b.Tag())
	}
}
