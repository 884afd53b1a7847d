package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestSocketLikeTCPConn: a Socket reads and writes as its TCPConn does: the same bytes,
// and the same results for an empty read, at EOF, past a deadline, after a reset and
// after Close. Every check runs on a plain TCPConn as well, which shows that what it
// expects is what a TCPConn does.
func TestSocketLikeTCPConn(t *testing.T) {
	forEachShape(t, func(t *testing.T, wrap func(net.Conn) net.Conn) {
		pair := func(t *testing.T) (a, b net.Conn) {
			ta, tb := tcpPair(t)
			t.Cleanup(func() { ta.Close(); tb.Close() })
			return wrap(ta), wrap(tb)
		}

		t.Run("bytes", func(t *testing.T) {
			a, b := pair(t)
			payload := make([]byte, 8<<20)
			rng := rand.New(rand.NewPCG(3, 4))
			for i := range payload {
				payload[i] = byte(rng.Uint32())
			}
			// Writes far over the socket buffers, read in small pieces, so that writes
			// wait for room and reads find partial data.
			go func() {
				for p := payload; len(p) > 0; {
					n := min(len(p), 1+rng.IntN(1<<20))
					if m, err := a.Write(p[:n]); m != n || err != nil {
						t.Errorf("Write of %d bytes: %d, %v", n, m, err)
						return
					}
					p = p[n:]
				}
				a.(interface{ CloseWrite() error }).CloseWrite()
			}()
			h := sha256.New()
			buf := make([]byte, 70000)
			for {
				n, err := b.Read(buf[:1+rand.IntN(len(buf))])
				h.Write(buf[:n])
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					t.Fatal("Read returned 0, nil: neither bytes nor EOF")
				}
			}
			if want := sha256.Sum256(payload); [32]byte(h.Sum(nil)) != want {
				t.Fatal("the bytes read differ from those written")
			}
		})

		t.Run("empty read", func(t *testing.T) {
			_, b := pair(t)
			if n, err := b.Read(nil); n != 0 || err != nil {
				t.Fatalf("Read(nil) = %d, %v; want 0, nil", n, err)
			}
		})

		t.Run("EOF", func(t *testing.T) {
			a, b := pair(t)
			a.(interface{ CloseWrite() error }).CloseWrite()
			if n, err := b.Read(make([]byte, 10)); n != 0 || err != io.EOF {
				t.Fatalf("Read after the peer's CloseWrite = %d, %v; want 0, io.EOF", n, err)
			}
		})

		t.Run("read deadline", func(t *testing.T) {
			_, b := pair(t)
			b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := b.Read(make([]byte, 10))
			wantOpError(t, err, "read", b, os.ErrDeadlineExceeded)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("%v is not a timeout", err)
			}
		})

		t.Run("write deadline", func(t *testing.T) {
			a, b := pair(t)
			big := make([]byte, 64<<20) // more than the buffers hold; nobody reads
			a.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := a.Write(big)
			wantOpError(t, err, "write", a, os.ErrDeadlineExceeded)
			// n is what was sent, no more and no less.
			a.(interface{ CloseWrite() error }).CloseWrite()
			got, rerr := io.Copy(io.Discard, b)
			if rerr != nil || got != int64(n) || n == 0 {
				t.Fatalf("Write reported %d bytes; the peer read %d (%v)", n, got, rerr)
			}
		})

		t.Run("reset", func(t *testing.T) {
			a, b := pair(t)
			tcp, _ := TCPOf(a)
			tcp.SetLinger(0)
			a.Close()
			_, err := b.Read(make([]byte, 10))
			wantOpError(t, err, "read", b, syscall.ECONNRESET)
			_, err = b.Write([]byte("after the reset"))
			if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("Write after a reset: %v, want EPIPE or ECONNRESET", err)
			}
		})

		t.Run("closed", func(t *testing.T) {
			_, b := pair(t)
			b.Close()
			_, err := b.Read(make([]byte, 10))
			wantOpError(t, err, "read", b, net.ErrClosed)
			_, err = b.Read(nil)
			wantOpError(t, err, "read", b, net.ErrClosed)
			_, err = b.Write([]byte("x"))
			wantOpError(t, err, "write", b, net.ErrClosed)
		})
	})
}

// wantOpError fails t unless err is the *net.OpError a TCPConn returns for op on c,
// wrapping target.
func wantOpError(t *testing.T, err error, op string, c net.Conn, target error) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || !errors.Is(err, target) {
		t.Fatalf("%s: %v, want a *net.OpError wrapping %v", op, err, target)
	}
	if oe.Op != op || oe.Net != "tcp" || oe.Source.String() != c.LocalAddr().String() || oe.Addr.String() != c.RemoteAddr().String() {
		t.Errorf("%s: %#v, want op %q on tcp from %s to %s", op, oe, op, c.LocalAddr(), c.RemoteAddr())
	}
}

// TestSocketsAtTheEdges: what a Server accepts reaches its inbound as a Socket, and a
// SocketDialer dials one.
func TestSocketsAtTheEdges(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	s := &Server{Inbound: inboundFunc(func(_ context.Context, c net.Conn) (*Request, error) {
		accepted <- c
		return nil, errors.New("test: no request")
	})}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	defer func() {
		s.Shutdown(context.Background())
		<-served
	}()

	c, err := (&SocketDialer{}).DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*Socket); !ok {
		t.Errorf("SocketDialer dialed a %T", c)
	}
	if in := <-accepted; true {
		if _, ok := in.(*Socket); !ok {
			t.Errorf("the inbound got a %T", in)
		}
	}
}

type inboundFunc func(context.Context, net.Conn) (*Request, error)

func (f inboundFunc) Handshake(ctx context.Context, c net.Conn) (*Request, error) { return f(ctx, c) }

// TestSocketAllocatesNothing: a read and a write go through callbacks bound once, so
// neither allocates.
func TestSocketAllocatesNothing(t *testing.T) {
	a, b := tcpPair(t)
	defer a.Close()
	defer b.Close()
	sa, sb := NewSocket(a), NewSocket(b)
	buf := make([]byte, 1024)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := sa.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(sb, buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a write and a read allocate %v times, want 0", allocs)
	}
}

// TestSocketOrdersMemory: what a goroutine did before writing to a Socket happens before
// what the reader does after reading it, for the race detector too, as with a TCPConn
// (run with -race: without the annotations of race.go it reports `before` below).
func TestSocketOrdersMemory(t *testing.T) {
	forEachShape(t, func(t *testing.T, wrap func(net.Conn) net.Conn) {
		ta, tb := tcpPair(t)
		defer ta.Close()
		defer tb.Close()
		a, b := wrap(ta), wrap(tb)
		var before int
		go func() {
			before = 1
			a.Write([]byte{1})
		}()
		var p [1]byte
		if _, err := io.ReadFull(b, p[:]); err != nil {
			t.Fatal(err)
		}
		if before != 1 {
			t.Fatal("the write's earlier store is not visible after the read")
		}
	})
}
