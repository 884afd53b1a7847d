package harness

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Target is a loopback TCP server at the far end of a chain: it answers Exchange.
// It stops, closing every connection and waiting for its goroutines, when the test ends.
type Target struct {
	t  testing.TB
	ln net.Listener
	wg sync.WaitGroup

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	remotes []net.Addr
	closed  bool
}

// StartTarget starts a Target on 127.0.0.1.
func StartTarget(t testing.TB) *Target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: start target: %v", err)
	}
	tg := &Target{t: t, ln: ln, conns: make(map[net.Conn]struct{})}
	tg.wg.Go(tg.serve)
	t.Cleanup(tg.stop)
	return tg
}

// Addr returns the target's host:port.
func (tg *Target) Addr() string { return tg.ln.Addr().String() }

// Remotes returns the remote address of every connection the target accepted, in order,
// so a test can check which hop the destination saw the connection come from (bind each
// hop to its own loopback address, 127.0.0.2 and up, to tell them apart). It includes
// connections that never completed an exchange, such as a WaitListening probe.
func (tg *Target) Remotes() []net.Addr {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]net.Addr(nil), tg.remotes...)
}

func (tg *Target) serve() {
	for {
		conn, err := tg.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				tg.t.Logf("harness: target accept: %v", err)
			}
			return
		}
		if !tg.track(conn) {
			conn.Close()
			return
		}
		tg.wg.Go(func() {
			defer tg.untrack(conn)
			if err := answer(conn); err != nil {
				// The client sees the failure as a wrong or short answer; this log says
				// what the target saw.
				tg.t.Logf("harness target: connection from %s: %v", conn.RemoteAddr(), err)
			}
		})
	}
}

func (tg *Target) track(conn net.Conn) bool {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.closed {
		return false
	}
	tg.conns[conn] = struct{}{}
	tg.remotes = append(tg.remotes, conn.RemoteAddr())
	return true
}

func (tg *Target) untrack(conn net.Conn) {
	conn.Close()
	tg.mu.Lock()
	defer tg.mu.Unlock()
	delete(tg.conns, conn)
}

func (tg *Target) stop() {
	tg.mu.Lock()
	tg.closed = true
	for conn := range tg.conns {
		conn.Close()
	}
	tg.mu.Unlock()
	tg.ln.Close()
	tg.wg.Wait()
}

// answer serves one exchange: it streams the down bytes while hashing the up bytes, then
// reports the hash and closes. An upload that ends early is still hashed and reported,
// so the client learns of the truncation from the mismatch.
func answer(conn net.Conn) error {
	if err := conn.SetDeadline(time.Now().Add(exchangeTimeout)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	raw := make([]byte, headerLen)
	if _, err := io.ReadFull(conn, raw); err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	h, err := parseHeader(raw)
	if err != nil {
		return err
	}

	sendErr := make(chan error, 1)
	go func() {
		_, err := sendStream(conn, stream(h.seed, dirDown), h.down)
		if err != nil {
			conn.Close() // unblock the reader; the client sees a short down stream
		}
		sendErr <- err
	}()

	sum := sha256.New()
	received, recvErr := io.CopyN(sum, conn, h.up)
	upEndedEarly := errors.Is(recvErr, io.EOF)
	if recvErr != nil && !upEndedEarly {
		conn.Close() // unblock the sender
		<-sendErr
		return fmt.Errorf("up stream after %d of %d bytes: %w", received, h.up, recvErr)
	}
	if err := <-sendErr; err != nil {
		return fmt.Errorf("down stream: %w", err)
	}
	if _, err := conn.Write(sum.Sum(nil)); err != nil {
		return fmt.Errorf("report sha256: %w", err)
	}
	if upEndedEarly {
		return fmt.Errorf("up stream ended after %d of %d bytes (reported its hash)", received, h.up)
	}
	return nil
}
