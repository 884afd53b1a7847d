package proxytest

import (
	"io"
	"net"
	"testing"
)

// TestEchoStream moves parts through a plain echo server and finishes cleanly; the reload
// tests that hold many of these depend on Finish passing only when every byte came back.
func TestEchoStream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	s := OpenEchoStream(t, &net.Dialer{}, ln.Addr().String())
	for _, n := range []int{1, 4 << 10, 256 << 10} {
		s.Part(t, n)
	}
	s.Finish(t)
}
