package shadowsocks

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// wrapPair makes a and b the client and server ends of one Shadowsocks connection: the
// client's header goes out first (as a Read would send it), the server handshakes.
func wrapPair(t *testing.T, ciph *Cipher, a, b net.Conn) (client, server net.Conn, err error) {
	cl := NewClient("t", "unused:1", ciph, nil)
	cc, err := cl.wrap(a, addrBytes(t, "example.com:443"))
	if err != nil {
		return nil, nil, err
	}
	srv := NewServer(ciph, ServerOptions{Logger: quiet})
	type result struct {
		conn net.Conn
		dest string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		b.SetDeadline(time.Now().Add(5 * time.Second))
		r, err := srv.Handshake(context.Background(), b)
		b.SetDeadline(time.Time{})
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{conn: r.Conn, dest: r.Destination}
	}()
	if err := cc.sendHeader(); err != nil {
		return nil, nil, err
	}
	r := <-done
	if r.err != nil {
		return nil, nil, r.err
	}
	if r.dest != "example.com:443" {
		t.Errorf("destination %q", r.dest)
	}
	return cc, r.conn, nil
}

func pipeMaker(t *testing.T, ciph *Cipher, tcp, swap bool) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		var a, b net.Conn
		if tcp {
			a, b, err = tcpPair()
			if err != nil {
				return nil, nil, nil, err
			}
		} else {
			a, b = net.Pipe()
		}
		c1, c2, err = wrapPair(t, ciph, a, b)
		if err != nil {
			a.Close()
			b.Close()
			return nil, nil, nil, err
		}
		stop = func() { c1.Close(); c2.Close() }
		if swap {
			c1, c2 = c2, c1
		}
		return c1, c2, stop, nil
	}
}

func tcpPair() (net.Conn, net.Conn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	b, err := ln.Accept()
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// TestConn runs x/net/nettest's conformance suite on both ends of every method over a
// synchronous pipe, where any write can be cut short by a deadline at any byte, and on one
// method per edition over TCP.
func TestConn(t *testing.T) {
	if testing.Short() {
		t.Skip("nettest suite takes a few seconds")
	}
	for _, m := range Methods() {
		ciph := mustCipher(t, m)
		t.Run(m+"/pipe/client", func(t *testing.T) {
			t.Parallel()
			nettest.TestConn(t, pipeMaker(t, ciph, false, false))
		})
		t.Run(m+"/pipe/server", func(t *testing.T) {
			t.Parallel()
			nettest.TestConn(t, pipeMaker(t, ciph, false, true))
		})
	}
	for _, m := range []string{"none", "aes-256-cfb", "aes-128-gcm", "2022-blake3-chacha20-poly1305"} {
		ciph := mustCipher(t, m)
		t.Run(m+"/tcp/client", func(t *testing.T) {
			t.Parallel()
			nettest.TestConn(t, pipeMaker(t, ciph, true, false))
		})
		t.Run(m+"/tcp/server", func(t *testing.T) {
			t.Parallel()
			nettest.TestConn(t, pipeMaker(t, ciph, true, true))
		})
	}
}
