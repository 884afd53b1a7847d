package harness

import (
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
)

// startSOCKS5 serves a bare SOCKS5 CONNECT (no auth) on loopback. Every request goes to
// target whatever it names; the names requested are sent on requested, so a test can see
// whether a domain arrived unresolved.
func startSOCKS5(t *testing.T, target string) (addr string, requested <-chan string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	names := make(chan string, 16)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer client.Close()
				name, err := readSOCKS5Request(client)
				if err != nil {
					t.Errorf("socks5 server: %v", err)
					return
				}
				names <- name
				upstream, err := net.Dial("tcp", target)
				if err != nil {
					t.Errorf("socks5 server: %v", err)
					return
				}
				defer upstream.Close()
				// Succeeded, bound to 0.0.0.0:0.
				if _, err := client.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil {
					return
				}
				var pair sync.WaitGroup
				pair.Go(func() {
					io.Copy(upstream, client)
					upstream.(*net.TCPConn).CloseWrite()
				})
				io.Copy(client, upstream)
				client.(*net.TCPConn).CloseWrite()
				pair.Wait()
			})
		}
	})
	return ln.Addr().String(), names
}

// readSOCKS5Request reads the greeting and a CONNECT request, answers the greeting, and
// returns the requested host:port as the client sent it.
func readSOCKS5Request(c net.Conn) (string, error) {
	var greeting [2]byte
	if _, err := io.ReadFull(c, greeting[:]); err != nil {
		return "", err
	}
	if _, err := io.ReadFull(c, make([]byte, greeting[1])); err != nil {
		return "", err
	}
	if _, err := c.Write([]byte{5, 0}); err != nil {
		return "", err
	}
	var req [4]byte // ver, cmd, rsv, atyp
	if _, err := io.ReadFull(c, req[:]); err != nil {
		return "", err
	}
	var host string
	switch req[3] {
	case 1:
		ip := make([]byte, 4)
		if _, err := io.ReadFull(c, ip); err != nil {
			return "", err
		}
		host = net.IP(ip).String()
	case 3:
		var n [1]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return "", err
		}
		name := make([]byte, n[0])
		if _, err := io.ReadFull(c, name); err != nil {
			return "", err
		}
		host = "name/" + string(name)
	default:
		return "", io.ErrUnexpectedEOF
	}
	var port [2]byte
	if _, err := io.ReadFull(c, port[:]); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:])))), nil
}

func TestDialSOCKS5(t *testing.T) {
	tg := StartTarget(t)
	proxyAddr, requested := startSOCKS5(t, tg.Addr())
	for _, c := range []struct{ target, want string }{
		{"127.0.0.1:8080", "127.0.0.1:8080"},
		// A name the test machine cannot resolve: it must reach the proxy as a name.
		{"target.proxychain.invalid:443", "name/target.proxychain.invalid:443"},
	} {
		conn, err := DialSOCKS5(proxyAddr, c.target)
		if err != nil {
			t.Fatalf("DialSOCKS5(%s): %v", c.target, err)
		}
		if got := <-requested; got != c.want {
			t.Errorf("proxy was asked for %q, want %q", got, c.want)
		}
		if err := Exchange(conn, 100<<10, 100<<10); err != nil {
			t.Errorf("exchange via %s: %v", c.target, err)
		}
	}
}

func TestDialSOCKS5NoProxy(t *testing.T) {
	addr := LoopbackAddr(FreePort(t))
	if conn, err := DialSOCKS5(addr, "127.0.0.1:80"); err == nil {
		conn.Close()
		t.Fatalf("DialSOCKS5 via %s, where nothing listens, succeeded", addr)
	}
}
