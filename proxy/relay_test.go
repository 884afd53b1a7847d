package proxy

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxychain/proxychain/proxy/internal/bufpool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

// tcpShapes are the two forms in which a TCP connection reaches a relay: as dialed or
// accepted by the data plane (a Socket), and as a plain TCPConn from elsewhere.
var tcpShapes = []struct {
	name string
	wrap func(net.Conn) net.Conn
}{
	{"Socket", NewSocket},
	{"TCPConn", func(c net.Conn) net.Conn { return c }},
}

// relayed starts Relay between two loopback connections, each passed through wrap, and
// returns the app end and the target end, and a channel with Relay's result.
func relayed(t testing.TB, idle time.Duration, wrap func(net.Conn) net.Conn) (app, target *net.TCPConn, done chan error) {
	app, client := tcpPair(t)
	upstream, target := tcpPair(t)
	done = make(chan error, 1)
	go func() {
		_, err := Relay(wrap(client), wrap(upstream), Timeouts{Idle: idle})
		done <- err
	}()
	return app, target, done
}

// forEachShape runs test as a subtest for each of tcpShapes.
func forEachShape(t *testing.T, test func(t *testing.T, wrap func(net.Conn) net.Conn)) {
	for _, shape := range tcpShapes {
		t.Run(shape.name, func(t *testing.T) { test(t, shape.wrap) })
	}
}

// TestRelayBytes: 8 MiB each way, written in odd sizes, arrive intact; half-closes pass.
func TestRelayBytes(t *testing.T) { forEachShape(t, testRelayBytes) }

func testRelayBytes(t *testing.T, wrap func(net.Conn) net.Conn) {
	app, target, done := relayed(t, 0, wrap)
	defer app.Close()
	defer target.Close()
	up, down := make([]byte, 8<<20), make([]byte, 8<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range up {
		up[i], down[i] = byte(rng.Uint32()), byte(rng.Uint32())
	}
	// Each end's writes may block until the other end reads: the readers run already.
	send := func(c *net.TCPConn, b []byte) {
		for len(b) > 0 {
			n := min(len(b), 1+rng.IntN(70000))
			if _, err := c.Write(b[:n]); err != nil {
				t.Error(err)
				return
			}
			b = b[n:]
		}
		c.CloseWrite()
	}
	var wg sync.WaitGroup
	var gotUp, gotDown []byte
	wg.Go(func() { gotUp, _ = io.ReadAll(target) })
	wg.Go(func() { gotDown, _ = io.ReadAll(app) })
	send(app, up)
	send(target, down)
	wg.Wait()
	if sha256.Sum256(gotUp) != sha256.Sum256(up) || !bytes.Equal(gotDown, down) {
		t.Fatalf("up %d bytes, down %d bytes, hashes differ", len(gotUp), len(gotDown))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRelayPassesReset: a target that resets makes the app's read fail with ECONNRESET,
// not a clean EOF.
func TestRelayPassesReset(t *testing.T) { forEachShape(t, testRelayPassesReset) }

func testRelayPassesReset(t *testing.T, wrap func(net.Conn) net.Conn) {
	app, target, done := relayed(t, 0, wrap)
	defer app.Close()
	if _, err := app.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := io.ReadFull(target, b[:]); err != nil {
		t.Fatal(err)
	}
	target.SetLinger(0)
	target.Close()
	app.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := app.Read(b[:])
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("app read: %v, want ECONNRESET", err)
	}
	if err := <-done; !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("relay: %v, want ECONNRESET", err)
	}
}

// TestIdleRelayHoldsNoBuffer: an idle relay between TCP connections holds no copy buffer.
// Before it waited in TCPConn.WriteTo, whose io.Copy allocates 32 KiB per direction, on
// top of the 20 KiB pooled buffer it never used: about 104 KiB per idle connection.
func TestIdleRelayHoldsNoBuffer(t *testing.T) { forEachShape(t, testIdleRelayHoldsNoBuffer) }

func testIdleRelayHoldsNoBuffer(t *testing.T, wrap func(net.Conn) net.Conn) {
	const n = 100
	snapshot := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	type pair struct {
		app, target *net.TCPConn
		done        chan error
	}
	var pairs []pair
	before := snapshot()
	buffersBefore := bufpool.Outstanding()
	for range n {
		app, target, done := relayed(t, 0, wrap)
		pairs = append(pairs, pair{app, target, done})
		// One byte each way, so each direction has had data and gone idle again.
		var b [1]byte
		app.Write([]byte{1})
		io.ReadFull(target, b[:])
		target.Write([]byte{2})
		io.ReadFull(app, b[:])
	}
	time.Sleep(50 * time.Millisecond)
	perConn := (float64(snapshot()) - float64(before)) / n
	held := bufpool.Outstanding() - buffersBefore
	for _, p := range pairs {
		p.app.Close()
		p.target.Close()
		<-p.done
	}
	t.Logf("heap per idle relayed connection: %.1f KiB", perConn/1024)
	if held != 0 {
		t.Errorf("%d idle relays hold %d pooled buffers, want 0", n, held)
	}
	// Sockets, the relay state and goroutine bookkeeping only: far below one buffer.
	if perConn > 8<<10 {
		t.Errorf("an idle relay costs %.1f KiB of heap, want under 8 KiB", perConn/1024)
	}
}

// waitingConn hides a TCP conn's WriteTo and type, leaving Read and WaitReadable: the
// shape of a protocol conn without a WriteTo of its own.
type waitingConn struct {
	net.Conn
	waits *atomic.Int64
}

func (c waitingConn) CloseWrite() error { return CloseWrite(c.Conn) }

func (c waitingConn) WaitReadable() error {
	c.waits.Add(1)
	return WaitReadable(c.Conn)
}

// TestRelayWaitsOnReadWaiter: a source that is neither TCP nor a WriterTo but can wait is
// waited on before the relay takes a buffer, so an idle relay between such conns holds
// none; bytes still arrive intact.
func TestRelayWaitsOnReadWaiter(t *testing.T) {
	app, client := tcpPair(t)
	upstream, target := tcpPair(t)
	defer app.Close()
	defer target.Close()
	var waits atomic.Int64
	before := bufpool.Outstanding()
	done := make(chan error, 1)
	go func() {
		_, err := Relay(waitingConn{client, &waits}, waitingConn{upstream, &waits}, Timeouts{})
		done <- err
	}()
	payload := make([]byte, 3<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	go func() {
		app.Write(payload)
		app.CloseWrite()
	}()
	got, err := io.ReadAll(target)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Fatalf("%d of %d bytes arrived, hashes differ", len(got), len(payload))
	}
	// The upstream-to-client direction has seen nothing and waits; the other has ended.
	if held := bufpool.Outstanding() - before; held != 0 {
		t.Errorf("a relay waiting on an idle source holds %d pooled buffers, want 0", held)
	}
	if waits.Load() == 0 {
		t.Error("Relay never called WaitReadable")
	}
	target.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestWaitReadable: on TCP it reports data without taking it, a clean close, and a read
// deadline as a timeout; readers that cannot wait return at once.
func TestWaitReadable(t *testing.T) {
	a, b := tcpPair(t)
	defer a.Close()
	defer b.Close()

	b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	err := WaitReadable(b)
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("WaitReadable past the deadline: %v, want a timeout", err)
	}
	b.SetReadDeadline(time.Time{})

	a.Write([]byte("x"))
	if err := WaitReadable(b); err != nil {
		t.Fatalf("WaitReadable with data waiting: %v", err)
	}
	var p [2]byte
	if n, err := b.Read(p[:]); n != 1 || p[0] != 'x' || err != nil {
		t.Fatalf("Read after WaitReadable: %d %q %v, want the byte it did not take", n, p[:n], err)
	}

	a.CloseWrite()
	if err := WaitReadable(b); err != nil {
		t.Fatalf("WaitReadable at EOF: %v", err)
	}
	if _, err := b.Read(p[:]); err != io.EOF {
		t.Fatalf("Read at EOF: %v", err)
	}

	if err := WaitReadable(bytes.NewReader(nil)); err != nil {
		t.Fatalf("WaitReadable on a reader that cannot wait: %v", err)
	}
}

// failConn fails every Read with err and accepts writes.
type failConn struct {
	net.Conn
	err error
}

func (c failConn) Read([]byte) (int, error)    { return 0, c.err }
func (c failConn) Write(p []byte) (int, error) { return len(p), nil }
func (c failConn) Close() error                { return nil }

// TestRelayMixedErrors: both directions fail, with errors of different types (a
// protocol's sentinel and a *net.OpError). Relay returns one of them; it used to keep
// the first in an atomic.Value, which panics when the second has another type.
func TestRelayMixedErrors(t *testing.T) {
	errAuth := errors.New("test: message authentication failed")
	errNet := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ETIMEDOUT}
	for range 20 {
		_, err := Relay(failConn{err: errAuth}, failConn{err: errNet}, Timeouts{})
		if err != errAuth && err != errNet {
			t.Fatalf("Relay: %v, want one of the two errors", err)
		}
	}
}

// TestReadFresh: a TCP source is waited on without a buffer and read with one read(2);
// data, a timeout, a reset and EOF come back as a TCPConn's Read reports them.
func TestReadFresh(t *testing.T) {
	a, b := tcpPair(t)
	defer a.Close()
	defer b.Close()
	before := bufpool.Outstanding()

	type result struct {
		buf *[]byte
		n   int
		err error
	}
	got := make(chan result, 1)
	go func() {
		buf, n, err := ReadFresh(b)
		got <- result{buf, n, err}
	}()
	time.Sleep(30 * time.Millisecond)
	if held := bufpool.Outstanding() - before; held != 0 {
		t.Errorf("waiting for input holds %d buffers, want 0", held)
	}
	a.Write([]byte("hello"))
	r := <-got
	if r.err != nil || string((*r.buf)[:r.n]) != "hello" {
		t.Fatalf("ReadFresh: %q, %v", (*r.buf)[:r.n], r.err)
	}
	bufpool.Put(r.buf)

	b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	buf, _, err := ReadFresh(b)
	var ne net.Error
	if buf != nil || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("ReadFresh past the deadline: buffer %v, %v; want no buffer and a timeout", buf != nil, err)
	}
	b.SetReadDeadline(time.Time{})

	a.CloseWrite()
	buf, n, err := ReadFresh(b)
	if n != 0 || err != io.EOF {
		t.Fatalf("ReadFresh at EOF: %d, %v", n, err)
	}
	if buf != nil {
		bufpool.Put(buf)
	}

	c, d := tcpPair(t)
	defer d.Close()
	c.SetLinger(0)
	c.Close()
	buf, _, err = ReadFresh(d)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("ReadFresh after a reset: %v, want ECONNRESET", err)
	}
	if buf != nil {
		bufpool.Put(buf)
	}
	if held := bufpool.Outstanding() - before; held != 0 {
		t.Errorf("%d buffers not returned", held)
	}
}

// TestHalfClosedTimeouts: once one side has finished sending, the relay allows the
// half-closed timeout, not the idle one, for the other direction to go quiet; bytes
// moving keep it open.
func TestHalfClosedTimeouts(t *testing.T) {
	// Generous, so that a loaded machine's scheduling delays stay well inside it.
	const half = 300 * time.Millisecond
	start := func(t *testing.T, tm Timeouts) (app, target *net.TCPConn, done chan error) {
		app, client := tcpPair(t)
		upstream, target := tcpPair(t)
		t.Cleanup(func() { app.Close(); target.Close() })
		done = make(chan error, 1)
		StartRelay(client, upstream, tm, func(_ RelayStats, err error) { done <- err })
		return app, target, done
	}
	endsIdle := func(t *testing.T, done chan error, within time.Duration) {
		t.Helper()
		select {
		case err := <-done:
			if !errors.Is(err, ErrIdle) {
				t.Fatalf("relay: %v, want ErrIdle", err)
			}
		case <-time.After(within):
			t.Fatalf("relay still open after %v", within)
		}
	}
	for _, c := range []struct {
		name       string
		timeouts   Timeouts
		clientDone bool // else the upstream finishes sending
	}{
		{"client done", Timeouts{Idle: time.Minute, DownlinkOnly: half}, true},
		{"upstream done", Timeouts{Idle: time.Minute, UplinkOnly: half}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			app, target, done := start(t, c.timeouts)
			finished, other := target, app
			if c.clientDone {
				finished, other = app, target
			}
			finished.CloseWrite()
			other.SetReadDeadline(time.Now().Add(5 * time.Second))
			if b, err := io.ReadAll(other); err != nil || len(b) != 0 {
				t.Fatalf("read %q, %v; want EOF", b, err)
			}
			endsIdle(t, done, 5*time.Second)
		})
	}
	t.Run("bytes keep it open", func(t *testing.T) {
		app, target, done := start(t, Timeouts{Idle: time.Minute, DownlinkOnly: half})
		app.CloseWrite()
		const n = 8
		go func() {
			for range n {
				target.Write([]byte{'x'})
				time.Sleep(half / 6)
			}
		}()
		app.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadFull(app, make([]byte, n))
		if err != nil {
			t.Fatalf("app read %d of %d bytes sent over %v: %v", got, n, n*half/6, err)
		}
		endsIdle(t, done, 5*time.Second)
	})
	t.Run("idle alone", func(t *testing.T) {
		// Without half-closed timeouts a half-closed relay keeps the idle timeout.
		app, _, done := start(t, Timeouts{Idle: time.Minute})
		app.CloseWrite()
		select {
		case err := <-done:
			t.Fatalf("relay ended after a half-close: %v", err)
		case <-time.After(3 * half):
		}
	})
}

// sizedWriter passes writes on and keeps the size of the largest.
type sizedWriter struct {
	w       io.Writer
	largest int
}

func (w *sizedWriter) Write(p []byte) (int, error) {
	w.largest = max(w.largest, len(p))
	return w.w.Write(p)
}

// TestSaturatedCopyGrows: a copy whose reads fill its buffer moves to a large one
// (bufpool), so a backlog goes on in writes over the small size; every byte arrives, and
// the buffer goes back at the end.
func TestSaturatedCopyGrows(t *testing.T) {
	a, b := tcpPair(t)
	defer b.Close()
	before := bufpool.Outstanding()
	payload := make([]byte, 2<<20)
	rand.NewChaCha8([32]byte{7}).Read(payload)
	go func() {
		a.Write(payload)
		a.Close()
	}()
	time.Sleep(100 * time.Millisecond) // let a backlog queue up in the socket

	h := sha256.New()
	w := &sizedWriter{w: h}
	n, err := Copy(w, b)
	if sum := sha256.Sum256(payload); n != int64(len(payload)) || err != nil || !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Fatalf("Copy: %d of %d bytes, %v", n, len(payload), err)
	}
	if w.largest <= bufpool.Size {
		t.Errorf("largest write %d bytes: a saturated copy did not grow past %d", w.largest, bufpool.Size)
	}
	if held := bufpool.Outstanding() - before; held != 0 {
		t.Errorf("%d buffers not returned", held)
	}
}

// TestLargeBuffer: a reader of a socket moves to LargeSize, a reader of anything else (a
// protocol layer) to LayeredSize, with room behind its unfinished chunk.
func TestLargeBuffer(t *testing.T) {
	a, b := tcpPair(t)
	defer a.Close()
	defer b.Close()
	for _, c := range []struct {
		name string
		src  io.Reader
		want int
	}{
		{"TCPConn", b, bufpool.LargeSize},
		{"Socket", NewSocket(b), bufpool.LargeSize},
		{"layer", readerOnly{b}, bufpool.LayeredSize},
	} {
		buf := LargeBuffer(c.src)
		if len(*buf) != c.want {
			t.Errorf("%s: len %d, want %d", c.name, len(*buf), c.want)
		}
		bufpool.Put(buf)
	}
}
