package harness

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
)

func TestRecordingDialer(t *testing.T) {
	tg := StartBytesTarget(t, "tcp", 3, []byte("down"))
	d := &RecordingDialer{Hosts: map[string]string{"service.test:80": tg.Addr()}}
	conn, err := d.DialContext(context.Background(), "tcp", "service.test:80")
	if err != nil {
		t.Fatal(err)
	}
	tg.Exchange(t, conn, []byte("abc"), []byte("down"))
	conn.Close()
	if got := d.Dials(); !slices.Equal(got, []string{"service.test:80"}) {
		t.Errorf("dials %q, want [service.test:80]", got)
	}

	refused := errors.New("refused")
	d = &RecordingDialer{Err: refused}
	if _, err := d.DialContext(context.Background(), "tcp", "a.test:1"); err != refused {
		t.Errorf("err = %v, want %v", err, refused)
	}
	if got := d.Dials(); !slices.Equal(got, []string{"a.test:1"}) {
		t.Errorf("failed dials %q, want [a.test:1]", got)
	}
}

func TestOneByteDialer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	received := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- nil
			return
		}
		defer c.Close()
		c.Write([]byte("hello"))
		b, _ := io.ReadAll(c) // ends at the dialer's half-close
		received <- b
	}()

	conn, err := OneByteDialer{Dialer: &net.Dialer{}}.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 5)
	for range 5 {
		if n, err := conn.Read(buf); n != 1 || err != nil {
			t.Fatalf("Read = %d, %v; want one byte", n, err)
		}
	}
	conn.Write([]byte("bye"))
	if err := conn.(OneByteConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if b := <-received; string(b) != "bye" {
		t.Errorf("listener got %q before EOF, want \"bye\"", b)
	}
}

func TestScriptConn(t *testing.T) {
	c := NewScriptConn([]byte("request"))
	buf := make([]byte, 3)
	if n, err := c.Read(buf); n != 3 || err != nil || c.Consumed() != 3 {
		t.Fatalf("Read = %d, %v, consumed %d; want 3 bytes", n, err, c.Consumed())
	}
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "uest" || c.Consumed() != 7 {
		t.Fatalf("rest %q, %v, consumed %d; want \"uest\", 7", rest, err, c.Consumed())
	}
	c.Write([]byte("ans"))
	c.Write([]byte("wer"))
	if !bytes.Equal(c.Written(), []byte("answer")) {
		t.Errorf("written %q, want \"answer\"", c.Written())
	}
	if _, ok := c.LocalAddr().(*net.TCPAddr); !ok {
		t.Errorf("LocalAddr is %T, want *net.TCPAddr", c.LocalAddr())
	}
}
