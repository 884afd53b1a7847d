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
	err, _ := r.err.Load().(error)
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
	err              atomic.Value
	closeOnce        sync.Once

	idle       time.Duration
	timer      *time.Timer
	lastSeen   int64 // up+down at the previous idle check; touched only by checkIdle
	idleClosed atomic.Bool
}

func (r *relay) copy(dst, src net.Conn, n *atomic.Int64) {
	buf := bufpool.Get()
	defer bufpool.Put(buf)
	// The counting writer hides dst's ReadFrom but keeps src's WriteTo, so a protocol
	// reader can still hand over its decrypted records without an extra copy.
	_, err := io.CopyBuffer(countingWriter{dst, n}, src, *buf)
	if err == nil {
		CloseWrite(dst)
		return
	}
	r.err.CompareAndSwap(nil, err)
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
