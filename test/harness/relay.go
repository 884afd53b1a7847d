package harness

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Relay is a loopback TCP relay put in front of a server: it passes every connection
// on to the backend unchanged and counts the connections and bytes it carried, so a test
// can check that its traffic really went through that server rather than around it. An
// EOF one way is passed on as a half-close. An Observer sees every byte on the way.
type Relay struct {
	ln      net.Listener
	backend string
	observe Observer
	wg      sync.WaitGroup

	conns    atomic.Int64
	up, down atomic.Int64 // client to backend, and back

	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
}

// Observer is told of each connection a Relay accepts, and returns what sees every read
// of it, up (client to backend) or down, before the bytes are passed on.
type Observer func(client net.Conn) func(up bool, p []byte)

// StartRelay listens on a fresh 127.0.0.1 port and relays to backend until the test ends;
// then it closes the listener and every open connection, and waits for its goroutines.
func StartRelay(t testing.TB, backend string) *Relay {
	return StartRelayOn(t, "127.0.0.1:0", backend, nil)
}

// StartRelayOn is StartRelay listening on listen, with observe (if not nil) shown every
// connection and byte.
func StartRelayOn(t testing.TB, listen, backend string, observe Observer) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("harness: relay: %v", err)
	}
	r := &Relay{ln: ln, backend: backend, observe: observe, open: map[net.Conn]struct{}{}}
	r.wg.Go(r.serve)
	t.Cleanup(r.stop)
	return r
}

// Addr is where clients reach the backend through the relay.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Conns returns how many connections the relay has passed on to the backend.
func (r *Relay) Conns() int { return int(r.conns.Load()) }

// Bytes returns how many bytes the relay has carried to the backend (up) and back
// (down). A byte is counted once it is read, before it is passed on, so whatever the far
// end has received is already counted.
func (r *Relay) Bytes() (up, down int64) { return r.up.Load(), r.down.Load() }

func (r *Relay) serve() {
	for {
		client, err := r.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.DialTimeout("tcp", r.backend, 10*time.Second)
		if err != nil {
			client.Close()
			continue
		}
		if !r.track(client, server) {
			client.Close()
			server.Close()
			return
		}
		r.conns.Add(1)
		seen := func(bool, []byte) {}
		if r.observe != nil {
			seen = r.observe(client)
		}
		r.wg.Go(func() {
			var both sync.WaitGroup
			both.Go(func() { relayCopy(server, client, &r.up, func(p []byte) { seen(true, p) }) })
			relayCopy(client, server, &r.down, func(p []byte) { seen(false, p) })
			both.Wait()
			r.untrack(client, server)
		})
	}
}

// relayCopy counts and shows each read before passing it on, so whatever the far end
// has received is already counted and seen.
func relayCopy(dst, src net.Conn, n *atomic.Int64, seen func([]byte)) {
	buf := make([]byte, 32<<10)
	for {
		m, err := src.Read(buf)
		if m > 0 {
			n.Add(int64(m))
			seen(buf[:m])
			if _, werr := dst.Write(buf[:m]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				dst.(*net.TCPConn).CloseWrite()
			} else {
				dst.Close()
			}
			return
		}
	}
}

func (r *Relay) track(client, server net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.open[client], r.open[server] = struct{}{}, struct{}{}
	return true
}

func (r *Relay) untrack(client, server net.Conn) {
	client.Close()
	server.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.open, client)
	delete(r.open, server)
}

func (r *Relay) stop() {
	r.mu.Lock()
	r.closed = true
	for c := range r.open {
		c.Close()
	}
	r.mu.Unlock()
	r.ln.Close()
	r.wg.Wait()
}
