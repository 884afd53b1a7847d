package proxy

import (
	"errors"
	"io"
	"net"
	"os"
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

// quietAfter bounds how long a relay direction waits for input with a goroutine of its
// own before it parks without one (see StartRelay): it looks every quietAfter/2, and parks
// at the first look that finds no byte moved since the one before. Bursts within a busy
// stream come far closer together, so they never pay for parking; a connection that has
// gone quiet costs its protocol state alone. A variable for tests.
var quietAfter = time.Second

// Relay copies client->upstream and upstream->client until both directions end, then
// closes both connections. It is StartRelay, waited for.
func Relay(client, upstream net.Conn, t Timeouts) (RelayStats, error) {
	type result struct {
		stats RelayStats
		err   error
	}
	done := make(chan result, 1)
	StartRelay(client, upstream, t, func(s RelayStats, err error) { done <- result{s, err} })
	r := <-done
	return r.stats, r.err
}

// Timeouts bound how long a relay may go without moving a byte, as V2Ray's policy
// levels do (connIdle, uplinkOnly, downlinkOnly). Zero means no limit, or for the
// half-closed ones, Idle.
type Timeouts struct {
	Idle time.Duration // while both directions are open
	// UplinkOnly applies once the upstream has finished sending, DownlinkOnly once the
	// client has.
	UplinkOnly, DownlinkOnly time.Duration
}

// StartRelay starts copying client->upstream and upstream->client and returns at once;
// done runs once both directions have ended and both connections are closed, with the
// first non-EOF error, if any.
//
// An EOF in one direction half-closes the other side (CloseWrite), so a request/response
// protocol that shuts down its sending side still gets its answer. An error in either
// direction closes both at once; a reset from one side is passed on as a reset to the
// other. When no byte moves in either direction for as long as t allows, both
// connections are closed and the error is ErrIdle.
//
// A direction whose source has gone quiet parks within a second: on Linux, where the
// source is (or is layered on) a socket, it leaves the runtime's poller for an epoll set
// shared by all relays, and its goroutine ends, so an idle connection costs no goroutine
// stack. Input wakes it on a new goroutine that carries on with the same reader.
func StartRelay(client, upstream net.Conn, t Timeouts, done func(RelayStats, error)) *ActiveRelay {
	r := &ActiveRelay{client: client, upstream: upstream, done: done, timeouts: t, quietAfter: quietAfter}
	r.live.Store(2)
	r.up = direction{relay: r, src: client, dst: upstream}
	r.down = direction{relay: r, src: upstream, dst: client}
	for _, d := range []*direction{&r.up, &r.down} {
		d.wait.rc = parkable(d.src)
		d.wait.resume = d.run
	}
	r.setIdle(t.Idle)
	go r.up.run()
	go r.down.run()
	return r
}

// ErrIdle is returned by Relay when it closed a connection for inactivity.
var ErrIdle = errors.New("proxy: idle timeout")

// An ActiveRelay is a relay started by StartRelay.
type ActiveRelay struct {
	client, upstream net.Conn
	up, down         direction
	live             atomic.Int32          // directions still running or parked
	err              atomic.Pointer[error] // the first; errors of any type (atomic.Value panics on mixed types)
	done             func(RelayStats, error)

	mu      sync.Mutex // orders parking against closing
	closing bool

	quietAfter time.Duration // the package's, as the relay started

	timeouts   Timeouts
	idleMu     sync.Mutex // guards idle, timer and lastSeen
	idle       time.Duration
	timer      *time.Timer
	lastSeen   int64 // up+down at the previous idle check
	idleClosed atomic.Bool
}

// Close ends the relay at once: both connections are closed, and done runs once every
// direction has stopped.
func (r *ActiveRelay) Close() error {
	r.shut(false)
	return nil
}

// shut closes both connections once, first sending resets if reset is set. Directions
// parked at that moment are taken off the poller and end here; the others end when
// their reads or writes fail.
func (r *ActiveRelay) shut(reset bool) {
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return
	}
	r.closing = true
	var ended []*direction
	for _, d := range []*direction{&r.up, &r.down} {
		if d.wait.rc != nil && unpark(&d.wait) {
			ended = append(ended, d)
		}
	}
	r.mu.Unlock()
	if reset {
		abort(r.client)
		abort(r.upstream)
	}
	r.client.Close()
	r.upstream.Close()
	for _, d := range ended {
		d.end()
	}
}

func (r *ActiveRelay) fail(err error) {
	r.err.CompareAndSwap(nil, &err)
	r.shut(isReset(err))
}

// setIdle makes d the time allowed without a byte moving, counted from now; 0 lifts
// the limit.
func (r *ActiveRelay) setIdle(d time.Duration) {
	r.idleMu.Lock()
	defer r.idleMu.Unlock()
	r.idle = d
	r.lastSeen = r.up.n.Load() + r.down.n.Load()
	switch {
	case d <= 0:
		if r.timer != nil {
			r.timer.Stop()
		}
	case r.timer == nil:
		r.timer = time.AfterFunc(d, r.checkIdle)
	default:
		r.timer.Reset(d)
	}
}

func (r *ActiveRelay) checkIdle() {
	r.idleMu.Lock()
	if r.idle <= 0 {
		r.idleMu.Unlock()
		return // lifted since the timer fired
	}
	if total := r.up.n.Load() + r.down.n.Load(); total != r.lastSeen {
		r.lastSeen = total
		r.timer.Reset(r.idle)
		r.idleMu.Unlock()
		return
	}
	r.idleClosed.Store(true)
	r.idleMu.Unlock()
	r.shut(false)
}

// finish runs when the last direction has ended.
func (r *ActiveRelay) finish() {
	r.setIdle(0)
	r.client.Close()
	r.upstream.Close()
	var err error
	if p := r.err.Load(); p != nil {
		err = *p
	}
	if r.idleClosed.Load() {
		err = ErrIdle
	}
	r.done(RelayStats{Up: r.up.n.Load(), Down: r.down.n.Load()}, err)
}

// direction copies one way. It runs on a goroutine of its own while bytes move, and
// parks without one once its source has been quiet for quietAfter.
type direction struct {
	relay    *ActiveRelay
	src, dst net.Conn
	n        atomic.Int64
	wait     parkedRead // wait.rc is nil where the source cannot park
}

func (d *direction) run() {
	r := d.relay
	for {
		if d.wait.rc != nil {
			d.src.SetReadDeadline(time.Now().Add(r.quietAfter / 2))
		}
		before := d.n.Load()
		// The counting writer hides dst's ReadFrom; Copy keeps src's WriteTo, so a
		// protocol reader can still hand over its decrypted records without an extra copy.
		_, err := Copy(countingWriter{d.dst, &d.n}, d.src)
		if err == nil {
			CloseWrite(d.dst)
			d.halfClosed()
			d.end()
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && d.wait.rc != nil {
			// Every protocol layer keeps its place across a timeout, so the same reader
			// carries on later. A deadline that passed while bytes moved only renews it.
			if d.n.Load() == before && d.park() {
				return
			}
			continue
		}
		r.fail(err)
		d.end()
		return
	}
}

// park registers the direction's source with the poller, which runs d.run again once
// the source is readable. It reports false if the relay is closing or the source closed:
// the caller then carries on and meets the error.
func (d *direction) park() (parked bool) {
	r := d.relay
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.closing && park(&d.wait)
}

// halfClosed applies the half-closed timeout once d's source has finished sending.
func (d *direction) halfClosed() {
	r := d.relay
	t := r.timeouts.DownlinkOnly // the client is done: only the downlink remains
	if d == &r.down {
		t = r.timeouts.UplinkOnly
	}
	if t > 0 {
		r.setIdle(t)
	}
}

func (d *direction) end() {
	if d.relay.live.Add(-1) == 0 {
		d.relay.finish()
	}
}

// ReadWaiter is a conn that can wait for input without taking any, so that a reader
// need not hold a buffer while the peer is silent.
type ReadWaiter interface {
	// WaitReadable blocks until a Read would not block: data, EOF or an error is ready.
	// It consumes no payload, and it honours the read deadline (a timeout is returned).
	WaitReadable() error
}

// WaitReadable blocks until a Read on r would not block, where r can tell: a TCP socket
// (a *net.TCPConn or a Socket) is peeked at, a ReadWaiter asked. Any other reader returns
// nil at once, and the Read that follows blocks as it always did.
func WaitReadable(r io.Reader) error {
	if w, ok := r.(ReadWaiter); ok {
		return w.WaitReadable()
	}
	rc := socketOf(r)
	if rc == nil {
		return nil
	}
	if err := waitReadable(rc); err != nil {
		c := r.(net.Conn)
		return &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	return nil
}

// socketOf returns the raw conn of r if r is a TCP socket itself (a *net.TCPConn or a
// Socket; not a conn layered on one, which may hold bytes of its own), else nil.
func socketOf(r io.Reader) syscall.RawConn {
	switch c := r.(type) {
	case *Socket:
		return c.rc
	case *net.TCPConn:
		if rc, err := c.SyscallConn(); err == nil {
			return rc
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
	if socketOf(src) != nil {
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
	rc := rawSocket(src)
	var buf *[]byte
	defer func() {
		if buf != nil {
			bufpool.Put(buf)
		}
	}()
	for {
		var nr int
		var rerr error
		if buf == nil {
			buf, nr, rerr = readFresh(src, rc)
		} else {
			nr, rerr = src.Read(*buf)
		}
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
		} else {
			buf = bufpool.Grow(buf)
		}
	}
}

// ReadFresh waits for input on src and reads it into a buffer from the data plane's pool
// (internal/bufpool), taken only once input is there, so a reader holds none while it
// waits. On a TCP socket one read(2) both waits and reads, where WaitReadable and a Read
// take two. The buffer comes back whenever one was taken, even with an error; the caller
// owns it.
func ReadFresh(src io.Reader) (*[]byte, int, error) {
	return readFresh(src, rawSocket(src))
}

// LargeBuffer returns the buffer a protocol reader of src moves to once src is saturated
// (see bufpool): a LargeSize one where src is a socket, and where src is another
// protocol layer a LayeredSize one, with room for all that layer hands up in one read.
func LargeBuffer(src io.Reader) *[]byte {
	if socketOf(src) != nil {
		return bufpool.GetLarge()
	}
	return bufpool.GetLayered()
}

// rawSocket returns src's raw conn if ReadFresh reads it directly, else nil.
func rawSocket(src io.Reader) syscall.RawConn {
	if !canReadRaw {
		return nil
	}
	return socketOf(src)
}

// readFresh is ReadFresh with src's rawSocket, which a loop can look up once.
func readFresh(src io.Reader, rc syscall.RawConn) (*[]byte, int, error) {
	if rc != nil {
		buf, n, err := readSocketFresh(rc)
		if err != nil && err != io.EOF {
			c := src.(net.Conn)
			err = &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
		}
		return buf, n, err
	}
	if err := WaitReadable(src); err != nil {
		return nil, 0, err
	}
	buf := bufpool.Get()
	n, err := src.Read(*buf)
	return buf, n, err
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
	if tc, ok := TCPOf(c); ok {
		tc.SetLinger(0)
	}
}
