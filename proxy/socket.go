package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
)

// A Socket is a TCP connection of the data plane: what an inbound accepts and what a
// direct dial returns. It is the *net.TCPConn, read and written without the runtime's
// provision for a call that may block.
//
// The runtime treats every read(2) and write(2) as one that may block: it marks the
// thread as in a system call, and when the call outlasts a tick of its monitor (20 µs; a
// 64 KiB write into a loopback or veth peer takes about that, as the write runs the
// receiver's TCP path) it hands the processor to another thread, which must be woken,
// finds nothing to do and sleeps again. A socket here is non-blocking, so its calls only
// ever do CPU work, and that handoff is pure cost: on the VMess AEAD chains of `make
// bench` it was a tenth of our client's CPU time. Socket issues the same calls as
// raw system calls, through the descriptor's poller and locks, so deadlines, Close and
// the wait for readiness behave exactly as on the TCPConn, errors included.
type Socket struct {
	*net.TCPConn
	rc syscall.RawConn

	rd, wr socketCall
}

// socketCall is the state of a read or write in progress, with its callback for the
// RawConn bound once, so that a call allocates nothing. One read and one write may be
// in progress at a time; each holds its call's lock.
type socketCall struct {
	mu    sync.Mutex
	p     []byte
	n     int
	errno syscall.Errno // the system call's, if it failed
	fn    func(fd uintptr) bool
}

// NewSocket returns c as a Socket, or c itself if it is not a *net.TCPConn.
func NewSocket(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	s := &Socket{TCPConn: tc, rc: rc}
	s.bind()
	return s
}

// NetConn returns the TCPConn.
func (s *Socket) NetConn() net.Conn { return s.TCPConn }

func (s *Socket) opError(op string, err error) error {
	var raw *net.OpError
	if errors.As(err, &raw) {
		err = raw.Err // the RawConn's "raw-read": a close or a deadline
	}
	return &net.OpError{Op: op, Net: "tcp", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: err}
}

// TCPOf returns the TCP connection c is or wraps (through NetConn), if any.
func TCPOf(c net.Conn) (*net.TCPConn, bool) {
	for {
		if tc, ok := c.(*net.TCPConn); ok {
			return tc, true
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil, false
		}
		c = u.NetConn()
	}
}

// SocketDialer dials as net.Dialer does and returns TCP connections as Sockets.
type SocketDialer struct{ net.Dialer }

func (d *SocketDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.Dialer.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return NewSocket(c), nil
}
