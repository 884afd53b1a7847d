package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/proxychain/proxychain/proxy/internal/bufpool"
)

// RelayStats counts the payload bytes a relay moved.
type RelayStats struct {
	Up   int64 // client to upstream
	Down int64 // upstream to client
}

// Relay copies client->upstream and upstream->client until both directions end, then
// closes both connections.
//
// An EOF in one direction half-closes the other side (CloseWrite), so a request/response
// protocol that shuts down its sending side still gets its answer. An error in either
// direction closes both at once; a reset from one side is passed on as a reset to the
// other. When idle > 0 and no byte moves in either direction for that long, both
// connections are closed. The returned error is the first non-EOF error, if any.
func Relay(client, upstream net.Conn, idle time.Duration) (RelayStats, error) {
	r := relay{client: client, upstream: upstream}
	if idle > 0 {
		r.idle = idle
		r.timer = time.AfterFunc(idle, r.checkIdle)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.copy(upstream, client, &r.up)
	}()
	r.copy(client, upstream, &r.down)
	wg.Wait()
	if r.timer != nil {
		r.timer.Stop()
	}
	client.Close()
	upstream.Close()
	var err error
	if p := r.err.Load(); p != nil {
		err = *p
	}
	if r.idleClosed.Load() {
		err = ErrIdle
	}
	return RelayStats{Up: r.up.Load(), Down: r.down.Load()}, err
}

// ErrIdle is returned by Relay when it closed a connection for inactivity.
var ErrIdle = errors.New("proxy: idle timeout")

type relay struct {
	client, upstream net.Conn
	up, down         atomic.Int64
	err              atomic.Pointer[error] // the first; errors of any type (atomic.Value panics on mixed types)
	closeOnce        sync.Once

	idle       time.Duration
	timer      *time.Timer
	lastSeen   int64 // up+down at the previous idle check; touched only by checkIdle
	idleClosed atomic.Bool
}

func (r *relay) copy(dst, src net.Conn, n *atomic.Int64) {
	// The counting writer hides dst's ReadFrom; Copy keeps src's WriteTo, so a protocol
	// reader can still hand over its decrypted records without an extra copy.
	_, err := Copy(countingWriter{dst, n}, src)
	if err == nil {
		CloseWrite(dst)
		return
	}
	r.err.CompareAndSwap(nil, &err)
	r.closeOnce.Do(func() {
		if isReset(err) {
			abort(dst)
			abort(src)
		}
		r.client.Close()
		r.upstream.Close()
	})
}

func (r *relay) checkIdle() {
	total := r.up.Load() + r.down.Load()
	if total != r.lastSeen {
		r.lastSeen = total
		r.timer.Reset(r.idle)
		return
	}
	r.idleClosed.Store(true)
	r.closeOnce.Do(func() {
		r.client.Close()
		r.upstream.Close()
	})
}

// ReadWaiter is a conn that can wait for input without taking any, so that a reader
// need not hold a buffer while the peer is silent.
type ReadWaiter interface {
	// WaitReadable blocks until a Read would not block: data, EOF or an error is ready.
	// It consumes no payload, and it honours the read deadline (a timeout is returned).
	WaitReadable() error
}

// WaitReadable blocks until a Read on r would not block, where r can tell: a
// *net.TCPConn is peeked at, a ReadWaiter asked. Any other reader returns nil at once,
// and the Read that follows blocks as it always did.
func WaitReadable(r io.Reader) error {
	switch c := r.(type) {
	case ReadWaiter:
		return c.WaitReadable()
	case *net.TCPConn:
		rc, err := c.SyscallConn()
		if err != nil {
			return nil // closed: the Read reports it
		}
		if err := waitReadable(rc); err != nil {
			return &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
		}
	}
	return nil
}

// Copy copies src to w until EOF, holding a buffer only while bytes move.
//
// A protocol conn hands over its decoded records itself (WriteTo). A TCP conn or a
// ReadWaiter is read through a pooled buffer taken once data is waiting and returned when
// a read drains the source, so an idle copy holds no buffer. (Going through
// TCPConn.WriteTo instead would allocate a fresh 32 KiB io.Copy buffer and keep it while
// blocked.)
func Copy(w io.Writer, src io.Reader) (int64, error) {
	if _, ok := src.(*net.TCPConn); ok {
		return copyWaiting(w, src)
	}
	if wt, ok := src.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	if _, ok := src.(ReadWaiter); ok {
		return copyWaiting(w, src)
	}
	buf := bufpool.Get()
	defer bufpool.Put(buf)
	return io.CopyBuffer(w, readerOnly{src}, *buf)
}

func copyWaiting(w io.Writer, src io.Reader) (written int64, err error) {
	var buf *[]byte
	defer func() {
		if buf != nil {
			bufpool.Put(buf)
		}
	}()
	for {
		if buf == nil {
			if err := WaitReadable(src); err != nil {
				return written, err
			}
			buf = bufpool.Get()
		}
		nr, rerr := src.Read(*buf)
		if nr > 0 {
			nw, werr := w.Write((*buf)[:nr])
			written += int64(nw)
			if werr != nil {
				return written, werr
			}
			if nw < nr {
				return written, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
		if nr < len(*buf) {
			// The source is drained: wait for the next burst without a buffer.
			bufpool.Put(buf)
			buf = nil
		}
	}
}

// readerOnly hides a reader's WriteTo from io.CopyBuffer.
type readerOnly struct{ io.Reader }

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// abort makes the next Close send a TCP reset instead of a FIN, where c is (or wraps) a
// TCP connection.
func abort(c net.Conn) {
	for {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
			return
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return
		}
		c = u.NetConn()
	}
}
